"""A practice competition in one of the shapes of kit/practice/shapes.py (multiclass, topk, pairwise, ordinal):
its files, and its submissions scored with the task's metric (kernels/runtime/task.py, the kernels' own code).

Files: data/train.csv and data/test.csv (the shape's columns; a few visible test rows in a code competition),
data/sample_submission.csv (the task's header, a constant value), and hidden/test.csv, hidden/sample_submission.csv
and hidden/solution.csv (the id, the row's class as `label`, Usage).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from kit.errors import SubmissionError
from kit.fileio import atomic_write_csv
from kit.practice.shapes import Shape, generate_rows

SOLUTION_LABEL = "label"


def task_of(table: dict):
    """The Task a shape's [task] table describes, its classes resolved where the table lists none."""
    from kit.task import Task

    return Task.from_dict(table)


def sample_header_and_row(shape: Shape, classes: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """sample_submission's header and the cells after the id: the task's columns and the shape's constant value."""
    task = task_of(shape.task).with_labels(classes)
    if task.output != "probabilities":
        return list(task.sub_columns), [shape.sample]
    # 1/C each, the first taking what rounding leaves, so that every row sums to 1 exactly
    share = round(1 / len(classes), 6)
    return list(task.sub_columns), [f"{1 - share * (len(classes) - 1):.6f}"] + [f"{share:.6f}"] * (len(classes) - 1)


def write_shape_data(directory: Path, shape: Shape, seed: int, n_train: int, n_test: int, public_ids: set[int],
                     visible_rows: int | None) -> dict:
    """The competition's files (data/ and hidden/); returns what competition.json records of the task."""
    rows = generate_rows(shape, seed, n_train + n_test)
    train, test = rows[:n_train], rows[n_train:]
    classes = tuple(sorted({shape.target(r) for r in rows}))
    data_dir, hidden_dir = directory / "data", directory / "hidden"
    atomic_write_csv(data_dir / "train.csv", shape.train_columns, [[r[c] for c in shape.train_columns] for r in train])
    test_rows = [[r[c] for c in shape.test_columns] for r in test]
    visible = test_rows if visible_rows is None else test_rows[:visible_rows]
    header, cells = sample_header_and_row(shape, classes)
    atomic_write_csv(data_dir / "test.csv", shape.test_columns, visible)
    atomic_write_csv(data_dir / "sample_submission.csv", header, [[row[0], *cells] for row in visible])
    atomic_write_csv(hidden_dir / "test.csv", shape.test_columns, test_rows)
    atomic_write_csv(hidden_dir / "sample_submission.csv", header, [[row[0], *cells] for row in test_rows])
    atomic_write_csv(hidden_dir / "solution.csv", (shape.id, SOLUTION_LABEL, "Usage"),
                     [(r[shape.id], shape.target(r), "Public" if i in public_ids else "Private") for i, r in enumerate(test)])
    return {"task": shape.name, "task_table": shape.task}


def read_shape_solution(path: Path, id_column: str) -> dict[str, tuple[str, bool]]:
    """hidden/solution.csv: id -> (the row's class, public row?)."""
    with open(path, newline="", encoding="utf-8") as fh:
        return {row[id_column]: (row[SOLUTION_LABEL], row["Usage"] == "Public") for row in csv.DictReader(fh)}


def submitted_values(task, cells: list[str]):
    """One submission row's value as task.metric_value reads it (decide's output): a label, P(positive), the
    per-class probabilities or the top-k labels."""
    if task.output == "probabilities":
        return tuple(float(c) for c in cells)
    if task.output == "probability":
        return float(cells[0])
    if task.output == "top_k":
        return task.top_k_labels(cells[0])
    return task.canonical(cells[0])


def score_shape(csv_path: Path, table: dict, solution: dict[str, tuple[str, bool]]) -> tuple[float, float]:
    """(public, private) scores of a submission with the task's metric; SubmissionError (one line, what fits) for
    a file the task cannot score: its header, every test id once, values the task can score."""
    from kit.task import TaskError, check_submission, metric_value

    task = task_of(table).with_labels({label for label, _ in solution.values()})
    csv_path = Path(csv_path)
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            rows = [r for r in csv.reader(fh) if r]
    except (OSError, UnicodeDecodeError) as exc:
        raise SubmissionError(f"cannot read {csv_path}: {exc}", hint=f"submit a UTF-8 CSV with columns {','.join(task.sub_columns)}") from None
    if not rows:
        raise SubmissionError(f"{csv_path.name} is empty", hint=f"the header is {','.join(task.sub_columns)}, then a row per test id")
    try:
        check_submission(task, rows[0], rows[1:], solution, name=csv_path.name)
    except TaskError as exc:
        raise SubmissionError(exc.problem, hint=exc.fix or "see data/sample_submission.csv") from None
    values = {r[0].strip(): submitted_values(task, [c.strip() for c in r[1:]]) for r in rows[1:]}
    scores = []
    for public in (True, False):
        ids = [i for i, (_, is_public) in solution.items() if is_public == public]
        scores.append(round(metric_value(task, [solution[i][0] for i in ids], [values[i] for i in ids]), 5))
    return scores[0], scores[1]


def shape_baseline(table: dict, solution: dict[str, tuple[str, bool]]) -> tuple[str, float]:
    """The host's baseline on the public rows: the task's baseline (the majority class, the class prior for log loss)."""
    from kit.task import baseline

    task = task_of(table).with_labels({label for label, _ in solution.values()})
    described, value = baseline(task, [label for label, public in solution.values() if public])
    return described, round(value, 5)


TASK_HEADER = re.compile(r"^\s*\[\s*task(\.[^\]]*)?\s*\]\s*(#.*)?$")
TABLE_HEADER = re.compile(r"^\s*\[")


def without_task_tables(text: str) -> str:
    """kit.toml's text without its [task] and [task.*] tables (and the comment lines right above them)."""
    lines, out, inside = text.splitlines(), [], False
    for line in lines:
        if TASK_HEADER.match(line):
            inside = True
            while out and out[-1].lstrip().startswith("#"):
                out.pop()
            continue
        if inside and TABLE_HEADER.match(line):
            inside = False
        if not inside:
            out.append(line)
    return "\n".join(out).rstrip("\n") + "\n"


def set_workspace_task(root: Path, name: str, table: dict | None) -> str:
    """Make kit.toml's [task] the practice competition's: `table`, or none for the binary task (the default one).
    kit.toml is left as it was where the result does not load. Returns what changed, in words ("" for nothing)."""
    from kit.workspace import layout
    from kit.workspace.task_config import task_toml

    path = Path(root) / layout.WORKSPACE_FILE
    before = path.read_text(encoding="utf-8")
    had = any(TASK_HEADER.match(line) for line in before.splitlines())
    text = without_task_tables(before)
    if table is not None:
        text += task_toml(table, f"The practice competition's task (kit practice init --task {name}).")
    if text == before:
        return ""
    layout.rewrite_checked(root, text)
    if table is None:
        return f"{path.name}: [task] removed (the practice competition is the binary task, the default)" if had else ""
    return f"{path.name}: [task] set to the {name} practice competition's (kit task show)"
