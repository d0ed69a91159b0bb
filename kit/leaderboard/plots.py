"""Plots a person would rather look at than read, written as PNG files (matplotlib's Agg backend, no GUI).

matplotlib is imported inside the functions that draw, never when kit starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kit.errors import KitError, missing_package
from kit.runs import store
from kit.workspace.layout import Workspace

PLOTS_DIR = "plots"


@dataclass(frozen=True)
class RunScores:
    """One run's scores for the scores plot; intervals are 95%."""

    run: str
    val: float | None
    val_interval: tuple[float, float] | None
    public: float | None
    public_interval: tuple[float, float] | None
    private: float | None
    final: str = ""
    members: tuple[str, ...] = ()  # an ensemble's runs (kit ensemble); () for a trained run


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise missing_package("matplotlib", "plots", "kit plot") from None

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def rolling_mean(values: list[float], window: int) -> list[float]:
    """The mean of each value and the `window - 1` before it (fewer at the start)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def _steps(ws: Workspace, run_id: str) -> list[dict]:
    from kit.leaderboard.sheet import read_metrics

    record = store.load(ws, run_id)
    steps = [s for s in read_metrics(ws, record.id).get("steps") or [] if isinstance(s, dict) and s.get("loss") is not None]
    if not steps:
        raise KitError(
            f"{record.id} has no per-step losses in metrics.json ({record.kernel} run, {record.status.value})",
            hint=f"plot a completed train run; kit pull {record.id} if it has not been pulled",
        )
    return steps


def loss_figure(ws: Workspace, run_ids: list[str], window: int | None = None):
    """The loss figure: each run's training loss per step as a rolling mean, the raw values faint behind it where
    the mean smooths anything (a run of a few dozen steps is drawn raw), the learning rate beneath."""
    data = {store.check_run_id(r): _steps(ws, r) for r in run_ids}
    plt = _pyplot()
    fig, (ax_loss, ax_lr) = plt.subplots(2, 1, sharex=True, figsize=(9, 6.5), gridspec_kw={"height_ratios": [3, 1]})
    smoothed = False
    for run_id, steps in data.items():
        x = [s.get("step", i + 1) for i, s in enumerate(steps)]
        loss = [float(s["loss"]) for s in steps]
        w = min(window or max(1, min(50, len(loss) // 20)), len(loss))
        label = f"{run_id} (mean of {w} steps)" if w > 1 else run_id
        (line,) = ax_loss.plot(x, rolling_mean(loss, w), linewidth=1.8, label=label)
        if w > 1:  # a mean of one step is the raw value: nothing faint to draw behind it
            ax_loss.plot(x, loss, color=line.get_color(), alpha=0.25, linewidth=0.8)
            smoothed = True
        lr = [s.get("lr") for s in steps]
        if any(v is not None for v in lr):
            ax_lr.plot(x, [float("nan") if v is None else v for v in lr], color=line.get_color(), linewidth=1.2)
    ax_loss.set_ylabel("training loss")
    ax_loss.set_title("training loss per step (rolling mean; raw values faint)" if smoothed else "training loss per step")
    ax_loss.grid(alpha=0.3)
    ax_loss.legend(fontsize="small")
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_xlabel("optimizer step")
    ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    ax_lr.grid(alpha=0.3)
    return fig


def plot_loss(ws: Workspace, run_ids: list[str], out: Path | None = None, window: int | None = None) -> Path:
    """Training loss per step and its rolling mean, learning rate beneath, for each run (loss_figure); returns the PNG."""
    fig = loss_figure(ws, run_ids, window)
    path = out or ws.root / PLOTS_DIR / f"loss-{'-'.join(store.check_run_id(r) for r in run_ids)}.png"
    return _save(fig, _pyplot(), path)


def run_scores(ws: Workspace, only: set[str] | None = None) -> list[RunScores]:
    """Every run with a validation or public score (of `only`, if given), with 95% intervals (public from the
    public split's size)."""
    from kit.finals.ensemble import KERNEL as ENSEMBLE_KERNEL
    from kit.leaderboard.sheet import load_table, read_metrics
    from kit.leaderboard.stats import wilson_interval

    from kit.task import run_metric

    public_rows = ws.split_sizes()[0]
    _, rows = load_table(ws)
    finals = {r["run"]: r.get("final", "") for r in rows}
    binomial = ws.task.metric == "accuracy"  # Wilson intervals hold for accuracy; another metric is shown without
    out = []
    for record in store.all_runs(ws):
        if only is not None and record.id not in only:
            continue
        metrics = read_metrics(ws, record.id)
        val, val_rows = run_metric(metrics, ws.task), int(metrics.get("val_rows") or 0)
        scored = [s for s in record.submissions if s.public_score is not None]
        sub = scored[-1] if scored else None
        if val is None and sub is None:
            continue
        out.append(RunScores(
            run=record.id,
            val=val,
            val_interval=wilson_interval(val, val_rows) if binomial and val is not None and val_rows else None,
            public=sub.public_score if sub else None,
            public_interval=wilson_interval(sub.public_score, public_rows) if binomial and sub and public_rows else None,
            private=sub.private_score if sub else None,
            final=finals.get(record.id, ""),
            members=tuple(str(m) for m in record.config.get("runs") or ()) if record.kernel == ENSEMBLE_KERNEL else (),
        ))
    return out


def majority_baseline(ws: Workspace, run_ids: list[str]) -> tuple[str, float] | None:
    """What always answering the majority class scores on the validation rows, as the runs' summaries say it
    (kit/leaderboard/summary.py; the runs share their validation rows, so the first that knows it is taken)."""
    from kit.leaderboard.summary import summarize

    for run_id in run_ids:
        summary = summarize(ws, store.load(ws, run_id))
        if summary is not None and summary.task is not None:  # a [task]: its baseline on its metric
            if summary.task.baseline_value is not None:
                return summary.task.baseline, summary.task.baseline_value
            continue
        if summary is not None and summary.majority is not None:
            label, share = summary.majority
            return f"always {label} (the majority class)", share
    return None


def scores_figure(ws: Workspace, only: set[str] | None = None):
    """The scores figure: validation and public score per run (of `only`, if given) with 95% intervals, private
    where known, the majority-class baseline as a line, ensembles marked."""
    scores = run_scores(ws, only)
    if not scores:
        raise KitError("no run has a validation or public score to plot", hint="kit push-kernel train --wait, then kit submit RUN")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 1.6 + 0.45 * len(scores)))
    y = list(range(len(scores)))[::-1]
    for kind, offset, color in (("val", 0.15, "tab:blue"), ("public", -0.15, "tab:orange")):
        pts = [(yy + offset, getattr(s, kind), getattr(s, f"{kind}_interval"), bool(s.members))
               for yy, s in zip(y, scores) if getattr(s, kind) is not None]
        label = "validation (95% interval)" if kind == "val" else "public (95% interval)"
        for ensembles in (False, True):  # an ensemble's points are diamonds, a trained run's circles and squares
            group = [p for p in pts if p[3] == ensembles]
            if not group:
                continue
            ys, xs, intervals, _ = zip(*group)
            lows = [x - i[0] if i else 0 for x, i in zip(xs, intervals)]
            highs = [i[1] - x if i else 0 for x, i in zip(xs, intervals)]
            marker = "D" if ensembles else ("o" if kind == "val" else "s")
            ax.errorbar(xs, ys, xerr=[lows, highs], fmt=marker, color=color, capsize=3,
                        label=f"{label}, ensemble" if ensembles else label)
    private = [(yy, s.private) for yy, s in zip(y, scores) if s.private is not None]
    if private:
        ax.scatter([p for _, p in private], [yy for yy, _ in private], marker="*", s=120, color="tab:green", zorder=3, label="private")
    baseline = majority_baseline(ws, [s.run for s in scores])
    if baseline is not None:  # on a small run the number that matters most: is it any better than this?
        what, share = baseline
        shown = f"{100 * share:.1f}% of validation rows" if ws.task.metric == "accuracy" else f"{share:.4f} on validation"
        ax.axvline(share, color="tab:red", linestyle="--", linewidth=1.2, label=f"{what}: {shown}")
    ax.set_yticks(y)
    ax.set_yticklabels([_run_label(s) for s in scores])
    task = ws.task
    if task.metric == "accuracy":
        ax.set_xlabel("accuracy")
        ax.set_title("scores per run with 95% intervals (private where known)")
    else:
        ax.set_xlabel(f"{task.metric} ({'higher' if task.higher_is_better else 'lower'} is better)")
        ax.set_title(f"{task.metric} per run (private where known)")
        if not task.higher_is_better:
            ax.invert_xaxis()  # better to the right, as for accuracy
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize="small", loc="best")
    return fig


def _run_label(s: RunScores) -> str:
    label = f"{s.run}  [ensemble of {'+'.join(s.members)}]" if s.members else s.run
    return f"{label}  [final {s.final}]" if s.final else label


def plot_scores(ws: Workspace, out: Path | None = None, only: set[str] | None = None) -> Path:
    """The scores figure (scores_figure) as a PNG; returns its path."""
    fig = scores_figure(ws, only)
    return _save(fig, _pyplot(), out or ws.root / PLOTS_DIR / "scores.png")


def _save(fig, plt, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
