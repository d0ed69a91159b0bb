"""Ensembles: a new run whose predictions average other runs' probabilities; no GPU, seconds, submitted like any run.

Every run of a workspace is validated on the same rows (the train kernel's `val_seed`), so the members'
val_predictions.csv can be averaged row by row and the ensemble gets a validation accuracy of its own.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from kit.errors import KitError
from kit.fileio import atomic_write_json, atomic_write_text
from kit.leaderboard import sheet
from kit.runs import store
from kit.runs.store import KernelStatus, RunRecord
from kit.task import tune_threshold
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


def _read_probs(path: Path, key: str) -> dict[str, tuple[str, float]]:
    """{key value: (label cell or "", prob_true)} from a CSV with `key` and prob_true columns."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or key not in reader.fieldnames or "prob_true" not in reader.fieldnames:
            raise KitError(f"{path} has no {key}/prob_true columns", hint=f"it should be a kernel's {path.name}; pull the run again")
        out = {}
        for row in reader:
            try:
                out[row[key]] = (row.get("is_correct", ""), float(row["prob_true"]))
            except ValueError:
                raise KitError(f"{path}: row {row[key]!r} has no number in prob_true", hint="pull the run again") from None
        return out


def _label(cell: str) -> bool:
    return cell.strip().lower() in ("true", "1")


def _accuracy(probs: list[float], labels: list[bool], threshold: float) -> float:
    return sum((p >= threshold) == y for p, y in zip(probs, labels)) / len(labels)


def ensemble(ws: Workspace, members: list[str], weights: list[float] | None = None, threshold: str = "0.5") -> EnsembleResult:
    """Create a run averaging `members`' test probabilities (weighted), with validation from their predictions."""
    member_ids = [store.check_run_id(m) for m in members]
    if len(member_ids) < 2 or len(set(member_ids)) != len(member_ids):
        raise KitError("an ensemble needs at least two different runs", hint="kit ensemble run-3 run-5 [run-8 ...]")
    weights = list(weights) if weights else [1.0] * len(member_ids)
    if len(weights) != len(member_ids) or any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise KitError(f"{len(weights)} weights for {len(member_ids)} runs, or a negative one", hint="--weights 2,1,1 (one non-negative number per run)")
    total = sum(weights)
    weights = [w / total for w in weights]

    records = [store.load(ws, m) for m in member_ids]
    tests, vals = [], []
    for record in records:
        folder = store.run_dir(ws, record.id)
        if not (folder / TEST_PROBS).is_file():
            raise KitError(
                f"{record.id} has no {TEST_PROBS}: there are no probabilities to average",
                hint=f"kit pull {record.id} (a run needs predict_test=true; runs from before test_probs.csv cannot be ensembled)",
            )
        tests.append(_read_probs(folder / TEST_PROBS, "ID"))
        vals.append(_read_probs(folder / VAL_PREDICTIONS, "row") if (folder / VAL_PREDICTIONS).is_file() else None)
    ids = list(tests[0])
    for record, probs in zip(records[1:], tests[1:]):
        if set(probs) != set(ids):
            raise KitError(f"{record.id} predicted other test rows than {records[0].id}", hint="ensemble runs that scored the whole test set (test_rows=0)")
    test_probs = [sum(w * t[i][1] for w, t in zip(weights, tests)) for i in ids]

    val_rows: list[str] = []
    val_probs: list[float] = []
    labels: list[bool] = []
    member_acc: dict[str, float | None] = {}
    if all(v is not None for v in vals):
        shared = set(vals[0]).intersection(*vals[1:])
        val_rows = sorted(shared, key=lambda r: (len(r), r))
        labels = [_label(vals[0][r][0]) for r in val_rows]
        for record, v in zip(records, vals):
            if any(_label(v[r][0]) != y for r, y in zip(val_rows, labels)):
                raise KitError(f"{record.id}'s validation labels differ from {records[0].id}'s on the same rows", hint="ensemble runs of one workspace and one train.csv")
        val_probs = [sum(w * v[r][1] for w, v in zip(weights, vals)) for r in val_rows]
        for record, v in zip(records, vals):
            member_acc[record.id] = _accuracy([v[r][1] for r in val_rows], labels, 0.5) if val_rows else None
    if threshold == "tune":
        if not val_rows:
            raise KitError("--threshold tune needs the members' shared validation rows, and there are none", hint="use --threshold 0.5")
        cut = tune_threshold(val_probs, labels)
    else:
        try:
            cut = float(threshold)
        except ValueError:
            raise KitError(f"bad threshold {threshold!r}", hint="--threshold 0.5, or --threshold tune") from None
        if not 0 < cut < 1:
            raise KitError(f"bad threshold {threshold!r}", hint="a number between 0 and 1, or tune")

    config = {"runs": member_ids, "weights": [round(w, 6) for w in weights], "threshold": threshold, "threshold_used": cut}
    record = store.allocate(ws, KERNEL, "local", config)
    folder = store.run_dir(ws, record.id)
    atomic_write_text(folder / TEST_PROBS, "ID,prob_true\n" + "".join(f"{i},{p:.6f}\n" for i, p in zip(ids, test_probs)))
    atomic_write_text(folder / "submission.csv", "ID,is_correct\n" + "".join(f"{i},{p >= cut}\n" for i, p in zip(ids, test_probs)))
    metrics: dict = {"members": member_ids, "weights": config["weights"], "threshold": cut, "test_rows": len(ids),
                     "test_true_rate": sum(p >= cut for p in test_probs) / max(len(ids), 1)}
    val_accuracy = None
    if val_rows:
        atomic_write_text(folder / VAL_PREDICTIONS, "row,is_correct,prob_true\n" + "".join(
            f"{r},{y},{p:.6f}\n" for r, y, p in zip(val_rows, labels, val_probs)))
        val_accuracy = _accuracy(val_probs, labels, cut)
        eps = 1e-7
        metrics.update({
            "val_rows": len(val_rows), "val_accuracy": val_accuracy, "val_accuracy_at_0.5": _accuracy(val_probs, labels, 0.5),
            "val_loss": -sum(math.log(min(max(p if y else 1 - p, eps), 1)) for p, y in zip(val_probs, labels)) / len(labels),
            "member_val_accuracy_at_0.5": member_acc,
        })
    atomic_write_json(folder / "metrics.json", metrics)
    atomic_write_json(folder / "config.json", config)
    record.status, record.gpu = KernelStatus.COMPLETE, ""
    record.started = record.finished = store.now()
    record.outputs = sorted(["submission.csv", TEST_PROBS, "metrics.json", "config.json", *([VAL_PREDICTIONS] if val_rows else [])])
    store.save(ws, record)
    sheet.sync(ws, [record])
    return EnsembleResult(record, member_ids, weights, cut, val_accuracy, len(val_rows), member_acc)
