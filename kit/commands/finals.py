"""Choosing the finals: `kit pick`, `kit ensemble`, `kit plot loss|scores`. Each calls one function and prints."""

from __future__ import annotations

from pathlib import Path

import click

from kit.commands.common import load_workspace as _ws, echo_json
from kit.errors import KitError


@click.command()
@click.option("-n", "count", type=click.IntRange(min=1), default=None, help="how many finals (default: kit.toml's final_picks)")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.option("--mark", is_flag=True, help="write the picks into leaderboard.csv's final column")
@click.option("--include-unsubmitted", is_flag=True, help="consider runs with a validation score but no scored submission")
@click.option("--where", "conditions", default="", metavar="SQL", help="consider only runs meeting a SQL condition, as kit runs --where")
def pick(count: int | None, as_json: bool, mark: bool, include_unsubmitted: bool, conditions: str) -> None:
    """Propose the final submissions, with the reasoning per pick: `kit pick -n 3 --mark`.

    Each run's true accuracy is estimated from its validation and public scores weighted by their sizes, shrunk
    toward the mean of the runs to undo the luck of the best of many; then picks are added that raise the
    expected best private score, keeping near-duplicate runs apart. A task scored by another metric ([task]) is
    ranked by public score, else validation, in the metric's direction."""
    from kit.finals.pick import mark as mark_finals, pick as propose, submissions_url

    ws = _ws()
    result = propose(ws, count, include_unsubmitted, _only(ws, conditions))
    if as_json:
        echo_json(result.to_json())
    else:
        _print_picks(result)
    if mark:
        marked = mark_finals(ws, result)
        click.echo(f"marked {', '.join(marked)} as final in {ws.leaderboard_path.name}", err=True)
        refs = ", ".join(f"{p.candidate.run} = submission {p.candidate.submission_ref}" for p in result.picks if p.candidate.submission_ref)
        if ws.backend == "kaggle":
            click.echo(f"the Kaggle API cannot select final submissions: select them on {submissions_url(ws)} ({refs})", err=True)
        else:
            click.echo(f"the practice competition has no final selection; on Kaggle you would select them by hand on {submissions_url(ws)}", err=True)


def _print_picks(result) -> None:
    """Each pick with its reasons; for accuracy the shrunk estimate and the expected best private score, for another
    metric its figure (such runs are ranked in the metric's direction, not estimated)."""
    estimated = result.metric == "accuracy"
    for p in result.picks:
        c = p.candidate
        ref = f"  submission {c.submission_ref}" if c.submission_ref else ""
        figure = (f"estimate {100 * p.estimate.mean:.2f}% ± {100 * 1.96 * p.estimate.sd:.2f}" if estimated
                  else f"{result.metric} {p.estimate.mean:.5f}")
        click.echo(f"{p.rank}. {c.run}  {figure}{ref}")
        for reason in p.reasons:
            click.echo(f"   - {reason}")
    if estimated:
        click.echo(f"expected best private score of these picks: {100 * result.picks[-1].expected_best:.2f}%")
    for note in result.notes:
        click.echo(f"note: {note}")
    if result.skipped:
        click.echo(f"not considered: {', '.join(f'{s.run} ({s.why})' for s in result.skipped)}", err=True)


def _only(ws, conditions: str) -> set[str] | None:
    """The runs meeting --where in kit's table (polars is imported only when there is a condition)."""
    if not conditions:
        return None
    from kit.leaderboard.analysis import runs_where

    return set(runs_where(ws, conditions))


@click.command("ensemble")
@click.argument("members", nargs=-1)
@click.option("--weights", default="", help="comma-separated weights, one per run (default: equal)")
@click.option("--threshold", default="0.5", show_default=True, help="probability cut for True, or 'tune' on the shared validation rows")
@click.option("--where", "conditions", default="", metavar="SQL", help="members: the runs meeting a SQL condition in kit's table, as kit runs --where (with --top)")
@click.option("--top", type=click.IntRange(min=1), default=None, help="members: the K best runs by --by among those meeting --where")
@click.option("--by", "by", default=None, help="the column --top ranks by (default: the task's val_<metric>, best first)")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def ensemble_cmd(members: tuple[str, ...], weights: str, threshold: str, conditions: str, top: int | None, by: str | None, as_json: bool) -> None:
    """Average runs' test probabilities into a new run: `kit ensemble run-3 run-5 --weights 2,1`, then kit submit.

    Or let the table choose: `kit ensemble --where "status = 'complete'" --top 3 --by val_accuracy`."""
    from kit.finals.ensemble import ensemble

    try:
        parsed = [float(w) for w in weights.split(",")] if weights.strip() else None
    except ValueError:
        raise KitError(f"bad --weights {weights!r}", hint="--weights 2,1,1 (one number per run)") from None
    ws = _ws()
    if members and (conditions or top):
        raise KitError("name the runs or choose them with --where/--top, not both", hint="kit ensemble run-3 run-5, or kit ensemble --top 3")
    if not members:
        if not (conditions or top):
            raise KitError("no runs to ensemble", hint='kit ensemble run-3 run-5, or kit ensemble --where "val_accuracy > 0.7" --top 3')
        from kit.leaderboard.analysis import runs_where

        members = tuple(runs_where(ws, conditions, sort_by=by or ws.task.metric_column(), top=top or 0))
        click.echo(f"members from kit's table: {', '.join(members) or 'none'}", err=True)
    result = ensemble(ws, list(members), parsed, threshold)
    if as_json:
        echo_json({"run": result.record.id, "members": result.member_val_accuracy, "val_accuracy": result.val_accuracy,
                               "val_rows": result.val_rows, "threshold": result.threshold, "metric": result.metric,
                               "val_metric": result.val_metric, "member_val_metric": result.member_val_metric})
    else:
        click.echo(result.record.id)
    if result.metric != "accuracy" or not result.member_val_accuracy and result.member_val_metric:
        # a task scored by another metric: each member and the ensemble on it (lower is better for log loss)
        for run, value in result.member_val_metric.items():
            click.echo(f"  {run}: validation {result.metric} {'-' if value is None else f'{value:.4f}'}", err=True)
        val = "no shared validation rows" if result.val_metric is None else f"validation {result.metric} {result.val_metric:.4f} on {result.val_rows} rows"
        click.echo(f"{result.record.id}: {val}; next: kit submit {result.record.id}", err=True)
        return
    for run, acc in result.member_val_accuracy.items():
        click.echo(f"  {run}: validation {'-' if acc is None else f'{100 * acc:.2f}%'} (threshold 0.5)", err=True)
    val = "no shared validation rows" if result.val_accuracy is None else f"validation {100 * result.val_accuracy:.2f}% on {result.val_rows} rows"
    click.echo(f"{result.record.id}: {val} (threshold {result.threshold:.3f}); next: kit submit {result.record.id}", err=True)


@click.group()
def plot() -> None:
    """PNG plots under plots/: `kit plot loss run-3 run-5`, `kit plot scores`."""


@plot.command("loss")
@click.argument("run_ids", nargs=-1, required=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help="PNG file to write")
@click.option("--window", type=click.IntRange(min=1), default=None, help="rolling-mean window in steps (default: about 5% of the steps)")
def plot_loss(run_ids: tuple[str, ...], output: Path | None, window: int | None) -> None:
    """Training loss per step, smoothed, with the learning rate beneath: `kit plot loss run-3 run-5`."""
    from kit.leaderboard.plots import plot_loss as draw

    click.echo(str(draw(_ws(), list(run_ids), output, window)))


@plot.command("scores")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help="PNG file to write")
@click.option("--where", "conditions", default="", metavar="SQL", help="plot only runs meeting a SQL condition, as kit runs --where")
def plot_scores(output: Path | None, conditions: str) -> None:
    """Validation vs public score per run with 95% intervals, private where known: `kit plot scores`."""
    from kit.leaderboard.plots import plot_scores as draw

    ws = _ws()
    click.echo(str(draw(ws, output, _only(ws, conditions))))


COMMANDS = [pick, ensemble_cmd, plot]
