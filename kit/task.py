"""The task description kit follows: kernels/runtime/task.py itself, the very file the kernels inline.

kit ships the kernels' runtime as kit._kernels (the repo's kernels/ when editable); this module loads task.py from
there once, so that the label set, the metric and the submission writer kit uses are the kernels' own (no copy
that can disagree). It imports only the standard library: `import kit.task` stays light.

    from kit.task import Task, TaskError, score, fit_rule, decide, baseline, write_submission, check_submission
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from kit.build.templates import packaged_kernels_dir

MODULE = "kit._kernels.runtime.task"


def runtime_task() -> ModuleType:
    """kernels/runtime/task.py as a module (loaded once, under its installed name)."""
    if MODULE in sys.modules:
        return sys.modules[MODULE]
    path = packaged_kernels_dir() / "runtime" / "task.py"
    spec = importlib.util.spec_from_file_location(MODULE, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE] = module  # before running it: its dataclasses look their module up
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[MODULE]
        raise
    return module


_task = runtime_task()
Task = _task.Task
TaskError = _task.TaskError
Rule = _task.Rule
PRESETS = _task.PRESETS
KINDS = _task.KINDS
OUTPUTS = _task.OUTPUTS
ANSWER_TYPES = _task.ANSWER_TYPES
EXTRACT_RULES = _task.EXTRACT_RULES
answer_value = _task.answer_value
score = _task.score
metric_value = _task.metric_value
fit_rule = _task.fit_rule
decide = _task.decide
baseline = _task.baseline
write_submission = _task.write_submission
check_submission = _task.check_submission
check_cells = _task.check_cells
tune_threshold = _task.tune_threshold
parse_metric = _task.parse_metric
prob_column = _task.prob_column
read_header = _task.read_header
read_rows = _task.read_rows


def run_metric(metrics: dict, task) -> float | None:
    """A run's validation value of the task's metric, from its metrics.json (`val_metric` where the run scored the
    task's metric; `val_accuracy` for runs of the binary task from before; else the task's leaderboard column)."""
    if metrics.get("metric") == task.metric and isinstance(metrics.get("val_metric"), (int, float)):
        return float(metrics["val_metric"])
    value = metrics.get("val_accuracy") if task.metric == "accuracy" else metrics.get(task.metric_column())
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
