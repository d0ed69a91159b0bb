"""[task] in kit.toml: its keys in the one schema, and the Task it describes, checked when the workspace loads.

The schema (`TASK_TABLE`) refuses an unknown key with a did-you-mean and a wrong type at its file:line; the Task
(kernels/runtime/task.py, through kit.task) then checks that the description holds together (a metric the shape
cannot have, k larger than the classes, ...), and its TaskError is reported at the line of the key at fault.
A kit.toml without [task] is the binary is_correct task of kit's reference competition, exactly as before.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from kit.errors import ConfigError
from kit.task import ANSWER_TYPES, EXTRACT_RULES, KINDS, OUTPUTS, PRESETS, Task, TaskError, parse_metric
from kit.workspace.schema import Key, Table, where

LABELS_RULE = 'a list of the classes, or "from_train"'
CHECK_CACHE = "task-check.json"  # under .kit/: the train labels last read, with the task and files they were read for


def _metric_problem(value: str) -> str:
    try:
        parse_metric(value)
    except TaskError as exc:
        return exc.problem.replace(f"unknown metric {value!r}", "unknown metric")
    return ""


TASK_TABLE = Table({
    "preset": Key(str, "binary", "the competition's shape; it fills in the keys left out", choices=tuple(PRESETS)),
    "train": Key(str, "train.csv", "the train file among the competition's files (CSV or Parquet)"),
    "test": Key(str, "test.csv", "the test file (CSV or Parquet)"),
    "id": Key(str, "ID", "the id column of test and of the submission"),
    "prompt": Key(str, "", "the prompt over train columns, with {column} fields (empty: the kernel's named prompt, over question, answer, solution)"),
    "shorten": Key(str, "solution", "the one {field} cut to fit max_seq_length (default: the prompt's last field)"),
    "target": Table({
        "kind": Key(str, "binary", "what the target is", choices=KINDS),
        "column": Key(str, "is_correct", "the target column"),
        "columns": Key(list, [], "two (or more) target columns, joined by compose"),
        "compose": Key(str, "", 'how columns join into one class, e.g. "{Category}:{Misconception}"'),
        "one_hot": Key(list, [], "one-hot columns read as one class (the column holding 1)"),
        "labels": Key(list, ["True", "False"], f"the label set: {LABELS_RULE} (read from train's target, sorted)", rule=LABELS_RULE),
        "answer": Key(str, "integer", "kind answer: what an answer is", choices=ANSWER_TYPES),
        "range": Key(list, [0, 99999], "kind answer, integer: the lowest and highest answer"),
        "extract": Key(str, "", "kind answer: the rule that reads the answer from a completion: " + ", ".join(EXTRACT_RULES)),
        "marker": Key(str, "", 'extract after_marker: the text the answer follows, e.g. "Answer:"'),
        "completion": Key(str, "", "kind answer: the train column the train kernel teaches as the completion (empty: the answer alone)"),
    }, help="what the model learns to give for each train row"),
    "submission": Table({
        "file": Key(str, "submission.csv", "the submission file's name"),
        "columns": Key(list, ["ID", "is_correct"], "the submission's header, verbatim (per-class probabilities: the id, then one column per class)"),
        "output": Key(str, "label", "what each row submits", choices=OUTPUTS),
        "k": Key(int, 1, "top_k: labels a row lists at most, best first", min=1),
        "separator": Key(str, " ", "top_k: what separates the labels"),
        "format": Key(str, "", 'probabilities: the number format, e.g. "%.6f" (empty: 6 decimals)'),
    }, help="what the submission file holds"),
    "metric": Table({
        "name": Key(str, "accuracy", "the competition's metric: accuracy, log_loss, roc_auc, roc_auc_by:<column>, map@<k>, qwk, macro_f1, rmse",
                    check=_metric_problem, rule="a metric such as accuracy, log_loss or map@3",
                    fix="name = one of accuracy, log_loss, roc_auc, roc_auc_by:<column>, map@<k>, qwk, macro_f1, rmse"),
    }, help="how the competition scores it (and its direction: lower log loss and RMSE are better)"),
    "server": Table({
        "module": Key(str, "", "the inference server's module in the competition's kaggle_evaluation/ (kit init finds it)"),
        "call_seconds": Key(float, 3600.0, "the gateway's deadline for one predict call after the first, in seconds", min=1),
        "run_seconds": Key(float, 9 * 3600.0, "the limit of the whole rerun, in seconds", min=1),
        "file": Key(str, "submission.parquet", "the file the gateway writes (and the submission names)"),
        "rows": Key(int, 0, "rows the rerun will send, where the competition says (0: unknown); the run's budget is shared between them", min=0),
    }, help="an inference-server competition (its files ship kaggle_evaluation): the gateway calls the kernel's predict"),
}, help="the competition's task: its files, prompt, target, submission and metric (left out: the binary is_correct task)")


def task_from_toml(path: Path, text: str, table: Mapping[str, Any] | None) -> Task | None:
    """The Task of kit.toml's [task] table (already checked against TASK_TABLE), or None when there is none; a
    TaskError becomes a ConfigError at the line of the key at fault."""
    if table is None:
        return None
    try:
        return Task.from_dict(dict(table))
    except TaskError as exc:
        section, _, key = ("task." + exc.key).rpartition(".") if exc.key else ("task", "", None)
        located = where(path, text, section, key) if key else where(path, text, "task", None)
        if located == str(path) and key:  # a key left out (filled by the preset): point at the table
            located = where(path, text, section, None) if section != "task" else where(path, text, "task", None)
            if located == str(path):
                located = where(path, text, "task", None)
        raise ConfigError(f"{located}: {exc.problem}", hint=exc.fix) from None


def data_folder(ws, task: Task) -> Path | None:
    """The folder of the competition's files on this machine that holds the task's train file: the practice
    competition's data/, or data/COMPETITION from kit data; None where neither has it."""
    return next((f for f in (ws.practice_dir / "data", ws.root / "data" / ws.competition) if (f / task.train).is_file()), None)


def check_task_data(ws) -> Task | None:
    """Check the workspace's [task] against the competition's files where they are on this machine (the practice
    competition's, or data/COMPETITION from kit data), before anything is built or spent: the prompt's fields and
    the target's columns are train columns, the id and fields are test columns, every train label is in the
    declared set (or, read from train, the set fits the shape: k at most the classes). Returns the task with its
    labels resolved, or None without a [task] or without the files (the kernel checks them where it runs)."""
    from kit.task import read_header, read_rows

    task = ws.task_table
    if task is None:
        return None
    folder = data_folder(ws, task)
    if folder is None:
        return None
    train = folder / task.train
    # A push of a sweep checks the same files again: the labels read last time stand while the task and files do.
    stamp = json.dumps([task.to_dict(), *(_file_stamp(folder / name) for name in (task.train, task.test))], sort_keys=True)
    cache = ws.state_dir / CHECK_CACHE
    try:
        cached = json.loads(cache.read_text(encoding="utf-8"))
        if cached.get("stamp") == stamp:
            return task.with_labels(cached["labels"])
    except (OSError, ValueError, KeyError, TypeError, TaskError):
        pass
    try:
        task.check_train_columns(read_header(train), str(train))
        if (folder / task.test).is_file():
            task.check_test_columns(read_header(folder / task.test), str(folder / task.test))
        values = {task.target(row) for row in read_rows(train, task.target_columns())}
        resolved = task.with_labels(values)
    except TaskError as exc:
        raise ConfigError(exc.problem, hint=exc.fix) from None
    from kit.fileio import atomic_write_json

    atomic_write_json(cache, {"stamp": stamp, "labels": sorted(values)})
    return resolved


def _file_stamp(path: Path) -> list:
    try:
        stat = path.stat()
    except OSError:
        return [str(path)]
    return [str(path), stat.st_size, stat.st_mtime_ns]


def task_toml(table: Mapping[str, Any], note: str = "") -> str:
    """A [task] table (its [task.*] tables after its keys) as kit.toml text, under a comment line `note` if any."""
    lines = ["", *([f"# {note}"] if note else []), "[task]"]
    lines += [f"{key} = {_toml(value)}" for key, value in table.items() if not isinstance(value, Mapping)]
    for name, values in ((k, v) for k, v in table.items() if isinstance(v, Mapping)):
        lines += ["", f"[task.{name}]", *(f"{k} = {_toml(v)}" for k, v in values.items())]
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)  # a TOML basic string (and a float) is written as JSON writes it
