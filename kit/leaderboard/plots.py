"""Plots a person would rather look at than read, written as PNG files (matplotlib's Agg backend, no GUI).

matplotlib is imported inside the functions that draw, never when kit starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kit.errors import KitError
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


def _pyplot():
    import matplotlib

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


def plot_loss(ws: Workspace, run_ids: list[str], out: Path | None = None, window: int | None = None) -> Path:
    """Training loss per step (faint) and its rolling mean, learning rate beneath, for each run; returns the PNG."""
    data = {store.check_run_id(r): _steps(ws, r) for r in run_ids}
    plt = _pyplot()
    fig, (ax_loss, ax_lr) = plt.subplots(2, 1, sharex=True, figsize=(9, 6.5), gridspec_kw={"height_ratios": [3, 1]})
    for run_id, steps in data.items():
        x = [s.get("step", i + 1) for i, s in enumerate(steps)]
        loss = [float(s["loss"]) for s in steps]
        w = window or max(1, min(50, len(loss) // 20))
        (line,) = ax_loss.plot(x, rolling_mean(loss, w), linewidth=1.8, label=f"{run_id} (mean of {w})")
        ax_loss.plot(x, loss, color=line.get_color(), alpha=0.25, linewidth=0.8)
        lr = [s.get("lr") for s in steps]
        if any(v is not None for v in lr):
            ax_lr.plot(x, [float("nan") if v is None else v for v in lr], color=line.get_color(), linewidth=1.2)
    ax_loss.set_ylabel("training loss")
    ax_loss.set_title("training loss per step (rolling mean; raw values faint)")
    ax_loss.grid(alpha=0.3)
    ax_loss.legend(fontsize="small")
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_xlabel("optimizer step")
    ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    ax_lr.grid(alpha=0.3)
    path = out or ws.root / PLOTS_DIR / f"loss-{'-'.join(data)}.png"
    return _save(fig, plt, path)


def run_scores(ws: Workspace, only: set[str] | None = None) -> list[RunScores]:
    """Every run with a validation or public score (of `only`, if given), with 95% intervals (public from the
    public split's size)."""
    from kit.leaderboard.sheet import load_table, read_metrics
    from kit.leaderboard.stats import wilson_interval

    public_rows = ws.split_sizes()[0]
    _, rows = load_table(ws)
    finals = {r["run"]: r.get("final", "") for r in rows}
    out = []
    for record in store.all_runs(ws):
        if only is not None and record.id not in only:
            continue
        metrics = read_metrics(ws, record.id)
        val, val_rows = metrics.get("val_accuracy"), int(metrics.get("val_rows") or 0)
        scored = [s for s in record.submissions if s.public_score is not None]
        sub = scored[-1] if scored else None
        if val is None and sub is None:
            continue
        out.append(RunScores(
            run=record.id,
            val=val,
            val_interval=wilson_interval(val, val_rows) if val is not None and val_rows else None,
            public=sub.public_score if sub else None,
            public_interval=wilson_interval(sub.public_score, public_rows) if sub and public_rows else None,
            private=sub.private_score if sub else None,
            final=finals.get(record.id, ""),
        ))
    return out


def plot_scores(ws: Workspace, out: Path | None = None, only: set[str] | None = None) -> Path:
    """Validation and public score per run (of `only`, if given) with 95% intervals, private where known; returns
    the PNG."""
    scores = run_scores(ws, only)
    if not scores:
        raise KitError("no run has a validation or public score to plot", hint="kit push-kernel train --wait, then kit submit RUN")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 1.6 + 0.45 * len(scores)))
    y = list(range(len(scores)))[::-1]
    for kind, offset, color, marker in (("val", 0.15, "tab:blue", "o"), ("public", -0.15, "tab:orange", "s")):
        pts = [(yy + offset, getattr(s, kind), getattr(s, f"{kind}_interval")) for yy, s in zip(y, scores) if getattr(s, kind) is not None]
        if not pts:
            continue
        ys, xs, intervals = zip(*pts)
        lows = [x - i[0] if i else 0 for x, i in zip(xs, intervals)]
        highs = [i[1] - x if i else 0 for x, i in zip(xs, intervals)]
        label = "validation (95% interval)" if kind == "val" else "public (95% interval)"
        ax.errorbar(xs, ys, xerr=[lows, highs], fmt=marker, color=color, capsize=3, label=label)
    private = [(yy, s.private) for yy, s in zip(y, scores) if s.private is not None]
    if private:
        ax.scatter([p for _, p in private], [yy for yy, _ in private], marker="*", s=120, color="tab:green", zorder=3, label="private")
    ax.set_yticks(y)
    ax.set_yticklabels([f"{s.run}  [final {s.final}]" if s.final else s.run for s in scores])
    ax.set_xlabel("accuracy")
    ax.set_title("scores per run with 95% intervals (private where known)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize="small", loc="best")
    return _save(fig, plt, out or ws.root / PLOTS_DIR / "scores.png")


def _save(fig, plt, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
