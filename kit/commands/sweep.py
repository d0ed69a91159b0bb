"""`kit sweep SPEC.toml` (plan, ask, run), `kit sweep status NAME`, `kit sweep submit NAME --top K`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from kit.commands.common import load_workspace as _ws, backend_for as _backend, echo_err as _err, echo_json
from kit.errors import KitError, StoppedFollowing

EXAMPLE = """\b
A spec (sweep.toml):
  name = "lr-rank"
  kernel = "train"
  [base]
  train_rows = 2000
  [grid]
  learning_rate = [1e-4, 2e-4]
  r = [16, 32]
or, instead of [grid]:
  [random]
  count = 6
  seed = 0
  learning_rate = { min = 1e-5, max = 1e-3, log = true }
  r = [8, 16, 32]
"""


class SweepGroup(click.Group):
    """`kit sweep SPEC.toml` is `kit sweep run SPEC.toml`: a first argument that is no subcommand is a spec."""

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "[run] SPEC.toml [OPTIONS]  |  status [NAME]  |  submit NAME [--top K]")

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(cls=SweepGroup, epilog=EXAMPLE)
def sweep() -> None:
    """Search settings as many runs, within the backend's limits: `kit sweep sweep.toml`.

    \b
      kit sweep run SPEC.toml [--yes]   plan, ask, then run (resumes an interrupted sweep);
                                        kit sweep SPEC.toml is the same command
      kit sweep status NAME             each point's run, state and validation accuracy
      kit sweep submit NAME --top K     submit the K best by validation accuracy
    """


@sweep.command("run")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--concurrency", type=click.IntRange(min=1), default=None, help="runs at once (default: 2 on Kaggle, 1 locally)")
@click.option("--yes", is_flag=True, help="do not ask before spending GPU time")
@click.option("--dry-run", is_flag=True, help="show the plan and exit")
@click.option("--poll", type=click.FloatRange(min=0), default=None, help="seconds between status checks (default: 30 on Kaggle, 1 locally)")
@click.option("--retry-after", type=click.FloatRange(min=0), default=300.0, show_default=True,
              help="seconds to wait after the backend refuses a session (all GPU sessions busy)")
@click.option("--allow-over-quota", is_flag=True, help="run even if the estimate exceeds the GPU hours left this week")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output (each point at the end)")
def run_cmd(spec: Path, concurrency: int | None, yes: bool, dry_run: bool, poll: float | None, retry_after: float, allow_over_quota: bool,
            as_json: bool) -> None:
    """Plan a sweep, ask, then push its runs a few at a time and pull each one: `kit sweep run sweep.toml --yes`."""
    from kit.runs.sweep import report, runner
    from kit.runs.sweep.plan import plan as plan_sweep
    from kit.runs.sweep.spec import load_spec

    ws = _ws()
    backend = _backend(ws)
    loaded = load_spec(spec)
    plan = plan_sweep(ws, backend, loaded, concurrency=concurrency)
    _show_plan(plan, backend)
    if dry_run:
        return
    if plan.to_run:
        if plan.over_quota and not allow_over_quota:
            raise KitError(
                f"the plan needs about {plan.hours:.1f} GPU hours; {plan.gpu_hours_left:.1f} are left this week",
                hint="drop points from the spec, lower train_rows or max_steps, or pass --allow-over-quota",
            )
        if not yes and not click.confirm(f"Push {len(plan.to_run)} runs to {backend.name}?", err=True):
            raise KitError("nothing pushed", hint=f"kit sweep {spec} --yes skips the question")
    timing = runner.SweepTiming(poll_seconds=poll if poll is not None else backend.sweep_poll_seconds, retry_seconds=retry_after)
    from kit import progress

    bar = progress.bar(f"sweep {loaded.name}", total=len(plan.points), unit="run")
    bar.update(sum(1 for p in plan.points if not p.to_run and p.record is not None and p.record.status.final))

    def on_event(event) -> None:
        bar.write(_event_line(event))
        if event.kind == "pulled":
            bar.update()
        elif event.record is not None:
            bar.note(f"{event.record.id} {event.kind}")

    with bar:
        try:
            state = runner.run(ws, backend, plan, timing, on_event=on_event)
        except KeyboardInterrupt:  # exit 130 like every command; the runs it pushed are not stopped
            bar.stop()
            raise StoppedFollowing(f"sweep {loaded.name}: kit stopped it after {progress.clock(bar.elapsed)}; runs already pushed go on, "
                                   "no new run is pushed", hint=f"kit sweep {spec} resumes it without pushing any run twice") from None
        bar.done(f"sweep {loaded.name}: all {len(plan.points)} runs ended after {progress.clock(bar.elapsed)}")
    points = report.status(ws, None, state.name)
    if as_json:
        echo_json(_points_json(points, ws.task))
    else:
        _print_points(points, ws.task)
    order = "" if ws.task.higher_is_better else " --ascending"
    _err(f"next: kit sweep submit {state.name} --top 1  |  kit runs --sort {ws.task.metric_column()}{order}")


def _show_plan(plan, backend) -> None:
    from kit.runs.sweep.report import describe

    state = plan.state
    _err(f"sweep {state.name}: {len(plan.points)} runs of {state.kernel} on {backend.name}, {plan.concurrency} at a time; "
         f"{len(plan.to_run)} to push")
    for p in plan.points:
        run = p.record.id if p.record else "-"
        where = "to push" if p.to_run else p.record.status.value
        hours = f"{p.hours:.2f} h" if p.hours is not None else "? h"
        _err(f"  {p.point.key:>3}  {run:<8} {where:<9} {hours:>8}  {describe(p.point.settings)}")
    if not plan.to_run:
        return
    unit = "GPU hours" if backend.has_quota else "hours"  # a metered backend's hours are the ones it counts
    total = f"about {plan.hours:.1f} {unit}" if plan.hours is not None else f"{unit} unknown"
    quota = "no quota" if plan.gpu_hours_left is None else f"{plan.gpu_hours_left:.1f} h left this week"
    _err(f"estimate: {total} ({plan.hours_source}); {quota}")
    for p in plan.too_long:
        _err(f"warning: point {p.point.key} may outlast a {plan.session_hours:g} h session; "
             "set save_steps and continue it with resume_from")


def _event_line(event) -> str:
    from kit.runs.sweep.report import describe

    run = event.record.id if event.record is not None else "-"
    detail = event.message or describe(event.point.settings)
    return f"{run:<8} {event.kind:<9} {detail}"


def _points_json(points, task) -> list[dict]:
    """The points for --json, each's validation score under the task's column name (val_accuracy for accuracy)."""
    return [{"point": p.point.key, "run": p.record.id if p.record else None,
             "status": p.record.status.value if p.record else "planned", task.metric_column(): p.val_metric,
             "settings": dict(p.point.settings), "message": p.record.message if p.record else ""} for p in points]


def _print_points(points, task) -> None:
    """The points as a table, their validation score in the task's val_<metric> column (the best highlighted)."""
    from kit.leaderboard.terminal import render_table, score_directions

    column = task.metric_column()
    keys: list[str] = []
    for p in points:
        keys += [k for k in p.point.settings if k not in keys]
    header = ["point", "run", "status", column, *keys, "message"]
    rows = []
    for p in points:
        row = {
            "point": p.point.key,
            "run": p.record.id if p.record else "",
            "status": p.record.status.value if p.record else "planned",
            column: "" if p.val_metric is None else f"{p.val_metric:.4f}",
            "message": p.record.message if p.record else "",
        }
        row.update({k: str(p.point.settings.get(k, "")) for k in keys})
        rows.append(row)
    click.echo(render_table(header, rows, all_columns=True, color=sys.stdout.isatty(), scores=score_directions(task)))


@sweep.command("status")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def status_cmd(name: str | None, as_json: bool) -> None:
    """Show each point of a sweep with its run, state and validation accuracy: `kit sweep status lr-rank`."""
    from kit.runs.sweep import report
    from kit.runs.sweep.state import sweep_names

    ws = _ws()
    if name is None:
        names = sweep_names(ws)
        if not names:
            _err("no sweeps yet: kit sweep SPEC.toml")
        listing = []
        for n in names:
            points = report.status(ws, None, n)
            listing.append({"sweep": n, "done": sum(1 for p in points if p.record and p.record.status.final), "points": len(points)})
        if as_json:
            echo_json(listing)
        for row in listing if not as_json else []:
            click.echo(f"{row['sweep']}\t{row['done']}/{row['points']} done")
        return
    points = report.status(ws, _backend(ws), name)
    if as_json:
        echo_json(_points_json(points, ws.task))
    else:
        _print_points(points, ws.task)
    counts: dict[str, int] = {}
    for p in points:
        key = p.record.status.value if p.record else "planned"
        counts[key] = counts.get(key, 0) + 1
    _err(f"{name}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))


@sweep.command("submit")
@click.argument("name")
@click.option("--top", "top", type=int, default=1, show_default=True, help="submit the K best runs by validation accuracy")
@click.option("-m", "--message", default="", help="submission description (default: names the run and file)")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def submit_cmd(name: str, top: int, message: str, yes: bool, as_json: bool) -> None:
    """Submit a sweep's K best runs by the task's validation metric, never more than today's submissions left:
    `kit sweep submit lr-rank --top 2`."""
    from kit.runs.sweep import report

    ws = _ws()
    backend = _backend(ws)
    picks = report.pick_top(ws, backend, name, top)
    for pick in picks:
        record = pick.status.record
        note = pick.reason or f"{pick.plan.valid.rows} rows, {pick.plan.valid.true_share:.1%} True"
        _err(f"{record.id:<8} {ws.task.metric_column()} {pick.status.val_metric:.4f}  {pick.action:<9} {note}")
    chosen = [p for p in picks if p.action == "submit"]
    if not chosen:
        raise KitError(f"nothing to submit from sweep {name}", hint="see the reasons above; kit runs shows what is submitted")
    if not yes and not click.confirm(f"Submit {len(chosen)} files to {ws.competition}?", err=True):
        raise KitError("not submitted", hint=f"kit sweep submit {name} --top {top} --yes skips the question")
    done = []
    for pick, sub in report.submit_top(ws, backend, chosen, message):
        score = "pending" if sub.public_score is None else f"{sub.public_score:.5f}"
        done.append({"run": pick.status.record.id, "ref": sub.ref, "status": sub.status, "public_score": sub.public_score})
        if not as_json:
            click.echo(f"{pick.status.record.id}  submission {sub.ref}  {sub.status}  public {score}")
    if as_json:
        echo_json(done)
    skipped = [p for p in picks if p.action == "skip"]
    if skipped:
        _err(f"{len(skipped)} of the top {top} not submitted: {skipped[0].reason}")


COMMANDS = [sweep]
