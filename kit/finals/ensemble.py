"""Ensembles: a new run whose predictions average other runs' per-class probabilities; no GPU, seconds, submitted
like any run.

Every run of a workspace is validated on the same rows (the train kernel's `val_seed`), so the members'
val_predictions.csv can be averaged row by row and the ensemble gets a validation score of its own, on the task's
metric and after the task's decision rule (kit.task: the kernels' own module). The submission is the task's file.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

from kit.errors import KitError
from kit.fileio import atomic_write_csv, atomic_write_json
from kit.leaderboard import sheet
from kit.runs import store
from kit.runs.store import KernelStatus, RunRecord
from kit.task import Rule, Task, TaskError, baseline, decide, fit_rule, metric_value, prob_column, write_submission
from kit.workspace.layout import Workspace

KERNEL = "ensemble"
TEST_PROBS = "test_probs.csv"
VAL_PREDICTIONS = "val_predictions.csv"


@dataclass(frozen=True)
class EnsembleResult:
    """The new run, and what its members and it scored on validation (None where there were no shared rows)."""

    record: RunRecord
    members: list[str]
    weights: list[float]
    threshold: float
    val_accuracy: float | None
    val_rows: int
    member_val_accuracy: dict[str, float | None]
    metric: str = "accuracy"
    val_metric: float | None = None
    member_val_metric: dict[str, float | None] = field(default_factory=dict)


@dataclass
class _Probs:
    """One member's file: its classes (probability-column order) and, by key, (the label or "", probabilities)."""

    classes: tuple[str, ...]
    rows: dict[str, tuple[str, list[float]]]


def _read_probs(path: Path, key: str | None, task: Task) -> _Probs:
    """A kernel's test_probs.csv (key None: its first column, the id) or val_predictions.csv (key "row"): per-class
    p_<class> columns, or a binary run's prob_true alone (runs from before per-class columns)."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        key = key or (header[0] if header else "")
        per_class = [h for h in header if h.startswith("p_") and h != key]  # an id column may be named p_id
        if key not in header or not (per_class or "prob_true" in header):
            raise KitError(f"{path} has no {key or 'id'} column and probability columns", hint=f"it should be a kernel's {path.name}; pull the run again")
        if per_class:
            classes = tuple(h[2:] for h in per_class)
        elif task.kind == "binary":
            classes = task.classes()
        else:
            raise KitError(f"{path} has only prob_true, and this task has {len(task.classes())} classes", hint="ensemble runs of this task (they write p_<class> columns)")
        rows = {}
        for row in reader:
            try:
                probs = [float(row[h]) for h in per_class] if per_class else [float(row["prob_true"]), 1 - float(row["prob_true"])]
            except (TypeError, ValueError):
                raise KitError(f"{path}: row {row.get(key)!r} has a probability that is not a number", hint="pull the run again") from None
            rows[row[key]] = (_label(row, task), probs)
        return _Probs(classes, rows)


def _label(row: dict, task: Task) -> str:
    """A validation row's class: its label column, or a binary run's is_correct (True: the positive class)."""
    if row.get("label"):
        return row["label"].strip()
    cell = (row.get("is_correct") or "").strip()
    if not cell:
        return ""
    return task.classes()[0] if cell.lower() in ("true", "1") else task.classes()[1]


def _resolve(ws: Workspace, records: list[RunRecord], files: list[_Probs]) -> Task:
    """The workspace's task with its classes as the members have them (the same set, in the task's order)."""
    task = ws.task
    for record, probs in zip(records, files):
        if set(probs.classes) != set(files[0].classes):
            raise KitError(f"{record.id}'s classes differ from {records[0].id}'s", hint="ensemble runs of one task")
    try:
        task = task.with_labels(files[0].classes) if task.labels is None else task
    except TaskError as exc:
        raise KitError(exc.problem, hint=exc.fix) from None
    if set(task.classes()) != set(files[0].classes):
        raise KitError(f"{records[0].id} predicted the classes {', '.join(files[0].classes)}, not the task's {', '.join(task.classes())}",
                       hint="ensemble runs of this workspace's task")
    return task


def _ordered(probs: _Probs, task: Task) -> dict[str, tuple[str, list[float]]]:
    order = [probs.classes.index(c) for c in task.classes()]
    return {k: (label, [p[j] for j in order]) for k, (label, p) in probs.rows.items()}


def _average(members: list[dict[str, tuple[str, list[float]]]], weights: list[float], keys: list[str]) -> list[list[float]]:
    width = len(members[0][keys[0]][1]) if keys else 0
    return [[sum(w * m[k][1][j] for w, m in zip(weights, members)) for j in range(width)] for k in keys]


def ensemble(ws: Workspace, members: list[str], weights: list[float] | None = None, threshold: str = "0.5") -> EnsembleResult:
    """Create a run averaging `members`' test probabilities (weighted), with validation from their predictions."""
    member_ids = [store.check_run_id(m) for m in members]
    if len(member_ids) < 2 or len(set(member_ids)) != len(member_ids):
        raise KitError("an ensemble needs at least two different runs", hint="kit ensemble run-3 run-5 [run-8 ...]")
    weights = _normalized(weights, len(member_ids))
    records = [store.load(ws, m) for m in member_ids]
    tests, vals = _read_members(ws, records)
    task = _resolve(ws, records, tests)
    test_rows = [_ordered(t, task) for t in tests]
    ids = list(test_rows[0])
    for record, rows in zip(records[1:], test_rows[1:]):
        if set(rows) != set(ids):
            raise KitError(f"{record.id} predicted other test rows than {records[0].id}", hint="ensemble runs that scored the whole test set (test_rows=0)")
    test_probs = _average(test_rows, weights, ids)
    val = _validation(task, records, vals, weights, ws)
    if task.kind == "binary":
        cut = _threshold(threshold, task, val.labels, val.probs, bool(val.keys))
        rule = Rule("threshold", threshold=cut) if task.output == "label" else fit_rule(task, val.labels, val.probs) if val.keys else Rule()
    else:
        cut = 0.5
        rule = fit_rule(task, val.labels, val.probs) if val.keys else _untuned(task)

    config = {"runs": member_ids, "weights": [round(w, 6) for w in weights], "threshold": threshold, "threshold_used": cut, "rule": rule.to_dict()}
    record = store.allocate(ws, KERNEL, "local", config)
    folder = store.run_dir(ws, record.id)
    metrics = {"members": member_ids, "weights": config["weights"], **_write_test(folder, task, ids, test_probs, rule, cut)}
    val_accuracy, val_metric = _write_validation(folder, task, val, rule, cut, metrics) if val.keys else (None, None)
    atomic_write_json(folder / "metrics.json", metrics)
    atomic_write_json(folder / "config.json", config)
    record.status, record.gpu = KernelStatus.COMPLETE, ""
    record.started = record.finished = store.now()
    record.outputs = sorted([task.file, TEST_PROBS, "metrics.json", "config.json", *([VAL_PREDICTIONS] if val.keys else [])])
    store.save(ws, record)
    sheet.sync(ws, [record])
    return EnsembleResult(record, member_ids, weights, cut, val_accuracy, len(val.keys), val.member_accuracy, task.metric, val_metric,
                          val.member_metric)


def _normalized(weights: list[float] | None, count: int) -> list[float]:
    """`weights` (one per member, default equal) scaled to sum to 1; KitError for a wrong count or a negative one."""
    weights = list(weights) if weights else [1.0] * count
    if len(weights) != count or any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise KitError(f"{len(weights)} weights for {count} runs, or a negative one", hint="--weights 2,1,1 (one non-negative number per run)")
    total = sum(weights)
    return [w / total for w in weights]


def _read_members(ws: Workspace, records: list[RunRecord]) -> tuple[list[_Probs], list[_Probs | None]]:
    """Each member's test probabilities (required) and validation predictions (None where the run has none)."""
    base_task = ws.task
    tests, vals = [], []
    for record in records:
        folder = store.run_dir(ws, record.id)
        if not (folder / TEST_PROBS).is_file():
            raise KitError(
                f"{record.id} has no {TEST_PROBS}: there are no probabilities to average",
                hint=f"kit pull {record.id} (a run needs predict_test=true; runs from before test_probs.csv cannot be ensembled)",
            )
        tests.append(_read_probs(folder / TEST_PROBS, None, base_task))
        vals.append(_read_probs(folder / VAL_PREDICTIONS, "row", base_task) if (folder / VAL_PREDICTIONS).is_file() else None)
    return tests, vals


@dataclass
class _Validation:
    """The validation rows every member scored: their keys, labels and averaged probabilities, and each member's own
    score on them (the task's metric under the untuned rule; a binary task's accuracy at 0.5). Empty without shared rows."""

    keys: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    probs: list[list[float]] = field(default_factory=list)
    member_metric: dict[str, float | None] = field(default_factory=dict)
    member_accuracy: dict[str, float | None] = field(default_factory=dict)
    groups: list[str] | None = None  # each row's group, for roc_auc_by:<column>


def _validation(task: Task, records: list[RunRecord], vals: list[_Probs | None], weights: list[float], ws: Workspace) -> _Validation:
    """The members' shared validation rows averaged; KitError where two members label the same row differently."""
    out = _Validation()
    if not all(v is not None for v in vals):
        return out
    val_rows = [_ordered(v, task) for v in vals]
    shared = set(val_rows[0]).intersection(*val_rows[1:])
    out.keys = sorted(shared, key=lambda r: (len(r), r))
    out.labels = [val_rows[0][r][0] for r in out.keys]
    out.groups = _groups(ws, task, out.keys)
    for record, v in zip(records, val_rows):
        if any(v[r][0] != y for r, y in zip(out.keys, out.labels)):
            raise KitError(f"{record.id}'s validation labels differ from {records[0].id}'s on the same rows", hint="ensemble runs of one workspace and one train.csv")
    out.probs = _average(val_rows, weights, out.keys)
    for record, v in zip(records, val_rows):
        probs = [v[r][1] for r in out.keys]
        out.member_metric[record.id] = metric_value(task, out.labels, decide(task, probs, _untuned(task)), out.groups) if out.keys else None
        if task.kind == "binary":
            out.member_accuracy[record.id] = _accuracy([p[0] for p in probs], out.labels, task, 0.5) if out.keys else None
    return out


def _groups(ws: Workspace, task: Task, keys: list[str]) -> list[str] | None:
    """Each validation row's group for roc_auc_by:<column> (AUC within each group), read from the competition's
    train file by the row's place in it (val_predictions.csv's `row`); None for a metric without groups."""
    from kit.task import read_rows
    from kit.workspace.task_config import data_folder

    if not task.group:
        return None
    folder = data_folder(ws, task)
    if folder is None:
        raise KitError(f"{task.metric} scores each {task.group} apart, and {task.train} is not on this machine to read the rows' {task.group}",
                       hint="kit data (it downloads the competition's files into data/)")
    column = [row[task.group] for row in read_rows(folder / task.train, [task.group])]
    try:
        return [column[int(k)] for k in keys]
    except (ValueError, IndexError):
        raise KitError(f"the members' validation rows are not rows of {folder / task.train}", hint="ensemble runs of this competition's train file") from None


def _write_test(folder: Path, task: Task, ids: list[str], test_probs: list[list[float]], rule: Rule, cut: float) -> dict:
    """test_probs.csv and the task's submission file in `folder`; the metrics that describe them."""
    binary = task.kind == "binary"
    id_column = task.id if task.id else "ID"
    prob_header = (["prob_true"] if binary else []) + [prob_column(c) for c in task.classes()]
    atomic_write_csv(folder / TEST_PROBS, [id_column, *prob_header], ([i, *_cells(p, binary)] for i, p in zip(ids, test_probs)))
    values = decide(task, test_probs, rule)
    write_submission(task, ids, values, folder / task.file)
    metrics: dict = {"test_rows": len(ids), "metric": task.metric, "classes": list(task.classes()), "rule": rule.to_dict()}
    if binary:
        metrics.update(threshold=cut, test_true_rate=sum(p[0] >= cut for p in test_probs) / max(len(ids), 1))
    return metrics


def _write_validation(folder: Path, task: Task, val: _Validation, rule: Rule, cut: float, metrics: dict) -> tuple[float | None, float]:
    """val_predictions.csv in `folder`, its scores added to `metrics`; (accuracy for a binary task else None, the metric)."""
    binary = task.kind == "binary"
    val_header = ["row", *(["is_correct", "prob_true"] if binary else []), "label", *[prob_column(c) for c in task.classes()]]
    lines = ([r, *([str(y == task.classes()[0]), f"{p[0]:.6f}"] if binary else []), y, *(f"{x:.6f}" for x in p)]
             for r, y, p in zip(val.keys, val.labels, val.probs))
    atomic_write_csv(folder / VAL_PREDICTIONS, val_header, lines)
    val_metric = metric_value(task, val.labels, decide(task, val.probs, rule), val.groups)
    described, base = baseline(task, val.labels, val.groups)
    metrics.update({"val_rows": len(val.keys), "val_metric": val_metric, "val_baseline": base, "baseline": described,
                    "member_val_metric": val.member_metric})
    if not binary:
        return None, val_metric
    val_accuracy = _accuracy([p[0] for p in val.probs], val.labels, task, cut)
    eps = 1e-7
    metrics.update({
        "val_accuracy": val_accuracy, "val_accuracy_at_0.5": _accuracy([p[0] for p in val.probs], val.labels, task, 0.5),
        "val_loss": -sum(math.log(min(max(p[0] if y == task.classes()[0] else 1 - p[0], eps), 1)) for p, y in zip(val.probs, val.labels)) / len(val.labels),
        "member_val_accuracy_at_0.5": val.member_accuracy,
    })
    return val_accuracy, val_metric


def _untuned(task: Task) -> Rule:
    """The rule a member is compared by: argmax (threshold 0.5 for a binary label), top-k, or the probabilities as given."""
    return Rule("threshold", threshold=0.5) if task.kind == "binary" and task.output == "label" else Rule()


def _threshold(setting: str, task: Task, labels: list[str], val_probs: list[list[float]], have_rows: bool) -> float:
    if setting == "tune":
        if not have_rows:
            raise KitError("--threshold tune needs the members' shared validation rows, and there are none", hint="use --threshold 0.5")
        return fit_rule(task, labels, val_probs).threshold
    try:
        cut = float(setting)
    except ValueError:
        raise KitError(f"bad threshold {setting!r}", hint="--threshold 0.5, or --threshold tune") from None
    if not 0 < cut < 1:
        raise KitError(f"bad threshold {setting!r}", hint="a number between 0 and 1, or tune")
    return cut


def _accuracy(prob_positive: list[float], labels: list[str], task: Task, threshold: float) -> float:
    positive = task.classes()[0]
    return sum((p >= threshold) == (y == positive) for p, y in zip(prob_positive, labels)) / len(labels)


def _cells(probs: list[float], binary: bool) -> list[str]:
    return [f"{x:.6f}" for x in ([probs[0]] if binary else []) + list(probs)]
