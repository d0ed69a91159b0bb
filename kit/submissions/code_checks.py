"""Code competitions: the checks a run must pass before its kernel is submitted, since Kaggle reruns the notebook on
the hidden test set with the internet off and within a time limit, and a rerun that fails still costs the day's
submission. What can be checked here is checked here; the run's own submission.csv (on the visible test rows) is
validated as for a file competition by kit.submissions.submit.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from kit.errors import KitError, SubmissionError
from kit.runs import store
from kit.runs.store import RunRecord
from kit.workspace.competition import CompetitionInfo
from kit.workspace.layout import Workspace
from kit.workspace.model_sources import HUB, parse_model

METADATA_FILE = "kernel-metadata.json"


def pushed_metadata(ws: Workspace, record: RunRecord) -> dict:
    """The kernel-metadata.json the run was pushed with ({} when it has none: a run made here)."""
    path = store.run_dir(ws, record.id) / "kernel" / METADATA_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def offline_settings(ws: Workspace, model: str) -> str:
    """The --set flags for a kernel Kaggle can rerun: the internet off and, on Kaggle, the model attached, since a
    hub id cannot be downloaded offline (kit build refuses it there; this says so before the user meets it)."""
    flags = "--set enable_internet=false"
    try:
        hub = parse_model(model).kind == HUB
    except KitError:  # a bad model is refused at build with its own message
        hub = False
    if ws.backend == "kaggle" and hub:
        flags += f" --set model=OWNER/MODEL/FRAMEWORK/VARIATION (a Kaggle Models handle: offline, {model} cannot be downloaded)"
    return flags


def check_kernel(ws: Workspace, record: RunRecord, info: CompetitionInfo) -> None:
    """Refuse, before anything is fetched or spent, a run whose kernel the competition could not rerun."""
    if not record.remote:
        raise SubmissionError(
            f"{record.id} was made on this machine ({record.kernel}), not by a kernel; {info.slug} is a code competition "
            "and scores only notebooks",
            hint=f"push a kernel that writes it: kit push-kernel infer --set adapter_run=RUN {offline_settings(ws, str(record.config.get('model', '')))}",
        )
    meta = pushed_metadata(ws, record)
    # The client's default is the internet on when the metadata does not say (kaggle-client-protocol.md section 6).
    internet = meta.get("enable_internet", record.config.get("enable_internet", True))
    if str(internet).lower() != "false":
        raise SubmissionError(
            f"{record.id}'s kernel ran with the internet on; {info.slug} is a code competition, whose reruns have the "
            "internet off, so Kaggle refuses it as a submission",
            hint=f"push it again with the internet off: kit push-kernel {record.kernel} "
            f"{offline_settings(ws, str(record.config.get('model', '')))} (with the run's other settings); nothing was submitted",
        )


def run_seconds(ws: Workspace, record: RunRecord) -> float | None:
    """How long the run's kernel took: metrics.json's wall_seconds, else its record's start and end."""
    try:
        metrics = json.loads((store.run_dir(ws, record.id) / "metrics.json").read_text(encoding="utf-8"))
        if isinstance(metrics.get("wall_seconds"), (int, float)):
            return float(metrics["wall_seconds"])
    except (OSError, ValueError, AttributeError):
        pass
    if record.started and record.finished:
        return (datetime.fromisoformat(record.finished) - datetime.fromisoformat(record.started)).total_seconds()
    return None


def check_time(ws: Workspace, record: RunRecord, info: CompetitionInfo) -> float | None:
    """Refuse a run that already took longer than a rerun may (its rerun would be stopped); return its seconds."""
    seconds = run_seconds(ws, record)
    if seconds is not None and seconds > info.rerun_seconds:
        raise SubmissionError(
            f"{record.id} took {duration(seconds)}; {info.slug} stops a rerun after {duration(info.rerun_seconds)}, so "
            "this submission would fail",
            hint="submit a faster kernel (an infer run on its adapter: kit push-kernel infer --set adapter_run="
            f"{record.id} {offline_settings(ws, str(record.config.get('model', '')))}), or set rerun_hours under [competition] if the rules allow more",
        )
    return seconds


def kernel_ref(record: RunRecord) -> str:
    """The submitted kernel as the submission record keeps it: owner/slug/N on Kaggle, the session locally."""
    return f"{record.remote}/{record.remote_version}" if record.remote_version else record.remote


def duration(seconds: float) -> str:
    """A duration as a person reads it: 45 s, 12 min, 2.5 h."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def describe(record: RunRecord, info: CompetitionInfo, seconds: float | None, file: Path) -> str:
    """One line for the user before the day's submission is spent."""
    took = f"it took {duration(seconds)} here, " if seconds is not None else ""
    return (f"{info.slug} is a code competition: {kernel_ref(record)} will be rerun on the hidden test set with the "
            f"internet off ({took}the limit is {duration(info.rerun_seconds)}) and the {file.name} it writes scored")


def push_warning(info: CompetitionInfo, record: RunRecord) -> str:
    """A warning for a push to a code competition whose kernel could not be submitted ("" when it could)."""
    if not info.code or str(record.config.get("enable_internet", True)).lower() == "false":
        return ""
    return (f"{info.slug} is a code competition and {record.id} has the internet on: it can train or score here, but "
            "Kaggle will not accept it as a submission (push with --set enable_internet=false for one it will)")


def check_served(ws: Workspace, record: RunRecord, info: CompetitionInfo) -> None:
    """An inference-server competition reruns a kernel that serves predict: an infer run's (a train run does not serve)."""
    if record.kernel != "infer":
        raise SubmissionError(
            f"{record.id} is a {record.kernel} run; {info.slug or ws.competition}'s gateway calls the predict an infer kernel serves",
            hint=f"kit push-kernel infer --set adapter_run={record.id} {offline_settings(ws, str(record.config.get('model', '')))} --wait, "
            "then kit submit that run",
        )


# What each of kaggle_evaluation's error classes means for the notebook, in one line (the gateway's
# GatewayRuntimeErrorType; Kaggle shows the class, not the details).
RERUN_ERRORS = {
    "SERVER_NEVER_STARTED": "the kernel was not serving predict within the gateway's startup limit (15 min on Kaggle): "
                            "reach serve() first and load the model in the first predict call",
    "SERVER_CONNECTION_FAILED": "the gateway lost the kernel, or a predict call passed its deadline: keep every call within "
                                "[task.server] call_seconds (kit's predict falls back when its budget runs out)",
    "SERVER_RAISED_EXCEPTION": "predict raised an exception: the rerun's log shows it",
    "SERVER_MISSING_ENDPOINT": "the gateway called an endpoint the kernel's server does not offer",
    "GATEWAY_RAISED_EXCEPTION": "the competition's gateway failed on its own, not the kernel: submit again, or tell the host",
    "INVALID_SUBMISSION": "an answer had the wrong shape or type (one row, the row's id first, then the answer as the task says)",
}


def explain_rerun_error(error: str) -> str:
    """What a failed rerun's error means and what to do, where it names one of kaggle_evaluation's classes ("" else)."""
    name = next((n for n in RERUN_ERRORS if n in error), "")
    return f"{name}: {RERUN_ERRORS[name]}" if name else ""
