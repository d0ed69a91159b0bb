"""The local backend: kernels run as processes on this machine in an emulated Kaggle tree; submissions go to
the practice competition.

Each run gets a session folder .kit/local/run-N/ with kaggle/input (competition data and earlier runs' outputs,
linked), kaggle/working (the outputs), kernel/ (the built script), log.txt and state.json. A detached runner
process (kit.backends.local_runner) starts the kernel, records its state and survives `kit` exiting.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from kit.backends.base import DEFAULT_OUTPUTS, Backend, BoardEntry, Check, DataFile, KernelState, SubmissionResult
from kit.workspace.competition import CompetitionInfo
from kit.errors import BackendError
from kit.fileio import atomic_write_json, within
from kit.workspace.model_sources import KAGGLE_MODEL, cache_folder, local_copy, parse_model
from kit.runs.store import KernelStatus, RunRecord
from kit.workspace.layout import Workspace

LOG_NAME = "log.txt"
STATE_NAME = "state.json"


def read_state(session: Path) -> dict:
    """The runner's state file, or {} before the runner has written it."""
    try:
        return json.loads((session / STATE_NAME).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) counts as dead.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


class LocalBackend(Backend):
    """Runs kernels as local processes (GPU if present, else CPU) against the practice competition."""

    name = "local"
    max_poll_seconds = 2.0
    live_logs = True
    max_concurrent_kernels = 1  # kernels share this machine's GPU (or CPU)
    sweep_poll_seconds = 1.0  # a poll reads a state file
    runs_here = True
    # has_quota stays False: kernels run on this machine; and pushed_remote is the default (the session's state
    # file, written before the runner starts, says whether a push laid it out).

    def __init__(self, ws: Workspace):
        self.ws = ws
        self.warnings: list[str] = []

    def session_dir(self, run_id: str) -> Path:
        return self.ws.state_dir / "local" / run_id

    def working_dir(self, run_id: str) -> Path:
        return self.session_dir(run_id) / "kaggle" / "working"

    # -- kernels -------------------------------------------------------------------------------------------

    def push(self, run: RunRecord, kernel_dir: Path) -> str:
        """Lay out the Kaggle tree for the run, then start the detached runner; returns the session path."""
        session = self.session_dir(run.id)
        if session.exists():
            shutil.rmtree(session)
        inputs = session / "kaggle" / "input"
        (inputs / "competitions").mkdir(parents=True)
        (session / "kaggle" / "working").mkdir(parents=True)
        shutil.copytree(kernel_dir, session / "kernel")
        data = self._competition_data()
        os.symlink(data.resolve(), inputs / "competitions" / self.ws.competition)
        meta = json.loads((kernel_dir / "kernel-metadata.json").read_text())
        for name, path in self._sources(meta).items():
            os.symlink(path.resolve(), inputs / name)
        self._attach_model(run, inputs)
        atomic_write_json(session / STATE_NAME, {"status": KernelStatus.QUEUED.value})
        subprocess.Popen(
            [sys.executable, "-m", "kit.backends.local_runner", str(session), meta.get("code_file", "kernel.py")],
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(session / "runner.err", "wb"),
            cwd=session,
        )
        return str(session.relative_to(self.ws.root))

    def _attach_model(self, run: RunRecord, inputs: Path) -> None:
        """A model attached from Kaggle appears where Kaggle mounts it, linked to its local copy (kagglehub's cache)."""
        model = str(run.config.get("model", ""))
        source = parse_model(model) if model and model != "auto" else None
        if source is None or not source.on_kaggle:
            return
        found = local_copy(source)
        if found is None:
            raise BackendError(f"model {model!r} has no local copy in {cache_folder(source)}", hint="kagglehub.model_download or dataset_download it once, or copy its files there")
        folder, version = found
        if source.kind == KAGGLE_MODEL:
            owner, name, framework, variation = source.parts[:4]
            target = inputs / "models" / owner / name / framework.lower() / variation / str(version)
        else:
            target = inputs.joinpath("datasets", *source.parts[:2])
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(folder.resolve(), target)

    def _competition_data(self) -> Path:
        data = self.ws.practice_dir / "data"
        if not (data / "train.csv").is_file():
            raise BackendError(
                f"the practice competition {self.ws.competition!r} has no data at {data}",
                hint="kit practice init",
            )
        return data

    def _sources(self, meta: dict) -> dict[str, Path]:
        """The kernel's attached runs, as Kaggle mounts them: folder name (the kernel slug) -> the run's outputs."""
        sources = {}
        for source in meta.get("kernel_sources", []):
            source_id = "run-" + source.rsplit("-run-", 1)[-1]
            sources[source.split("/")[-1]] = self._source_outputs(source_id)
        return sources

    def _source_outputs(self, run_id: str) -> Path:
        """An earlier run's full outputs: its local session if it is still here, else what was pulled."""
        for candidate in (self.working_dir(run_id), self.ws.submissions_dir / run_id):
            if candidate.is_dir():
                return candidate
        raise BackendError(f"no outputs of {run_id} on this machine to attach as a source", hint=f"kit pull {run_id} --all")

    def status(self, run: RunRecord) -> KernelState:
        """Read the runner's state; a runner that died without a final state is reported as an error."""
        session = self.session_dir(run.id)
        state = read_state(session)
        if not state:
            if run.status.final:
                return KernelState(run.status, run.message, run.gpu)
            raise BackendError(f"no local session for {run.id} at {session}", hint=f"push it again: kit push-kernel {run.kernel}")
        status = KernelStatus(state["status"])
        if not status.final and state.get("runner_pid") and not _alive(state["runner_pid"]):
            return KernelState(KernelStatus.ERROR, "the local runner process died before the kernel finished", state.get("gpu", ""))
        return KernelState(status, state.get("message", ""), state.get("gpu", ""))

    def push_target(self, run: RunRecord, kernel_dir: Path) -> str:
        return str(self.session_dir(run.id).relative_to(self.ws.root))

    def kernel_version(self, remote: str, seen: bool = False) -> int | None:
        """1 once a push has laid out the session and its state (a push interrupted before that left nothing)."""
        return 1 if (self.ws.root / remote / STATE_NAME).is_file() else None

    def logs(self, run: RunRecord) -> str:
        path = self.session_dir(run.id) / LOG_NAME
        return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""

    def download(self, run: RunRecord, dest: Path, all_files: bool = False, on_bytes=None) -> list[str]:
        """Copy outputs (and the log) from the session into `dest`."""
        working = self.working_dir(run.id)
        if not working.is_dir():
            raise BackendError(f"no local outputs for {run.id}", hint=f"kit status {run.id}")
        dest.mkdir(parents=True, exist_ok=True)
        copied: list[str] = []
        for path in sorted(working.rglob("*")):
            rel = path.relative_to(working)
            if path.is_file() and (all_files or str(rel) in DEFAULT_OUTPUTS):
                if not within(path, self.ws.root):  # a kernel's link to a file elsewhere is never copied (nor shown)
                    raise BackendError(f"{run.id}'s output {rel} is a link to a file outside the workspace; not copied",
                                       hint="write the file itself in the kernel, not a link")
                target = dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
                copied.append(str(rel))
                if on_bytes is not None:
                    on_bytes(path.stat().st_size)
        log = self.session_dir(run.id) / LOG_NAME
        if log.is_file():
            shutil.copy2(log, dest / LOG_NAME)
            copied.append(LOG_NAME)
        return copied

    def cancel(self, run: RunRecord) -> None:
        """Ask the runner to stop the kernel: it kills the kernel's process group and records `cancelled`."""
        session = self.session_dir(run.id)
        state = read_state(session)
        if not state or KernelStatus(state["status"]).final:
            return
        (session / "cancel").touch()
        pid = state.get("kernel_pid")
        if pid and _alive(pid):
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    # -- competition ---------------------------------------------------------------------------------------

    def _competition(self):
        from kit.practice.competition import PracticeCompetition

        return PracticeCompetition(self.ws.practice_dir)

    def sample_submission(self) -> Path:
        return self._competition_data() / "sample_submission.csv"

    def doctor(self) -> list[Check]:
        """The practice competition is there (kernels run here; no Kaggle credentials are needed)."""
        ready = (self.ws.practice_dir / "competition.json").is_file()
        detail = f"{self.ws.competition} in {self.ws.practice_dir}" if ready else f"no practice competition {self.ws.competition} yet"
        return [Check("practice competition", ready, detail, "" if ready else "kit practice init")]

    def competition_info(self) -> CompetitionInfo:
        """The practice competition's kind and rerun limit, from its competition.json."""
        from kit.practice.competition import PracticeCompetition

        if not (self.ws.practice_dir / "competition.json").is_file():
            return CompetitionInfo(self.ws.competition, source="no practice competition yet")
        comp = PracticeCompetition(self.ws.practice_dir)
        return CompetitionInfo(self.ws.competition, code=comp.code, rerun_hours=comp.rerun_seconds / 3600, source="practice competition")

    def gateway_modules(self) -> list[str] | None:
        """The practice competition's inference-server modules (kit's stand-in kaggle_evaluation, --server)."""
        package = self.ws.practice_dir / "data" / "kaggle_evaluation"
        return sorted(p.stem for p in package.glob("*_inference_server.py")) if (self.ws.practice_dir / "data").is_dir() else None

    def submit(self, file: Path, message: str) -> SubmissionResult:
        return _result(self._competition().submit(file, message))

    def submit_code(self, run: RunRecord, file_name: str, message: str) -> SubmissionResult:
        """Submit the run's kernel, exactly as it ran (submissions/run-N/kernel/), to the practice code competition,
        which reruns it on the hidden test rows with the run's sources attached."""
        kernel_dir = self.ws.submissions_dir / run.id / "kernel"
        meta = json.loads((kernel_dir / "kernel-metadata.json").read_text(encoding="utf-8"))
        return _result(self._competition().submit_code(kernel_dir, self._sources(meta), file_name, message))

    def submissions(self) -> list[SubmissionResult]:
        return [_result(s) for s in self._competition().submissions()]

    def competition_instance(self) -> str:
        """The practice competition made by the last `kit practice init` (its refs restart at 1 after --force)."""
        return self._competition().instance

    def submissions_left_today(self) -> int | None:
        return self._competition().remaining_today()

    def board(self, team: str = "") -> list[BoardEntry]:
        return [BoardEntry(rank=i, team=team, score=score, date=date, you=you)
                for i, (team, score, date, you) in enumerate(self._competition().board(), start=1)]

    def data_files(self) -> list[DataFile]:
        data = self._competition_data()
        return [DataFile(p.name, p.stat().st_size) for p in sorted(data.iterdir()) if p.is_file()]

    def download_data(self, name: str, dest: Path, on_bytes=lambda n: None) -> Path:
        """Copy one file of the practice data into `dest`, through a .part file, telling `on_bytes` as it goes."""
        source = self._competition_data() / name
        if not source.is_file() or "/" in name:
            raise BackendError(f"the practice competition has no data file {name!r}", hint="kit data --list")
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / name
        part = target.with_name(target.name + ".part")
        with open(source, "rb") as src, open(part, "wb") as out:
            while chunk := src.read(1 << 20):
                out.write(chunk)
                on_bytes(len(chunk))
        os.replace(part, target)
        return target


def _result(sub) -> SubmissionResult:
    return SubmissionResult(
        ref=str(sub.ref),
        status=sub.status,
        public_score=sub.public_score,
        private_score=sub.private_score,
        date=str(sub.date),
        description=sub.description,
        error=sub.error,
        file_name=sub.file_name,
        size=sub.size,
    )
