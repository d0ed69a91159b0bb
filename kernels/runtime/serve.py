"""Server mode: a competition whose gateway (its `kaggle_evaluation` package) calls the notebook's `predict` one row
at a time and writes the submission file itself (AIMO, Konwinski, drawings).

    answerer = RowAnswerer(spec, load=lambda: ..., answer=lambda model, row, seconds: ...)
    serve_or_run_local_gateway(spec, answerer, competition_folder)   # the last thing the kernel does

The rules the gateway enforces (competition-formats.md, section 3): the server must listen within its startup limit
(15 min on Kaggle), so the model loads on the first call, which has no deadline; every later call has the gateway's
deadline; an answer of the wrong shape fails the whole rerun. So the kernel keeps its own time: a budget for each
call and one for the whole run (from the task), and a row that runs out of either gets a fallback answer (the most
common answer so far, else the task's valid default) instead of a missed deadline. One log line per call.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from runtime.environment import competition_rerun, log, warn

GATEWAY_PACKAGE = "kaggle_evaluation"
# Seconds kept back from every budget: the answer travels back and the gateway checks it before its deadline.
MARGIN_SECONDS = 2.0


@dataclass(frozen=True)
class ServerSpec:
    """The task's server section: the gateway's module in kaggle_evaluation/, the deadline of a call and the limit of
    the whole rerun in seconds, the file the gateway writes, and the columns of an answer frame (id, answer)."""

    module: str
    call_seconds: float
    run_seconds: float
    file: str = "submission.parquet"
    id_column: str = "id"
    answer_column: str = "answer"
    rows: int = 0  # rows the rerun is expected to send (0 = unknown): the run's budget is shared between them
    local_data: tuple[str, ...] = ("test.csv",)  # the local gateway's data paths, in the competition's folder


@dataclass
class Clock:
    """The kernel's own time: what a call may spend, from the call's deadline and what is left of the run's."""

    call_seconds: float
    run_seconds: float
    rows: int = 0
    started: float = field(default_factory=time.time)
    calls: int = 0

    def budget(self) -> float:
        """Seconds the next row may spend: its deadline less the margin, and no more than its share of the run left."""
        left = self.run_seconds - (time.time() - self.started) - MARGIN_SECONDS
        if self.rows:
            left = left / max(1, self.rows - self.calls)
        return max(0.0, min(self.call_seconds - MARGIN_SECONDS, left))


class RowAnswerer:
    """The `predict` the gateway calls: one row's columns in, a frame (id, answer) out.

    `load()` gives the model on the first call (no deadline then); `answer(model, row, seconds)` gives the row's
    answer or None within `seconds`; `fallback(given)` the answer of a row that has none (the most common so far)."""

    def __init__(self, spec: ServerSpec, load: Callable[[], object], answer: Callable[[object, dict, float], object],
                 fallback: Callable[[list], object], check: Callable[[object], bool] = lambda a: a is not None,
                 started: float | None = None):
        self.spec, self._load, self._answer, self._fallback, self._check = spec, load, answer, fallback, check
        # the run's clock starts with the kernel (`started`: run.started), as the rerun's limit does, not with serving
        self.clock = Clock(spec.call_seconds, spec.run_seconds, spec.rows, started=started or time.time())
        self.model = None
        self.given: list = []
        self.fallbacks = 0
        self.seconds: list[float] = []

    def __call__(self, *args, **kwargs):
        started = time.time()
        row, kind = row_of(args, kwargs)
        row_id = row.get(self.spec.id_column, next(iter(row.values()), ""))
        note = ""
        if self.model is None:
            self.model = self._load()
            note = f" (model loaded in {time.time() - started:.1f} s, on the first call: it has no deadline)"
        budget = self.clock.budget()
        answer = None
        if budget > 0:
            try:
                answer = self._answer(self.model, row, budget)
            except Exception as error:  # noqa: BLE001 (one row's failure must not fail the rerun: it gets the fallback)
                warn(f"row {row_id}: {type(error).__name__}: {error}")
        if not self._check(answer):
            answer = self._fallback(self.given)
            self.fallbacks += 1
            note += " fallback" + ("" if budget > 0 else " (no time left in the run)")
        else:
            self.given.append(answer)
        self.clock.calls += 1
        seconds = time.time() - started
        self.seconds.append(seconds)
        log(f"predict {row_id}: {answer!r} in {seconds:.2f} s (budget {budget:.1f} s){note}")
        return answer_frame(kind, self.spec.id_column, row_id, self.spec.answer_column, answer)

    def summary(self) -> dict:
        """What metrics.json records of the calls."""
        n = len(self.seconds)
        return {"server_calls": n, "server_fallbacks": self.fallbacks,
                "seconds_per_row": round(sum(self.seconds) / n, 3) if n else None}


def row_of(args: tuple, kwargs: dict) -> tuple[dict, str]:
    """The gateway's arguments as one row {column: value} and the library they came in (polars, pandas or plain):
    a frame of one row, one Series per column (AIMO: id, problem), or plain values by name."""
    values: dict = {}
    kind = "plain"
    for i, item in enumerate([*args, *kwargs.values()]):
        module = type(item).__module__.split(".")[0]
        if module in ("polars", "pandas"):
            kind = module
        if hasattr(item, "columns") and hasattr(item, "to_dict"):  # a frame: its first row
            for column in item.columns:
                values[str(column)] = _scalar(item[column])
        elif hasattr(item, "name") and hasattr(item, "to_list"):  # a Series
            values[str(item.name)] = _scalar(item)
        else:
            values[list(kwargs)[i - len(args)] if i >= len(args) else f"arg{i}"] = item
    return values, kind


def _scalar(series):
    items = series.to_list()
    return items[0] if items else None


def answer_frame(kind: str, id_column: str, row_id, answer_column: str, answer):
    """The answer as the gateway expects it: a frame of one row (id, answer) in the library the row came in; an answer
    that is a dict gives one column each (a classification task's per-class probabilities)."""
    columns = {id_column: [row_id], **({k: [v] for k, v in answer.items()} if isinstance(answer, dict) else {answer_column: [answer]})}
    if kind == "pandas":
        import pandas as pd

        return pd.DataFrame(columns)
    import polars as pl

    return pl.DataFrame(columns)


def gateway_server_class(folder: Path, module: str):
    """The `<Comp>InferenceServer` class of the competition's kaggle_evaluation package in `folder`."""
    if not (folder / GATEWAY_PACKAGE).is_dir():
        raise FileNotFoundError(f"no {GATEWAY_PACKAGE}/ in the competition's files ({folder}): this competition has no "
                                "inference server; remove [task.server] in kit.toml")
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    loaded = importlib.import_module(f"{GATEWAY_PACKAGE}.{module}")
    found = [c for name, c in inspect.getmembers(loaded, inspect.isclass)
             if name.endswith("InferenceServer") and c.__module__ == loaded.__name__]
    if len(found) != 1:
        raise ImportError(f"{GATEWAY_PACKAGE}/{module}.py defines {len(found)} *InferenceServer classes; expected one")
    return found[0]


def serve_or_run_local_gateway(spec: ServerSpec, answerer: RowAnswerer, folder: Path, working: Path) -> str:
    """The notebook's last step: on the competition's rerun, serve `predict` to the gateway (blocks until it is done);
    otherwise run the competition's local gateway on the visible test file, which writes spec.file here. Returns
    which it did."""
    server_class = gateway_server_class(folder, spec.module)

    def predict(*args, **kwargs):  # the gateway routes calls by the function's name
        return answerer(*args, **kwargs)

    server = server_class(predict)
    os.chdir(working)  # the gateway writes its submission file into the current folder
    if competition_rerun():
        log(f"serving predict ({server_class.__name__}) for the rerun")
        server.serve()
        return "served"
    paths = tuple(str(folder / name) for name in spec.local_data)
    log(f"running the local gateway ({server_class.__name__}) on {', '.join(spec.local_data)}")
    server.run_local_gateway(paths)
    if not (working / spec.file).is_file():
        raise FileNotFoundError(f"the local gateway wrote no {spec.file} in {working}")
    return "local gateway"
