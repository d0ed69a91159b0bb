"""What a finished run means, in a few lines: what was trained, how it compares with the majority class, and
what to run next. Printed at the end of `kit push-kernel --wait` and by `kit status RUN`, so a first run (a
CPU smoke run of 128 rows) is not mistaken for what kit reaches on a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

from kit.leaderboard.sheet import read_metrics
from kit.runs.store import RunRecord
from kit.workspace.layout import Workspace

# Below this many training rows a run is a smoke run: it checks the loop, not the model.
SMOKE_ROWS = 2000
# Measured on one NVIDIA H200 with the train kernel's defaults (bench/RESULTS.md, "What the defaults reach").
GPU_FIGURES = "on one H200 the defaults reach 74.6% private accuracy with 8,000 rows in 4.6 minutes, 79.1% with 16,000 in 6.7"
REAL_RUN = "kit push-kernel train --set train_rows=8000 --wait"


@dataclass(frozen=True)
class TaskFigures:
    """A run's validation figure on the task's metric and what a model ignoring its input scores (the majority
    class, the class prior for log loss), with the metric's direction."""

    metric: str
    value: float | None
    baseline: str  # "always False (the majority class)", "the class prior (a 0.50, b 0.30, tie 0.20)"
    baseline_value: float | None
    higher_is_better: bool

    def lines(self, val_rows: int | None, public_score: float | None) -> list[str]:
        out = []
        if self.value is not None:
            line = f"validation {self.metric} {self.value:.4f} on {val_rows} rows"
            if self.baseline_value is not None:
                # From the rounded figures shown, so that the comparison is the one a reader makes.
                gain = round(float(f"{self.value:.4f}") - float(f"{self.baseline_value:.4f}"), 4) * (1 if self.higher_is_better else -1)
                verdict = f"{abs(gain):.4f} {'better' if gain > 0 else 'worse'}" if gain else "no better"
                direction = "" if self.higher_is_better else f" (lower {self.metric} is better)"
                line += f"; {self.baseline} scores {self.baseline_value:.4f}: this run is {verdict}{direction}"
            out.append(line)
        if public_score is not None:
            out.append(f"public score {public_score:.5f}")
        return out


@dataclass(frozen=True)
class RunSummary:
    run: str
    model: str
    train_rows: int | None
    device: str
    minutes: float | None
    val_accuracy: float | None
    val_rows: int | None
    val_true_rate: float | None
    test_true_rate: float | None
    public_score: float | None
    # What always answering True / False scores on the public rows, where the competition says (the practice one).
    public_baselines: dict[str, float] | None = None
    # A workspace with a [task]: its metric on validation against the task's baseline (None: today's binary task).
    task: TaskFigures | None = None

    @property
    def majority(self) -> tuple[str, float] | None:
        """The majority class on the validation rows and its accuracy there (what always answering it scores)."""
        if self.val_true_rate is None:
            return None
        return ("True", self.val_true_rate) if self.val_true_rate >= 0.5 else ("False", 1 - self.val_true_rate)

    def lines(self) -> list[str]:
        rows = "?" if self.train_rows is None else f"{self.train_rows:,}"
        took = "" if self.minutes is None else f" in {self.minutes:.1f} minutes"
        out = [f"{self.run}: {self.model} with LoRA, trained on {rows} rows on {self.device}{took}"]
        if self.task is not None:
            out += self.task.lines(self.val_rows, self.public_score)
            if self.train_rows is not None and self.train_rows < SMOKE_ROWS:
                out.append(f"this was a smoke run ({rows} rows): it checks the loop, not the model")
                out.append(f"next, a real run (on a GPU, here or on Kaggle): {REAL_RUN}")
            return out
        if self.val_accuracy is not None:
            line = f"validation accuracy {100 * self.val_accuracy:.1f}% on {self.val_rows} rows"
            if self.majority is not None:
                label, share = self.majority
                # From the rounded figures shown, so that the difference is the one a reader computes.
                diff = round(float(f"{100 * self.val_accuracy:.1f}") - float(f"{100 * share:.1f}"), 1)
                where = f"{abs(diff):.1f} points {'above' if diff > 0 else 'below'} it" if diff else "no better than it"
                line += f"; always answering {label} (the majority class) scores {100 * share:.1f}%: this run is {where}"
            out.append(line)
        if self.test_true_rate is not None:
            score = "" if self.public_score is None else f"; public score {self.public_score:.5f}"
            if self.public_score is not None and self.majority is not None and self.public_baselines:
                label = self.majority[0]
                if label in self.public_baselines:
                    score += f" (always {label}: {self.public_baselines[label]:.5f})"
            out.append(f"test predictions: {100 * self.test_true_rate:.0f}% True{score}")
        if self.train_rows is not None and self.train_rows < SMOKE_ROWS:
            out.append(f"this was a smoke run ({rows} rows): it checks the loop, not the model; {GPU_FIGURES}")
            out.append(f"next, a real run (on a GPU, here or on Kaggle): {REAL_RUN}")
        return out


def summarize(ws: Workspace, record: RunRecord, public_baselines: dict[str, float] | None = None) -> RunSummary | None:
    """The summary of a run whose metrics were pulled, or None (not finished, not pulled, or no training);
    `public_baselines`: the public score of always answering "True" / "False", where known."""
    metrics = read_metrics(ws, record.id)
    if not metrics:
        return None
    model = record.config.get("model") or "the base model"  # push resolved `auto` to a name
    gpus = metrics.get("gpu") or record.gpu
    if isinstance(gpus, list):
        gpus = ", ".join(str(g) for g in gpus)
    device = gpus if gpus and str(gpus).lower() != "cpu" else "the CPU"
    wall = metrics.get("wall_seconds")
    scored = [s.public_score for s in record.submissions if s.public_score is not None]
    return RunSummary(
        run=record.id,
        model=str(model).rsplit("/", 1)[-1],
        train_rows=metrics.get("train_rows"),
        device=device,
        minutes=None if wall is None else wall / 60,
        val_accuracy=metrics.get("val_accuracy"),
        val_rows=metrics.get("val_rows"),
        val_true_rate=metrics["val_true_rate"] if "val_true_rate" in metrics else _true_rate(ws, record.id),
        test_true_rate=metrics.get("test_true_rate"),
        public_score=scored[-1] if scored else None,
        public_baselines=public_baselines,
        task=None if ws.task_table is None else task_figures(ws, record.id, metrics),
    )


def _val_column(ws: Workspace, run_id: str, column: str) -> list[str] | None:
    """The cells of one column of the run's val_predictions.csv; None where the file or the column is missing."""
    import csv

    from kit.runs.store import run_dir

    try:
        with open(run_dir(ws, run_id) / "val_predictions.csv", newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if column not in (reader.fieldnames or []):
                return None
            return [(row[column] or "").strip() for row in reader]
    except OSError:
        return None


def _true_rate(ws: Workspace, run_id: str) -> float | None:
    """The share of True labels among the validation rows of val_predictions.csv, for a run whose metrics.json does
    not say (an ensemble, an older kernel); None where the file or its is_correct column is missing."""
    cells = _val_column(ws, run_id, "is_correct")
    return sum(c.lower() == "true" for c in cells) / len(cells) if cells else None


def task_figures(ws: Workspace, run_id: str, metrics: dict) -> TaskFigures:
    """The run's figure on the workspace's task, and the baseline the kernel wrote; for a run without one, the
    baseline of its val_predictions.csv's labels."""
    from kit.task import run_metric

    task = ws.task
    value = run_metric(metrics, task)
    described, base = metrics.get("baseline"), metrics.get("val_baseline")
    if not isinstance(base, (int, float)) or metrics.get("metric") != task.metric:
        described, base = _baseline_from_predictions(ws, run_id, task, metrics) or ("the baseline", None)
    return TaskFigures(task.metric, value, str(described), base, task.higher_is_better)


def _baseline_from_predictions(ws: Workspace, run_id: str, task, metrics: dict) -> tuple[str, float] | None:
    """The task's baseline on the labels of the run's val_predictions.csv; None without them."""
    from kit.task import TaskError, baseline

    labels = _val_column(ws, run_id, "label")
    if not labels:
        return None
    try:
        if task.labels is None:
            task = task.with_labels(metrics.get("classes") or labels)
        return baseline(task, labels)
    except TaskError:
        return None
