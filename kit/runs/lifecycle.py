"""Push a kernel as a new run, follow it to a final state, and pull its outputs into submissions/run-N/."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from kit.backends.base import Backend
from kit.build.explain import settings_warnings
from kit.build.script import BuiltKernel, build_kernel
from kit.runs.server_checks import check_task_run
from kit.build.templates import check_prompt, kernels_dir
from kit.errors import BackendError, ConfigError, Interrupted, KitError
from kit.leaderboard import sheet
from kit.runs import intent, store
from kit.runs.store import Intent, KernelStatus, RunRecord
from kit.workspace.kernel_config import DEFAULT_MODELS, KernelConfig, config_dict, make_config, source_runs
from kit.workspace.layout import Workspace, ensure_workspace_id, set_value
from kit.workspace.model_sources import PATH, check_reachable, local_model_path, parse_model
from kit.workspace.task_config import check_task_data

KERNEL_DIR = "kernel"


def resolve_config(ws: Workspace, kernel: str, overrides: Mapping[str, Any], backend: str, command: str = "") -> KernelConfig:
    """The effective config: workspace defaults, then overrides; model 'auto' resolved for the backend. `command`
    (default `kit build KERNEL`) is the one a bad setting's fix names."""
    config = make_config(kernel, ws.run_defaults(kernel), overrides, command=command)
    check_prompt(config.prompt, kernels_dir(ws.kernels_dir))  # a closed set, known only from the kernels' prompts.py
    check_task_data(ws)  # the [task] against the competition's files where they are here, before anything is spent
    if config.model == "auto":
        config = dataclasses.replace(config, model=DEFAULT_MODELS[backend])
    source = parse_model(config.model)
    check_reachable(source, backend, config.enable_internet, root=ws.root, command=command or f"kit build {kernel}")
    if source.kind == PATH and backend == "local":  # the kernel runs in its own folder: it gets the path from here
        config = dataclasses.replace(config, model=str(local_model_path(source, ws.root)))
    return config


def build_for_workspace(ws: Workspace, kernel: str, config: KernelConfig, out_dir: Path, run_id: str = "run-0") -> BuiltKernel:
    """Build `kernel` from the workspace's templates (or kit's own) into `out_dir`, named with the workspace's id;
    source runs pushed to Kaggle are attached by the kernel they were pushed as; the workspace's [task], where it
    has one, is the kernel's `task` setting."""
    return build_kernel(
        kernel, config, out_dir, kernels_dir(ws.kernels_dir), run_id=run_id, owner=ws.kaggle_username or "USERNAME",
        workspace_id=ensure_workspace_id(ws, _say), kernel_sources=_pushed_kernels(ws, source_runs(config)),
        docker_image=ws.docker_image, task=None if ws.task_table is None else ws.task_table.to_dict(),
    )


def _pushed_kernels(ws: Workspace, run_ids: list[str]) -> dict[str, str]:
    """`owner/slug` of each run that was pushed to Kaggle; its name stays what it was when it was pushed."""
    pushed = {}
    for run_id in run_ids:
        try:
            record = store.load(ws, run_id)
        except KitError:
            continue  # not here: named as this workspace names its kernels
        if record.backend == "kaggle" and record.remote.count("/") == 1:
            pushed[run_id] = record.remote
    return pushed


def _check_sources(ws: Workspace, config: KernelConfig) -> None:
    for source in source_runs(config):
        record = store.load(ws, source)
        if record.status is not KernelStatus.COMPLETE:
            raise ConfigError(f"{source} is {record.status.value}, not complete: its outputs cannot be a source", hint=f"kit status {source}")
        if record.kernel != "train":
            raise ConfigError(f"{source} is a {record.kernel} run; resume_from/adapter_run need a train run", hint="kit status")


def create_run(ws: Workspace, backend: Backend, kernel: str, overrides: Mapping[str, Any], tags: dict[str, str] | None = None) -> RunRecord:
    """Create run-N and build its kernel into submissions/run-N/kernel/; nothing is started yet."""
    config = resolve_config(ws, kernel, overrides, backend.name, command=f"kit push-kernel {kernel}")
    _check_sources(ws, config)
    backend.warnings.extend(settings_warnings(ws, kernel, config))  # said, not refused: the run is the user's call
    check_task_run(ws, backend, config)
    sheet.check(ws)  # refused now, not in the write after a paid session started
    record = store.allocate(ws, kernel, backend.name, config_dict(config), tags=tags)
    try:
        with store.action(ws, record.id, "build"):  # a run being built is not one that never reached the backend
            build_for_workspace(ws, kernel, config, store.run_dir(ws, record.id) / KERNEL_DIR, run_id=record.id)
    except BaseException as exc:  # never a queued run that can never start
        why = "interrupted" if isinstance(exc, KeyboardInterrupt) else (exc.message if isinstance(exc, KitError) else type(exc).__name__)
        record = store.update(ws, record.id, lambda r: _failed(r, f"build failed, nothing was pushed: {why}"))
        sheet.sync(ws, [record])
        raise
    return record


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _script(kernel_dir: Path) -> Path:
    """The kernel's code file, as its metadata names it."""
    try:
        meta = json.loads((kernel_dir / "kernel-metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta = {}
    return kernel_dir / str(meta.get("code_file") or "kernel.py")


def start_run(ws: Workspace, backend: Backend, record: RunRecord, retry_later: tuple[type[KitError], ...] = (),
              say: Callable[[str], None] = _say) -> RunRecord:
    """Start a created run's kernel on the backend, exactly once. A refusal marks the run failed, except
    `retry_later` errors: those leave it queued and unstarted (no remote), so that the same run can be started
    again later.

    Under the run's action lock, an earlier push left unfinished is reconciled first; the intent (the kernel, its
    version before, the script's hash) is recorded before the push, and a lost answer is reconciled against the
    kernel's versions rather than pushed again (kit/runs/intent.py)."""
    run_id = record.id
    kernel_dir = store.run_dir(ws, run_id) / KERNEL_DIR
    with store.action(ws, run_id, "push"):
        record = intent.resolve(ws, backend, run_id, say)
        if record.remote or record.status.final:  # started by the interrupted push, or found never started
            sheet.sync(ws, [record])
            if record.status.final and not record.remote:
                raise BackendError(f"{run_id}: {record.message}", hint=f"kit push-kernel {record.kernel}")
            return record
        try:
            target = backend.push_target(record, kernel_dir)
            script = _script(kernel_dir)
            planned = Intent(action="push", at=store.now(), file=script.name, sha256=_sha256(script), size=script.stat().st_size,
                             target=target, version_before=backend.kernel_version(target) if target else None)
            remote, found = intent.spend(ws, backend, run_id, planned, lambda: backend.push(record, kernel_dir), say)
        except Interrupted:
            raise  # the push may be running: the intent stays, kit status resolves it
        except KeyboardInterrupt:  # before the intent: nothing was sent
            store.update(ws, run_id, lambda r: _failed(r, NOT_SENT))
            raise Interrupted(f"interrupted: {run_id} was not pushed; nothing runs", hint=f"kit push-kernel {record.kernel} starts a new run") from None
        except retry_later as exc:
            record = store.update(ws, run_id, lambda r: setattr(r, "message", f"not started yet: {exc.message}"))
            sheet.sync(ws, [record])
            raise
        except KitError as exc:
            if store.load(ws, run_id).pending is not None:  # unresolved: it may be running, so not failed
                raise
            record = store.update(ws, run_id, lambda r: _failed(r, f"push failed: {exc.message}"))
            sheet.sync(ws, [record])
            raise

        def started(r: RunRecord) -> None:
            r.remote, r.message, r.pending = remote or planned.target, "", None
            # The version the push created: Kaggle's answer (backend.push sets it on the record it was given), or
            # the version reconciliation found.
            r.remote_version = record.remote_version or (found if isinstance(found, int) else 0)

        record = store.update(ws, run_id, started)
    sheet.sync(ws, [record])
    return record


NOT_SENT = "push interrupted before it was sent; nothing runs (push a new run)"


def never_started(ws: Workspace, record: RunRecord) -> bool:
    """Whether `record` is a run that never reached its backend and never will by itself: queued, no remote, no
    push pending, nothing said, and no kit command working on it (a kit killed while it built or pushed it)."""
    from kit.fileio import LockBusy

    if record.status is not KernelStatus.QUEUED or record.remote or record.pending is not None or record.message:
        return False
    try:
        with store.action(ws, record.id, "status", wait=False):
            return True
    except LockBusy:
        return False


def clear_unstarted(ws: Workspace, record: RunRecord) -> RunRecord:
    """Mark a run that never reached the backend (`never_started`) cancelled, so it stops showing as queued."""
    def clear(r: RunRecord) -> None:
        r.status, r.finished, r.message = KernelStatus.CANCELLED, store.now(), "never reached the backend; cleared by kit cancel"

    record = store.update(ws, record.id, clear)
    sheet.sync(ws, [record])
    return record


def _failed(record: RunRecord, message: str) -> None:
    record.status, record.message, record.finished = KernelStatus.ERROR, message, store.now()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""


def push_kernel(ws: Workspace, backend: Backend, kernel: str, overrides: Mapping[str, Any], tags: dict[str, str] | None = None) -> RunRecord:
    """Create run-N, build its kernel into submissions/run-N/kernel/, and start it on the backend."""
    try:
        record = create_run(ws, backend, kernel, overrides, tags=tags)
    except KeyboardInterrupt:
        raise Interrupted("interrupted before anything was pushed", hint=f"kit push-kernel {kernel} starts a new run") from None
    return start_run(ws, backend, record)


def refresh(ws: Workspace, backend: Backend, record: RunRecord) -> RunRecord:
    """Ask the backend for the run's state and save what changed; final runs are not asked again. The change is
    applied to the record as it is on disk, under its lock, so a parallel command's change (a submission) stays."""
    if record.status.final or not record.remote:  # no remote: created but not started, nothing to ask
        return record
    state = backend.status(record)

    def apply(r: RunRecord) -> bool:
        changed = (state.status, state.message, state.gpu or r.gpu) != (r.status, r.message, r.gpu)
        if state.status is KernelStatus.RUNNING and not r.started:
            r.started, changed = store.now(), True
        if state.status.final and not r.finished:
            r.finished = store.now()
            r.started = r.started or r.finished
        r.status, r.message, r.gpu = state.status, state.message, state.gpu or r.gpu
        return changed

    if not apply(dataclasses.replace(record)):
        return record
    record = store.update(ws, record.id, apply)
    sheet.sync(ws, [record])
    if state.status is KernelStatus.COMPLETE:
        record_image(ws, backend, record)
    return record


def record_image(ws: Workspace, backend: Backend, record: RunRecord) -> None:
    """The first run that completes on Kaggle names the workspace's image in kit.toml ([kaggle] docker_image), so
    that later pushes run on it too; a run pushed with pin_image=false, or an image already recorded, changes nothing.
    Not knowing the image (a failed call) only warns: the next complete run tries again."""
    if ws.docker_image or not record.config.get("pin_image", True):
        return
    try:
        image = backend.kernel_image(record)
    except KitError as exc:
        backend.warnings.append(f"the image {record.id} ran on is unknown ({exc.message}); the next complete run records it")
        return
    if image:
        kept = set_value(ws.root, "kaggle", "docker_image", image, keep=True)
        backend.warnings.append(f"later runs are pinned to {kept} (docker_image under [kaggle] in kit.toml; pin_image=false opts out)")


def refresh_each(ws: Workspace, backend: Backend, records: list[RunRecord]) -> list[tuple[RunRecord, KitError | None]]:
    """Refresh each run on its own: one the backend cannot answer for (a kernel it does not know, a refused call)
    keeps its last known state and carries the error, and the other runs go on."""
    out: list[tuple[RunRecord, KitError | None]] = []
    for record in records:
        try:
            out.append((refresh(ws, backend, record), None))
        except KitError as exc:
            out.append((record, exc))
    return out


def wait(
    ws: Workspace,
    backend: Backend,
    record: RunRecord,
    on_progress: Callable[[RunRecord, float], None] = lambda r, e: None,
    poll_seconds: float = 1.0,
    max_poll_seconds: float = 30.0,
    timeout: float | None = None,
) -> RunRecord:
    """Poll until the run reaches a final state, backing off up to `max_poll_seconds`; report progress."""
    start = time.monotonic()
    delay = poll_seconds
    while True:
        record = refresh(ws, backend, record)
        elapsed = time.monotonic() - start
        on_progress(record, elapsed)
        if record.status.final:
            return record
        if timeout is not None and elapsed > timeout:
            raise BackendError(f"{record.id} still {record.status.value} after {timeout:.0f}s", hint=f"kit status {record.id}, or kit logs {record.id} -f")
        time.sleep(delay)
        delay = min(delay * 1.5, max_poll_seconds)


def pull(ws: Workspace, backend: Backend, record: RunRecord, all_files: bool = False, on_bytes: Callable[[int], None] | None = None) -> list[str]:
    """Download the run's outputs into submissions/run-N/ and record them; `on_bytes` hears of each chunk."""
    record = refresh(ws, backend, record)
    if record.status in (KernelStatus.QUEUED, KernelStatus.RUNNING):
        raise BackendError(f"{record.id} is still {record.status.value}", hint=f"kit wait {record.id} follows it and pulls its outputs when it ends")
    if not record.remote:  # made here (an ensemble): its files are already in submissions/run-N/
        return list(record.outputs)
    files = backend.download(record, store.run_dir(ws, record.id), all_files=all_files, on_bytes=on_bytes)
    record = store.update(ws, record.id, lambda r: setattr(r, "outputs", sorted(set(r.outputs) | set(files))))
    sheet.sync(ws, [record])
    return files


def log_tail(text: str, lines: int = 15) -> str:
    """The last `lines` non-empty lines of a log."""
    return "\n".join([line for line in text.splitlines() if line.strip()][-lines:])
