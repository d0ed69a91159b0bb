"""The task: what a competition's rows, labels, submission and metric are, in one description (`[task]` in kit.toml).

One module, two users: the kernels inline it like every runtime module, and kit imports this very file
(kit/task.py), so the label set, the metric and the submission writer cannot disagree between them.

    task = Task.from_dict(toml["task"])              # or Task.default(): the binary is_correct task
    task = task.with_labels(values)                  # labels = "from_train": the set read from train's target
    rule = fit_rule(task, y_true, probs)             # threshold / temperature / cut points, tuned on validation
    values = decide(task, probs, rule)               # what each row submits
    score(task, y_true, probs, rule)                 # the competition's metric
    write_submission(task, ids, values, path)

`probs` are per-class probabilities, one row per example and one column per class in `task.classes()` order (a
binary task's first class is the positive one: its column is P(True)). The module imports only the standard library
at the top; numpy and scikit-learn are imported by the functions that compute.
"""

from __future__ import annotations

import csv
import difflib
import math
import re
import string
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Iterable, Mapping, Sequence

KINDS = ("binary", "multiclass", "pairwise", "ordinal", "answer")
OUTPUTS = ("label", "probability", "probabilities", "top_k", "number", "answer")
METRICS = ("accuracy", "log_loss", "roc_auc", "roc_auc_by:<column>", "map@<k>", "qwk", "macro_f1", "rmse")
LOWER_IS_BETTER = ("log_loss", "rmse")
# Which submissions each metric can score (a metric the shape cannot have is refused before anything runs).
METRIC_OUTPUTS = {
    "accuracy": ("label", "number", "answer"),
    "macro_f1": ("label", "number"),
    "qwk": ("label", "number"),
    "rmse": ("number", "label"),
    "log_loss": ("probability", "probabilities"),
    "roc_auc": ("probability",),
    "roc_auc_by": ("probability",),
    "map": ("top_k",),
}
# The common shapes: what a preset fills in where [task] leaves a key out.
PRESETS = {
    "binary": {"kind": "binary", "output": "label", "metric": "accuracy"},
    "multiclass": {"kind": "multiclass", "output": "label", "metric": "accuracy", "labels": "from_train"},
    "topk": {"kind": "multiclass", "output": "top_k", "k": 3, "metric": "map@3", "labels": "from_train"},
    "pairwise": {"kind": "pairwise", "output": "probabilities", "metric": "log_loss"},
    "ordinal": {"kind": "ordinal", "output": "number", "metric": "qwk", "labels": "from_train"},
    # a generated answer (issue 26): an integer in a range or a short text, read from sampled completions
    "answer": {"kind": "answer", "output": "answer", "metric": "accuracy"},
}
# Generated answers: what an answer is, and the named rules that read it from a completion (runtime/answers.py).
ANSWER_TYPES = ("integer", "text")
EXTRACT_RULES = ("last_integer", "boxed", "after_marker")
TEXT_ANSWER_MAX = 200  # characters: a short text answer
# kaggle_evaluation's: the notebook must serve within 15 minutes of its start (its model loads on the first call).
STARTUP_LIMIT_SECONDS = 15 * 60
KEYS = {
    "": ("preset", "train", "test", "id", "prompt", "shorten", "target", "submission", "metric", "server"),
    "target": ("kind", "column", "columns", "compose", "one_hot", "labels", "answer", "range", "extract", "marker", "completion"),
    # an inference-server competition (its files ship kaggle_evaluation): the gateway calls the notebook's predict
    "server": ("module", "call_seconds", "run_seconds", "file", "rows"),
    "submission": ("file", "columns", "output", "k", "separator", "format"),
    "metric": ("name",),
}
TRUE_WORDS = ("true", "1", "1.0", "yes")
FALSE_WORDS = ("false", "0", "0.0", "no")
# Per-class probabilities must sum to 1 within this for a log-loss task (6 decimals on 65 classes stay well inside).
SUM_TOLERANCE = 1e-3
# Log loss clips probabilities to [EPS, 1 - EPS] (what the temperature fit uses; scikit-learn clips the same way).
EPS = 1e-15


class TaskError(ValueError):
    """A task description, file or submission that does not fit: `problem` in one line, and `fix`, what to change."""

    def __init__(self, problem: str, fix: str = "", key: str = ""):
        super().__init__(f"{problem} ({fix})" if fix else problem)
        self.problem = problem
        self.fix = fix
        self.key = key  # the [task] key at fault ("submission.k"), where a description is: kit points at its line


@dataclass(frozen=True)
class Task:
    """A competition's task, parsed and checked once (Task.from_dict); every field typed."""

    preset: str = "binary"
    train: str = "train.csv"
    test: str = "test.csv"
    id: str = "ID"
    # The prompt over train columns ({column} fields). "" = the kernel's named prompt (its `prompt` setting), which
    # reads question, answer and solution: the binary is_correct task's prompts.
    prompt: str = ""
    shorten: str = "solution"  # the one field cut to fit max_seq_length
    kind: str = "binary"
    column: str | None = "is_correct"
    columns: tuple[str, ...] = ()
    compose: str | None = None
    one_hot: tuple[str, ...] = ()
    labels: tuple[str, ...] | None = ("True", "False")  # None until resolved from train ("from_train")
    file: str = "submission.csv"
    sub_columns: tuple[str, ...] = ("ID", "is_correct")  # () until the labels are known (per-class columns)
    output: str = "label"
    k: int = 1
    separator: str = " "
    value_format: str = ""
    metric: str = "accuracy"
    # kind "answer": the answer's type and range, the rule that reads it from a completion (and its marker), and the
    # train column the train kernel teaches as the completion ("" = the answer alone, as the rule reads it)
    answer: str = ""
    answer_min: int = 0
    answer_max: int = 99999
    extract: str = ""
    marker: str = ""
    completion: str = ""
    # [task.server]: the gateway's module in kaggle_evaluation/ ("" = the kernel writes the file itself), the deadline
    # of one call and the limit of the whole rerun in seconds, the file the gateway writes, the rows it will send
    server_module: str = ""
    call_seconds: float = 0.0
    run_seconds: float = 0.0
    server_file: str = "submission.parquet"
    server_rows: int = 0

    @property
    def served(self) -> bool:
        """Whether the competition's gateway calls the kernel's predict (and writes the submission file itself)."""
        return bool(self.server_module)

    @property
    def submitted_file(self) -> str:
        """The file a submission is scored from: the gateway's in server mode, else the task's."""
        return self.server_file if self.served else self.file

    @classmethod
    def default(cls) -> "Task":
        """Today's task: the binary `is_correct` label of question/answer/solution, ID,is_correct, accuracy."""
        return cls()

    @classmethod
    def from_dict(cls, d: Mapping | None) -> "Task":
        """The task a [task] table describes (None or {} = Task.default()); a TaskError names the key and the fix."""
        if not d:
            return cls.default()
        _check_keys(d, "")
        for table in ("target", "submission", "metric", "server"):
            if table in d and not isinstance(d[table], Mapping):
                raise TaskError(f"task.{table} must be a table", f"write it as [task.{table}]", key=f"{table}")
            _check_keys(d.get(table) or {}, table)
        target, sub, metric = (dict(d.get(t) or {}) for t in ("target", "submission", "metric"))
        # Without a preset, the target's kind names the shape (every kind is a preset's name).
        preset = _text(d, "preset", _text(target, "kind", "binary", "task.target."), "task.")
        if preset not in PRESETS:
            raise TaskError(f"unknown task.preset {preset!r}{_did_you_mean(preset, PRESETS)}", f"one of {', '.join(PRESETS)}", key="preset")
        shape = PRESETS[preset]
        kind = _text(target, "kind", shape["kind"], "task.target.")
        if kind not in KINDS:
            raise TaskError(f"unknown task.target.kind {kind!r}{_did_you_mean(kind, KINDS)}", f"one of {', '.join(KINDS)}", key="target.kind")
        column = _text(target, "column", None, "task.target.")
        columns = _names(target, "columns", "task.target.")
        compose = _text(target, "compose", None, "task.target.")
        one_hot = _names(target, "one_hot", "task.target.")
        given = [name for name, v in (("column", column), ("columns", columns), ("one_hot", one_hot)) if v]
        if len(given) > 1:
            raise TaskError(f"task.target has {' and '.join(given)}: the target is read one way", "keep one of column, columns (with compose), one_hot", key="target")
        if not given:
            if preset != "binary" or "kind" in target:
                raise TaskError("task.target names no column", 'column = "label" (or columns = [...] with compose, or one_hot = [...])', key="target")
            column = "is_correct"
        if columns:
            compose = compose or ":".join("{%s}" % c for c in columns)
            missing = [c for c in columns if "{%s}" % c not in compose]
            stray = [f for f in template_fields(compose) if f not in columns]
            if missing or stray:
                raise TaskError(f"task.target.compose {compose!r} must use each of {list(columns)} and nothing else",
                                'compose = "' + ":".join("{%s}" % c for c in columns) + '"', key="target.compose")
        elif compose:
            raise TaskError("task.target.compose joins columns, and task.target has no columns", "columns = [\"A\", \"B\"] with it, or remove compose", key="target.compose")
        answer_fields = _answer_fields(target, kind, columns or one_hot)
        labels = _target_labels(target, shape, kind, column, one_hot)

        output = _text(sub, "output", shape["output"], "task.submission.")
        if output not in OUTPUTS:
            raise TaskError(f"unknown task.submission.output {output!r}{_did_you_mean(output, OUTPUTS)}", f"one of {', '.join(OUTPUTS)}", key="submission.output")
        metric_name = spell_metric(_text(metric, "name", shape["metric"], "task.metric."))
        family, metric_k, _group = _at_key(parse_metric, metric_name, key="metric.name")
        k = sub.get("k", metric_k or shape.get("k", 1))
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise TaskError(f"task.submission.k must be a whole number of at least 1, not {k!r}", "k = 3", key="submission.k")
        task_id = _text(d, "id", "ID", "task.")
        prompt = _text(d, "prompt", "", "task.")
        fields = _at_key(template_fields, prompt, key="prompt")
        shorten = _text(d, "shorten", (fields[-1] if fields else "") if prompt else "solution", "task.")
        if prompt and shorten and shorten not in fields:
            raise TaskError(f"task.shorten {shorten!r} is not a field of the prompt ({', '.join(fields) or 'it has none'})",
                            f'shorten = "{fields[-1]}"' if fields else "put {column} fields in the prompt", key="shorten")
        sub_columns = _names(sub, "columns", "task.submission.")
        task = cls(
            preset=preset, train=_text(d, "train", "train.csv", "task."), test=_text(d, "test", "test.csv", "task."), id=task_id,
            prompt=prompt, shorten=shorten, kind=kind, column=column, columns=columns, compose=compose, one_hot=one_hot, labels=labels,
            file=_text(sub, "file", "submission.csv", "task.submission."), sub_columns=sub_columns, output=output, k=k,
            separator=_text(sub, "separator", " ", "task.submission."),
            value_format=_text(sub, "format", "", "task.submission."), metric=metric_name, **answer_fields,
            **_server_fields(d.get("server")),
        )
        task._check_shape(family, metric_k)
        if not sub_columns and output != "probabilities":
            if one_hot:
                raise TaskError(f"task.submission.columns is needed: a {output} submission of a one-hot target has no column name to guess",
                                f'columns = ["{task_id}", "winner"] (the header of sample_submission)', key="submission.columns")
            task = replace(task, sub_columns=(task_id, task.target_name()))
        return task._with_resolved_columns() if labels is not None else task

    def to_dict(self) -> dict:
        """The [task] table this task reads from (Task.from_dict(t.to_dict()) == t): what a kernel's config carries."""
        target: dict = {"kind": self.kind, "labels": list(self.labels) if self.labels is not None else "from_train"}
        if self.column:
            target["column"] = self.column
        if self.columns:
            target.update(columns=list(self.columns), compose=self.compose)
        if self.one_hot:
            target["one_hot"] = list(self.one_hot)
        if self.kind == "answer":
            target.update(answer=self.answer, range=[self.answer_min, self.answer_max], extract=self.extract, marker=self.marker,
                          completion=self.completion)
            del target["labels"]
        server = {"server": {"module": self.server_module, "call_seconds": self.call_seconds, "run_seconds": self.run_seconds,
                             "file": self.server_file, "rows": self.server_rows}} if self.served else {}
        return {
            "preset": self.preset, "train": self.train, "test": self.test, "id": self.id, "prompt": self.prompt, "shorten": self.shorten,
            "target": target,
            "submission": {"file": self.file, "columns": list(self.sub_columns), "output": self.output, "k": self.k,
                           "separator": self.separator, "format": self.value_format},
            "metric": {"name": self.metric}, **server,
        }

    # --- the label set ---------------------------------------------------------------------------------------------

    def classes(self) -> tuple[str, ...]:
        """The label set, in the order of the probability columns (a binary task's positive class first)."""
        if self.labels is None:
            raise TaskError("the task's labels are read from train (labels = \"from_train\") and were not read yet",
                            "resolve them with task.with_labels(the train target values)")
        return self.labels

    def with_labels(self, values: Iterable[str]) -> "Task":
        """This task with its labels read from train's target `values` (labels = "from_train"): sorted, numbers as
        numbers, a binary task's true-like class first. A task with listed labels checks `values` against them."""
        if self.kind == "answer":  # generated answers are an open set: nothing to resolve or check
            return self
        seen = {str(v).strip() for v in values}
        if self.labels is not None:
            self.check_targets(seen)
            return self
        if not seen:
            raise TaskError(f"no labels in {self.train}'s {self.target_name()}", f"check that {self.train} has rows")
        return replace(self, labels=_ordered(seen, self.kind))._with_resolved_columns()

    def check_targets(self, values: Iterable[str]) -> None:
        """Refuse a train label outside the declared set, naming it and the fix."""
        known = set(self.classes())
        for value in values:
            if self.canonical(value) is None:
                listed = ", ".join(sorted(known)[:8]) + (", ..." if len(known) > 8 else "")
                raise TaskError(f"{self.train} has the label {value!r} in {self.target_name()}, which is not in task.target.labels ({listed})",
                                f'add it to labels, or set labels = "from_train"', key="target.labels")

    def canonical(self, value: str) -> str | None:
        """`value` spelled as the task's class it means (True for "true" or "1" in a True/False task), or None."""
        text = str(value).strip()
        classes = self.classes()
        if text in classes:
            return text
        if self.kind == "binary" and all(_truth(c) is not None for c in classes):
            truth = _truth(text)
            if truth is not None:
                return next((c for c in classes if _truth(c) == truth), None)
        if self.kind == "ordinal":
            try:
                number = float(text)
            except ValueError:
                return None
            return next((c for c in classes if float(c) == number), None)
        return None

    def top_k_labels(self, cell: str) -> tuple[str, ...]:
        """The labels of a top_k submission cell, best first: split at the separator (at any white space where the
        separator is white space: "A  B" is two labels), blanks dropped."""
        parts = cell.split(self.separator) if self.separator.strip() else cell.split()
        return tuple(part.strip() for part in parts if part.strip())

    @property
    def positive(self) -> str:
        """A binary task's positive class: the one its probability is of."""
        return self.classes()[0]

    # --- rows ------------------------------------------------------------------------------------------------------

    def target(self, row: Mapping[str, str]) -> str:
        """The class of one train row (its column, the columns composed, or the one-hot column set)."""
        if self.one_hot:
            cells = []
            for name in self.one_hot:
                try:
                    cells.append(float(row[name]))
                except (TypeError, ValueError):
                    raise TaskError(f"one-hot column {name!r} holds {row.get(name)!r}, not a number", f"check {self.train}") from None
            top = max(cells)
            if top <= 0 or cells.count(top) > 1:
                raise TaskError(f"a row of {self.train} has no single winner among {', '.join(self.one_hot)} ({cells})",
                                "each row needs exactly one 1 in its one-hot columns")
            return (self.labels or self.one_hot)[cells.index(top)]
        if self.columns:
            return str(self.compose).format(**{c: str(row[c]).strip() for c in self.columns})
        value = str(row[self.column]).strip()
        # An ordinal score read from a float column (Parquet, pandas, a CSV written "3.0") is the class "3".
        return _whole_number(value) if self.kind == "ordinal" else value

    def target_name(self) -> str:
        """The target's name as a header says it: the column, or the compose with its braces dropped."""
        if self.columns:
            return str(self.compose).replace("{", "").replace("}", "")
        if self.one_hot:
            return "/".join(self.one_hot)
        return str(self.column)

    def target_columns(self) -> tuple[str, ...]:
        """The train columns the target is read from."""
        return self.one_hot or self.columns or (str(self.column),)

    def fields(self) -> tuple[str, ...]:
        """The {fields} of the prompt (question, answer, solution for the kernel's named prompts)."""
        return template_fields(self.prompt) if self.prompt else ("question", "answer", "solution")

    def prompt_parts(self, row: Mapping[str, str]) -> tuple[str, str, str]:
        """One row's prompt as (text before the shortened field, that field's value, text after), fields filled in;
        the kernel cuts the middle to fit max_seq_length. Without a shortened field the middle is ""."""
        values = {name: str(row[name]) for name in self.fields()}
        if not self.shorten:
            return self.prompt.format_map(values), "", ""
        marker = "{" + self.shorten + "}"
        head, _, tail = self.prompt.partition(marker)
        if marker in tail:
            raise TaskError(f"the prompt has {marker} twice, and the shortened field must appear once", "keep one, or shorten another field")
        return head.format_map(values), values[self.shorten], tail.format_map(values)

    def render(self, row: Mapping[str, str]) -> str:
        """One row's whole prompt, up to where the label goes."""
        return "".join(self.prompt_parts(row))

    def check_train_columns(self, header: Sequence[str], where: str = "") -> None:
        """Refuse a prompt field, target column or group column that train's `header` lacks."""
        where = where or self.train
        for name in self.fields():
            if name not in header:
                raise TaskError(f"the prompt's field {{{name}}} is not a column of {where}{_did_you_mean(name, header)}",
                                f"use one of its columns: {_listing(header)}")
        for name in self.target_columns() + ((self.group,) if self.group else ()):
            if name not in header:
                raise TaskError(f"the task's column {name!r} is not a column of {where}{_did_you_mean(name, header)}",
                                f"[task.target] names one of {_listing(header)}")

    def check_test_columns(self, header: Sequence[str], where: str = "") -> None:
        """Refuse an id column or prompt field that test's `header` lacks."""
        where = where or self.test
        for name in (self.id, *self.fields()):
            if name not in header:
                raise TaskError(f"{name!r} is not a column of {where}{_did_you_mean(name, header)}", f"the task's id and prompt fields come from {_listing(header)}")

    # --- the metric ------------------------------------------------------------------------------------------------

    @property
    def higher_is_better(self) -> bool:
        """Whether a larger metric is a better one (not for log loss or RMSE)."""
        return parse_metric(self.metric)[0] not in LOWER_IS_BETTER

    @property
    def group(self) -> str | None:
        """The group column of roc_auc_by:<column> (one AUC per group, averaged), else None."""
        return parse_metric(self.metric)[2]

    def metric_column(self) -> str:
        """The leaderboard column of the validation metric: val_accuracy, val_log_loss, val_map@3, ..."""
        return "val_" + self.metric

    def prob_columns(self) -> tuple[str, ...]:
        """The per-class probability columns of val_predictions.csv and test_probs.csv: p_<class>."""
        return tuple(prob_column(c) for c in self.classes())

    # --- checks ----------------------------------------------------------------------------------------------------

    def _check_shape(self, family: str, metric_k: int | None) -> None:
        if self.kind == "answer" and not self.prompt:
            raise TaskError("a generated-answer task needs its prompt (the named prompts grade answers, they do not ask for one)",
                            'prompt = "Problem: {problem}\\nSolution:\\n" (with your columns)', key="prompt")
        allowed = METRIC_OUTPUTS[family]
        if self.output not in allowed:
            fits = [m for m, outs in METRIC_OUTPUTS.items() if self.output in outs]
            names = ", ".join("map@3" if m == "map" else "roc_auc_by:<column>" if m == "roc_auc_by" else m for m in fits)
            raise TaskError(f"metric {self.metric} cannot score a submission of {_output_words(self.output)}",
                            f'set [task.submission] output = "{allowed[0]}"' + (f" and k = {metric_k}" if metric_k else "") + f", or a metric for {_output_words(self.output)}: {names}", key="metric.name")
        if self.output == "probability" and self.kind != "binary":
            raise TaskError(f"output = \"probability\" is one class's probability, and this task is {self.kind}", 'output = "probabilities" (one column per class)', key="submission.output")
        if (self.output == "answer") != (self.kind == "answer"):
            raise TaskError(f"output = \"{self.output}\" and kind = \"{self.kind}\" do not go together: a generated answer is submitted as one",
                            'kind = "answer" with output = "answer" (or neither)', key="submission.output")
        if self.output == "number" and self.kind != "ordinal":
            raise TaskError(f"output = \"number\" submits an ordinal score, and this task is {self.kind}", 'output = "label", or kind = "ordinal"', key="submission.output")
        if family in ("qwk", "rmse") and self.kind != "ordinal":
            raise TaskError(f"metric {self.metric} compares numbers, and this task is {self.kind}", 'kind = "ordinal" (integer labels), or metric "accuracy"', key="metric.name")
        if family in ("roc_auc", "roc_auc_by") and self.kind != "binary":
            raise TaskError(f"metric {self.metric} scores a binary task, and this one is {self.kind}", 'kind = "binary", or metric "log_loss"', key="metric.name")
        if family == "map" and self.k > int(metric_k or 0):
            raise TaskError(f"task.submission.k = {self.k} submits more labels than {self.metric} reads", f"k = {metric_k}", key="submission.k")
        if self.output == "top_k" and not self.separator:
            raise TaskError("task.submission.separator is empty: the top-k labels would run together", 'separator = " "', key="submission.separator")

    def _with_resolved_columns(self) -> "Task":
        """Check the label set against the shape and fill per-class submission columns; returns the task."""
        classes = self.classes()
        if self.kind == "answer":  # an open set of answers: no classes to check
            return self
        if len(set(classes)) != len(classes) or any(not c for c in classes):
            raise TaskError(f"task.target.labels has a blank or repeated label: {list(classes)}", "list each class once", key="target.labels")
        if self.kind == "binary" and len(classes) != 2:
            raise TaskError(f"a binary task has two labels, and this one has {len(classes)}: {_listing(classes)}", 'kind = "multiclass"', key="target.labels")
        if self.kind == "ordinal":
            bad = [c for c in classes if not re.fullmatch(r"-?\d+", c)]
            if bad:
                raise TaskError(f"an ordinal task's labels are whole numbers, and {bad[0]!r} is not", 'kind = "multiclass"', key="target.labels")
        if self.output == "top_k" and self.k > len(classes):
            raise TaskError(f"task.submission.k = {self.k} is more than the {len(classes)} classes", f"k = {len(classes)} at most, and metric map@{len(classes)}", key="submission.k")
        columns = self.sub_columns
        if self.output == "probabilities":
            columns = columns or (self.id, *classes)
            if len(columns) != len(classes) + 1:
                raise TaskError(f"task.submission.columns has {len(columns) - 1} probability columns for {len(classes)} classes ({_listing(classes)})",
                                "the id column, then one column per class in the labels' order", key="submission.columns")
        return replace(self, sub_columns=columns)


@dataclass(frozen=True)
class Rule:
    """How per-class probabilities become a submission: argmax, a threshold on P(positive), one temperature, cut
    points on the expected score, or the top k. Saved in metrics.json (to_dict) so an infer kernel reuses it."""

    name: str = "argmax"  # argmax | threshold | temperature | cut_points | top_k | identity
    threshold: float = 0.5
    temperature: float = 1.0
    cuts: tuple[float, ...] = ()

    def to_dict(self) -> dict:
        return {**asdict(self), "cuts": list(self.cuts)}

    @classmethod
    def from_dict(cls, d: Mapping) -> "Rule":
        return cls(str(d.get("name", "argmax")), float(d.get("threshold", 0.5)), float(d.get("temperature", 1.0)), tuple(float(c) for c in d.get("cuts", ())))


# --- module functions ----------------------------------------------------------------------------------------------


def template_fields(text: str) -> tuple[str, ...]:
    """The distinct {fields} of a template, in the order they first appear."""
    try:
        names = [f for _, f, _, _ in string.Formatter().parse(text or "") if f is not None]
    except ValueError as exc:
        raise TaskError(f"the template {text[:40]!r}... does not parse: {exc}", "write fields as {column} and a literal brace as {{ or }}") from None
    if any(not n or not n.isidentifier() and not re.fullmatch(r"[^{}\[\].!:]+", n) for n in names):
        raise TaskError(f"the template {text[:40]!r}... has an empty or odd {{}} field", "write fields as {column}")
    return tuple(dict.fromkeys(names))


def spell_metric(name: str) -> str:
    """A metric's name as kit writes it: lower case, but for the group column of roc_auc_by:<column>, which is a
    column's name and keeps its case (ROC_AUC_BY:Rule -> roc_auc_by:Rule)."""
    family, colon, group = str(name).strip().partition(":")
    return family.strip().lower() + (colon + group.strip() if colon else "")


def parse_metric(name: str) -> tuple[str, int | None, str | None]:
    """(family, k, group) of a metric name: map@3 -> ("map", 3, None), roc_auc_by:rule -> ("roc_auc_by", None, "rule")."""
    name = spell_metric(name)
    if match := re.fullmatch(r"map@(\d+)", name):
        if int(match.group(1)) < 1:
            raise TaskError(f"metric {name}: k must be at least 1", "map@3")
        return "map", int(match.group(1)), None
    if name.startswith("roc_auc_by:"):
        group = name.split(":", 1)[1].strip()
        if not group:
            raise TaskError("metric roc_auc_by: names no group column", "roc_auc_by:<column>, e.g. roc_auc_by:rule")
        return "roc_auc_by", None, group
    if name in METRIC_OUTPUTS and name not in ("map", "roc_auc_by"):
        return name, None, None
    options = ("accuracy", "log_loss", "roc_auc", "map@3", "qwk", "macro_f1", "rmse")
    raise TaskError(f"unknown metric {name!r}{_did_you_mean(name, options)}", f"one of {', '.join(METRICS)}")


def prob_column(label: str) -> str:
    """The probability column of one class: p_<class>."""
    return f"p_{label}"


def _as_matrix(probs, width: int):
    import numpy as np

    matrix = np.asarray(probs, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] != width:
        raise TaskError(f"probabilities of shape {matrix.shape} for {width} classes", "one row per example, one column per class")
    return matrix


def _with_temperature(matrix, temperature: float):
    import numpy as np

    logits = np.log(np.clip(matrix, EPS, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    return out / out.sum(axis=1, keepdims=True)


def _expected(task: Task, matrix):
    import numpy as np

    values = np.asarray([float(c) for c in task.classes()])
    return (matrix / matrix.sum(axis=1, keepdims=True)) @ values


def decide(task: Task, probs, rule: Rule | None = None) -> list:
    """The submission's value for each row: a label (str), P(positive) (float), the per-class probabilities (a tuple
    of floats), or the top-k labels (a tuple of str, best first)."""
    import numpy as np

    rule = rule or Rule()
    classes = task.classes()
    matrix = _as_matrix(probs, len(classes))
    if rule.name == "temperature":
        matrix = _with_temperature(matrix, rule.temperature)
    if task.output == "probability":
        return [float(p) for p in matrix[:, 0]]
    if task.output == "probabilities":
        return [tuple(float(p) for p in row) for row in matrix]
    if task.output == "top_k":
        order = np.argsort(-matrix, axis=1, kind="stable")[:, : task.k]  # ties: the class listed first
        return [tuple(classes[j] for j in row) for row in order]
    if rule.name == "threshold":
        return [classes[0] if p >= rule.threshold else classes[1] for p in matrix[:, 0]]
    if rule.name == "cut_points":
        bins = np.searchsorted(np.asarray(rule.cuts), _expected(task, matrix), side="right")
        return [classes[int(b)] for b in bins]
    return [classes[int(j)] for j in np.argmax(matrix, axis=1)]


def metric_value(task: Task, y_true: Sequence[str], values: Sequence, groups: Sequence[str] | None = None) -> float:
    """The competition's metric of submitted `values` (decide's output) against the true classes."""
    family, k, group = parse_metric(task.metric)
    if not len(y_true):
        return float("nan")
    metrics = _sklearn_metrics()
    classes = task.classes()
    if family == "map":
        return mean_average_precision(y_true, values, k)
    if family == "accuracy":
        return float(metrics.accuracy_score(list(y_true), [str(v) for v in values]))
    if family == "macro_f1":
        return float(metrics.f1_score(list(y_true), [str(v) for v in values], average="macro"))
    if family == "qwk":
        return float(metrics.cohen_kappa_score([int(y) for y in y_true], [int(v) for v in values], weights="quadratic", labels=[int(c) for c in classes]))
    if family == "rmse":
        return float(metrics.mean_squared_error([float(y) for y in y_true], [float(v) for v in values]) ** 0.5)
    if family == "log_loss":
        if task.output == "probability":
            return float(metrics.log_loss([int(y == classes[0]) for y in y_true], [float(v) for v in values], labels=[0, 1]))
        # Rows as read from a file (6 decimals) sum to 1 only within rounding: normalized, as Kaggle's log loss does.
        rows = [[float(p) / (sum(v) or 1.0) for p in v] for v in values]
        return float(metrics.log_loss([classes.index(y) for y in y_true], rows, labels=list(range(len(classes)))))
    positive = [int(y == classes[0]) for y in y_true]
    if family == "roc_auc":
        return float(metrics.roc_auc_score(positive, [float(v) for v in values]))
    if groups is None:
        raise TaskError(f"metric {task.metric} needs each row's {group}", f"pass the {group} column of the scored rows")
    return mean_auc_by_group(positive, [float(v) for v in values], groups)


def score(task: Task, y_true: Sequence[str], probs, rule: Rule | None = None, groups: Sequence[str] | None = None) -> float:
    """The competition's metric from per-class probabilities, after the task's decision rule (argmax when None)."""
    return metric_value(task, y_true, decide(task, probs, rule), groups)


def mean_average_precision(y_true: Sequence[str], ranked: Sequence[Sequence[str]], k: int) -> float:
    """MAP@k with one true label per row: 1/rank of the true label among the first k predictions (its first
    occurrence), 0 when absent, averaged over rows."""
    total = 0.0
    for truth, predicted in zip(y_true, ranked):
        for rank, label in enumerate(list(predicted)[:k], start=1):
            if label == truth:
                total += 1.0 / rank
                break
    return total / len(y_true) if len(y_true) else float("nan")


def mean_auc_by_group(positive: Sequence[int], prob: Sequence[float], groups: Sequence[str]) -> float:
    """ROC AUC within each group, averaged over the groups (groups holding one class only have no AUC and are left out)."""
    metrics = _sklearn_metrics()
    by: dict[str, tuple[list[int], list[float]]] = {}
    for y, p, g in zip(positive, prob, groups):
        ys, ps = by.setdefault(str(g), ([], []))
        ys.append(y)
        ps.append(p)
    aucs = [metrics.roc_auc_score(ys, ps) for ys, ps in by.values() if 0 < sum(ys) < len(ys)]
    return float(sum(aucs) / len(aucs)) if aucs else float("nan")


def tune_threshold(prob_true: Sequence[float], labels: Sequence[bool]) -> float:
    """The cut on P(positive) that maximises accuracy on labelled rows (midpoints between scores; ties go to the one
    nearest 0.5)."""
    values = sorted(set(prob_true))
    candidates = sorted([0.5] + [(a + b) / 2 for a, b in zip(values, values[1:])])
    rows = sorted(zip(prob_true, labels))
    # Sweep the cut upward once (n log n, not n^2): each row it passes flips from predicted True to False.
    best_key, best_cut, correct, i = None, 0.5, sum(bool(y) for y in labels), 0
    for cut in candidates:
        while i < len(rows) and rows[i][0] < cut:
            correct += -1 if rows[i][1] else 1
            i += 1
        key = (correct, -abs(cut - 0.5))
        if best_key is None or key > best_key:
            best_key, best_cut = key, cut
    return best_cut


def fit_temperature(task: Task, y_true: Sequence[str], probs) -> float:
    """The one temperature that minimises log loss on labelled rows (golden-section search over its logarithm)."""
    import numpy as np

    matrix = _as_matrix(probs, len(task.classes()))
    truth = np.asarray([task.classes().index(y) for y in y_true])

    def loss(log_t: float) -> float:
        scaled = _with_temperature(matrix, math.exp(log_t))
        return float(-np.log(np.clip(scaled[np.arange(len(truth)), truth], EPS, 1.0)).mean())

    low, high = math.log(0.05), math.log(20.0)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    fa, fb = loss(a), loss(b)
    for _ in range(60):
        if fa <= fb:
            high, b, fb = b, a, fa
            a = high - ratio * (high - low)
            fa = loss(a)
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = loss(b)
    best = (low + high) / 2
    return 1.0 if loss(0.0) <= loss(best) else math.exp(best)


def fit_cut_points(task: Task, y_true: Sequence[str], probs, passes: int = 3, steps: int = 40) -> tuple[float, ...]:
    """Cut points on the expected score that maximise quadratic weighted kappa on labelled rows: started between the
    classes, each moved in turn over a grid between its neighbours (coordinate ascent)."""
    import numpy as np

    classes = task.classes()
    values = [float(c) for c in classes]
    expected = _expected(task, _as_matrix(probs, len(classes)))
    truth = [int(y) for y in y_true]
    metrics = _sklearn_metrics()

    def kappa(cuts: list[float]) -> float:
        predicted = [int(classes[int(b)]) for b in np.searchsorted(np.asarray(cuts), expected, side="right")]
        return metrics.cohen_kappa_score(truth, predicted, weights="quadratic", labels=[int(c) for c in classes])

    cuts = [(a + b) / 2 for a, b in zip(values, values[1:])]
    best = kappa(cuts)
    for _ in range(passes):
        improved = False
        for i in range(len(cuts)):
            low = cuts[i - 1] if i else values[0]
            high = cuts[i + 1] if i + 1 < len(cuts) else values[-1]
            for candidate in np.linspace(low, high, steps + 2)[1:-1]:
                trial = cuts[:i] + [float(candidate)] + cuts[i + 1 :]
                value = kappa(trial)
                if value > best + 1e-12:
                    best, cuts, improved = value, trial, True
        if not improved:
            break
    return tuple(cuts)


def fit_rule(task: Task, y_true: Sequence[str], probs, threshold: str | float = "tune") -> Rule:
    """The decision rule tuned on labelled rows: a threshold for binary accuracy (`threshold`: "tune" or a fixed
    number), one temperature for log loss, cut points for QWK, the top k for MAP@k, argmax otherwise."""
    family = parse_metric(task.metric)[0]
    if task.output == "top_k":
        return Rule("top_k")
    if family == "log_loss":
        return Rule("temperature", temperature=fit_temperature(task, y_true, probs) if len(y_true) else 1.0)
    if task.output == "probability":
        return Rule("identity")
    if task.kind == "binary" and family == "accuracy":
        if str(threshold) != "tune":
            return Rule("threshold", threshold=float(threshold))
        matrix = _as_matrix(probs, 2)
        cut = tune_threshold([float(p) for p in matrix[:, 0]], [y == task.positive for y in y_true]) if len(y_true) else 0.5
        return Rule("threshold", threshold=cut)
    if family == "qwk" and len(y_true):
        return Rule("cut_points", cuts=fit_cut_points(task, y_true, probs))
    return Rule("argmax")


def baseline(task: Task, y_true: Sequence[str], groups: Sequence[str] | None = None) -> tuple[str, float]:
    """What a model that ignores its input scores on these rows, and how to say it: always the majority class (the
    k most frequent for MAP@k), the class prior for log loss, any constant (0.5) for ROC AUC."""
    classes = task.classes()
    counts = {c: 0 for c in classes}
    for y in y_true:
        counts[y] = counts.get(y, 0) + 1
    ranked = sorted(classes, key=lambda c: -counts[c])  # ties: the class listed first
    n = len(y_true)
    family = parse_metric(task.metric)[0]
    if family == "log_loss":
        prior = [counts[c] / n for c in classes] if n else [1 / len(classes)] * len(classes)
        probs = [prior] * n
        shares = ", ".join(f"{c} {p:.2f}" for c, p in zip(classes, prior))
        return f"the class prior ({shares})", score(task, y_true, probs)
    if family in ("roc_auc", "roc_auc_by"):
        return "any constant probability", 0.5
    if task.output == "top_k":
        top = ranked[: task.k]
        return f"always {task.separator.join(top)} (the {len(top)} most frequent classes)", metric_value(task, y_true, [tuple(top)] * n)
    return f"always {ranked[0]} (the majority class)", metric_value(task, y_true, [ranked[0]] * n, groups)


def format_value(task: Task, value) -> list[str]:
    """The submission cells of one row's value (one cell, or one per class)."""
    def number(p: float) -> str:
        return task.value_format % p if task.value_format else f"{p:.6f}"

    if task.output == "probabilities":
        return [number(p) for p in value]
    if task.output == "probability":
        return [number(value)]
    if task.output == "top_k":
        return [task.separator.join(value)]
    return [str(value)]


def write_submission(task: Task, ids: Sequence, values: Sequence, path) -> Path:
    """The task's submission file: its header verbatim, one row per id, values in the task's format; written to a
    temporary name first so that a reader never sees half of it."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(task.sub_columns)
        for row_id, value in zip(ids, values):
            writer.writerow([row_id, *format_value(task, value)])
    partial.replace(path)
    return path


def check_cells(task: Task, cells: Sequence[str], where: str) -> None:
    """Refuse one submission row's value cells (after the id) that the task cannot score; `where` names the row."""
    if task.output == "answer":
        if answer_value(task, cells[0]) is None:
            kind = f"an integer in [{task.answer_min}, {task.answer_max}]" if task.answer == "integer" else f"a text of 1 to {TEXT_ANSWER_MAX} characters"
            raise TaskError(f"{where}: {cells[0]!r} is not an answer of the task", kind)
        return
    classes = task.classes()
    if task.output in ("label", "number"):
        if cells[0] not in classes:
            raise TaskError(f"{where}: {cells[0]!r} is not a label of the task", f"one of {_listing(classes)}")
        return
    if task.output == "top_k":
        labels = task.top_k_labels(cells[0])
        if not labels:
            raise TaskError(f"{where}: no label", f"up to {task.k} labels separated by {task.separator!r}, best first")
        if len(labels) > task.k:
            raise TaskError(f"{where}: {len(labels)} labels, more than k = {task.k}", f"keep the {task.k} best")
        for label in labels:
            if label not in classes:
                raise TaskError(f"{where}: {label!r} is not a label of the task", f"one of {_listing(classes)}")
        return
    values = []
    for cell in cells:
        try:
            p = float(cell)
        except ValueError:
            raise TaskError(f"{where}: {cell!r} is not a probability", "a number between 0 and 1") from None
        if not 0.0 <= p <= 1.0:  # NaN fails this too
            raise TaskError(f"{where}: {cell} is not a probability between 0 and 1", "write probabilities in [0, 1]")
        values.append(p)
    if task.output == "probabilities" and parse_metric(task.metric)[0] == "log_loss" and abs(sum(values) - 1.0) > SUM_TOLERANCE:
        raise TaskError(f"{where}: the class probabilities sum to {sum(values):.6f}, not 1", "normalize each row (divide by its sum)")


def check_submission(task: Task, header: Sequence[str], rows: Iterable[Sequence[str]], expected_ids: Iterable[str], name: str = "") -> int:
    """Check a submission as it streams by: the header, every expected id exactly once, values the task can score.
    `rows` are the cells of each data row (line numbers count from the header, line 1). Returns the rows read."""
    name = name or task.file
    header = [h.strip() for h in header]
    if tuple(header) != task.sub_columns:
        raise TaskError(f"{name}'s header is {','.join(header)}", f"the task's header is {','.join(task.sub_columns)}")
    expected = set(expected_ids)
    seen: set[str] = set()
    width = len(task.sub_columns)
    count = 0
    for count, cells in enumerate(rows, start=1):
        where = f"{name} line {count + 1}"
        if len(cells) != width:
            raise TaskError(f"{where}: {len(cells)} cells, the header has {width}", "one value per column")
        row_id = cells[0].strip()
        if row_id not in expected:
            raise TaskError(f"{where}: {task.id} {row_id!r} is not a test row", f"only the ids of {task.test}")
        if row_id in seen:
            raise TaskError(f"{where}: {task.id} {row_id!r} appears twice", "one row per id")
        seen.add(row_id)
        check_cells(task, [c.strip() for c in cells[1:]], where)
    missing = expected - seen
    if missing:
        raise TaskError(f"{name} has no row for {len(missing)} of the {len(expected)} test ids (e.g. {sorted(missing)[0]!r})", "one row per test id")
    return count


def read_header(path) -> list[str]:
    """The column names of a CSV or Parquet file (Parquet needs pyarrow)."""
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        return list(_parquet(path).schema_arrow.names)
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return [h.strip() for h in next(csv.reader(fh), [])]


def read_rows(path, columns: Sequence[str] | None = None) -> Iterable[dict]:
    """The rows of a CSV or Parquet file as {column: text}, streamed (only `columns` where given)."""
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        parquet = _parquet(path)
        for batch in parquet.iter_batches(columns=list(columns) if columns else None):
            for row in batch.to_pylist():
                yield {k: "" if v is None else str(v) for k, v in row.items()}
        return
    with open(path, newline="", encoding="utf-8-sig") as fh:
        for row in csv.DictReader(fh):
            yield {k: row[k] for k in columns} if columns else row


def _parquet(path: Path):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise TaskError(f"{path.name} is a Parquet file, and reading it needs pyarrow, which is not installed", "pip install pyarrow") from None
    return pq.ParquetFile(path)


def _sklearn_metrics():
    try:
        from sklearn import metrics
    except ImportError:
        raise TaskError("the task's metric is computed with scikit-learn, which is not installed", "pip install scikit-learn") from None
    return metrics


def _ordered(values: set[str], kind: str) -> tuple[str, ...]:
    try:
        ordered = sorted(values, key=float)
    except ValueError:
        ordered = sorted(values)
    if kind == "binary" and len(ordered) == 2 and all(_truth(v) is not None for v in ordered):
        ordered.sort(key=lambda v: not _truth(v))  # the true-like class first: the one a probability is of
    return tuple(ordered)


def _whole_number(text: str) -> str:
    """"3.0" as "3"; any other text as it is."""
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


def _truth(value: str) -> bool | None:
    text = str(value).strip().lower()
    return True if text in TRUE_WORDS else False if text in FALSE_WORDS else None


def _labels(value) -> tuple[str, ...] | None:
    if value == "from_train":
        return None
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
        return tuple(str(v).strip() for v in value)
    raise TaskError(f"task.target.labels must list the classes or say \"from_train\", not {value!r}", 'labels = ["A", "B", "C"], or labels = "from_train"',
                    key="target.labels")


def _target_labels(target: Mapping, shape: Mapping, kind: str, column: str | None, one_hot: tuple[str, ...]) -> tuple[str, ...] | None:
    """[task.target]'s label set: listed, None for "from_train" (the preset's default but for today's is_correct
    task), a one-hot target's column names, () for generated answers (an open set)."""
    default = "from_train" if not (kind == "binary" and column == "is_correct") else ["True", "False"]
    value = target.get("labels", list(one_hot) if one_hot else shape.get("labels", default))
    labels = () if kind == "answer" else _labels(value)
    if one_hot and labels is None:  # target() names a row's class by its column's place: the classes must be fixed
        raise TaskError("a one-hot target's classes are its columns, and labels = \"from_train\" would sort them apart from them",
                        "leave labels out (the one_hot column names), or list one label per one_hot column, in their order", key="target.labels")
    if one_hot and len(labels) != len(one_hot):
        raise TaskError(f"task.target.labels names {len(labels)} classes for {len(one_hot)} one_hot columns",
                        "one label per one_hot column, in their order, or leave labels out", key="target.labels")
    return labels


def _text(d: Mapping, key: str, default, prefix: str):
    value = d.get(key, default)
    if value is not None and not isinstance(value, str):
        raise TaskError(f"{prefix}{key} must be text, not {value!r}", f'{key} = "{value}"', key=f"{prefix}{key}".removeprefix("task."))
    return value


def _names(d: Mapping, key: str, prefix: str) -> tuple[str, ...]:
    value = d.get(key, [])
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v.strip() for v in value):
        raise TaskError(f"{prefix}{key} must be a list of column names, not {value!r}", f'{key} = ["a", "b"]', key=f"{prefix}{key}".removeprefix("task."))
    return tuple(v.strip() for v in value)


def _check_keys(d: Mapping, table: str) -> None:
    known = KEYS[table]
    for key in d:
        if key not in known:
            where = f"task.{table}" if table else "task"
            raise TaskError(f"unknown key {key!r} in [{where}]{_did_you_mean(key, known)}", f"keys of [{where}]: {', '.join(known)}",
                            key=f"{table}.{key}" if table else key)


def _at_key(check, value, key: str):
    """check(value), its TaskError pointed at the [task] key it came from."""
    try:
        return check(value)
    except TaskError as exc:
        raise TaskError(exc.problem, exc.fix, key=key) from None


def _did_you_mean(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _listing(names: Sequence[str], limit: int = 12) -> str:
    names = list(names)
    return ", ".join(names[:limit]) + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _output_words(output: str) -> str:
    return {"label": "labels", "number": "numbers", "probability": "a probability", "probabilities": "per-class probabilities",
            "top_k": "the top k labels", "answer": "generated answers"}[output]


def answer_value(task: Task, cell: str):
    """A submitted cell as the task's answer (an int in range, or a short text), None where it is not one."""
    text = str(cell).strip()
    if task.answer == "text":
        return text if 0 < len(text) <= TEXT_ANSWER_MAX else None
    if not re.fullmatch(r"-?\d+", text):
        return None
    value = int(text)
    return value if task.answer_min <= value <= task.answer_max else None


def _number(d: Mapping, key: str, default, prefix: str, kind=float, least: float = 0.0):
    value = d.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not float(value).is_integer()) or value < least:
        word = "a whole number" if kind is int else "a number"
        raise TaskError(f"{prefix}{key} must be {word} of at least {least:g}, not {value!r}", f"{key} = {kind(default) if default else kind(least) or 1}", key=prefix.removeprefix("task.") + key)
    return kind(value)


def _answer_fields(target: Mapping, kind: str, other_targets) -> dict:
    """The answer keys of [task.target]: checked for kind "answer", refused for the other kinds."""
    keys = [k for k in ("answer", "range", "extract", "marker", "completion") if k in target]
    if kind != "answer":
        if keys:
            raise TaskError(f"task.target.{keys[0]} is for generated answers, and this task is {kind}", 'kind = "answer", or remove it', key=f"target.{keys[0]}")
        return {}
    if other_targets:
        raise TaskError("a generated-answer task reads its answer from one column", 'column = "answer" (no columns or one_hot)', key="target")
    answer = _text(target, "answer", "integer", "task.target.")
    if answer not in ANSWER_TYPES:
        raise TaskError(f"unknown task.target.answer {answer!r}{_did_you_mean(answer, ANSWER_TYPES)}", f"one of {', '.join(ANSWER_TYPES)}", key="target.answer")
    span = target.get("range", [0, 99999])
    if isinstance(span, (list, tuple)):  # kit.toml's checked lists hold text: "0", "99999"
        span = [int(v) if isinstance(v, str) and re.fullmatch(r"-?\d+", v.strip()) else v for v in span]
    if (not isinstance(span, (list, tuple)) or len(span) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in span)
            or span[0] > span[1]):
        raise TaskError(f"task.target.range must be [lowest, highest] whole numbers, not {span!r}", "range = [0, 99999]", key="target.range")
    extract = _text(target, "extract", "", "task.target.")
    if not extract:
        raise TaskError("a generated-answer task needs an extraction rule: how the answer is read from a completion",
                        f'extract = "boxed" (one of {", ".join(EXTRACT_RULES)})', key="target")
    if extract not in EXTRACT_RULES:
        raise TaskError(f"unknown task.target.extract {extract!r}{_did_you_mean(extract, EXTRACT_RULES)}", f"one of {', '.join(EXTRACT_RULES)}", key="target.extract")
    marker = _text(target, "marker", "", "task.target.")
    if extract == "after_marker" and not marker.strip():
        raise TaskError("extract = \"after_marker\" needs the marker the answer follows", 'marker = "Answer:"', key="target.extract")
    return {"answer": answer, "answer_min": span[0], "answer_max": span[1], "extract": extract, "marker": marker,
            "completion": _text(target, "completion", "", "task.target.")}


def _server_fields(server) -> dict:
    """[task.server], checked: the gateway's module, the per-call deadline within the run's limit."""
    if server is None:
        return {}
    module = _text(server, "module", "", "task.server.")
    if not module:
        raise TaskError("task.server names no module: which kaggle_evaluation/<module>.py serves predict",
                        'module = "aimo_3_inference_server" (kit init --competition SLUG finds it in the competition\'s files)', key="server")
    call = _number(server, "call_seconds", 60 * 60, "task.server.", least=1)
    run = _number(server, "run_seconds", 9 * 3600, "task.server.", least=1)
    if call > run:
        raise TaskError(f"task.server.call_seconds = {call:g} is more than the whole rerun's run_seconds = {run:g}",
                        f"call_seconds = {run:g} at most (the gateway's deadline per call)", key="server.call_seconds")
    return {"server_module": module, "call_seconds": call, "run_seconds": run,
            "server_file": _text(server, "file", "submission.parquet", "task.server."),
            "server_rows": _number(server, "rows", 0, "task.server.", kind=int)}
