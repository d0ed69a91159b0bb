"""Push a kernel as a new run, follow it to a final state, and pull its outputs into submissions/run-N/."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from kit import leaderboard, runs
from kit.backends import Backend
from kit.build import BuiltKernel, build_kernel
from kit.config import DEFAULT_MODELS, KernelConfig, config_dict, make_config, source_runs
from kit.errors import BackendError, ConfigError, KitError
from kit.kernels import check_prompt, kernels_dir
from kit.models import check_reachable, parse_model
from kit.runs import KernelStatus, RunRecord
from kit.workspace import Workspace, ensure_workspace_id, set_value

KERNEL_DIR = "kernel"


def resolve_config(ws: Workspace, kernel: str, overrides: Mapping[str, Any], backend: str) -> KernelConfig:
    """The effective config: workspace defaults, then overrides; model 'auto' resolved for the backend."""
    config = make_config(kernel, ws.run_defaults(kernel), overrides)
    check_prompt(config.prompt, kernels_dir(ws.kernels_dir))  # a closed set, known only from the kernels' prompts.py
    if config.model == "auto":
        config = dataclasses.replace(config, model=DEFAULT_MODELS[backend])
    check_reachable(parse_model(config.model), backend, config.enable_internet)
    return config


def build_for_workspace(ws: Workspace, kernel: str, config: KernelConfig, out_dir: Path, run_id: str = "run-0") -> BuiltKernel:
    """Build `kernel` from the workspace's templates (or kit's own) into `out_dir`, named with the workspace's id;
    source runs pushed to Kaggle are attached by the kernel they were pushed as."""
    return build_kernel(
        kernel, config, out_dir, kernels_dir(ws.kernels_dir), run_id=run_id, owner=ws.kaggle_username or "USERNAME",
        workspace_id=ensure_workspace_id(ws), kernel_sources=_pushed_kernels(ws, source_runs(config)),
        docker_image=ws.docker_image,
    )


def _pushed_kernels(ws: Workspace, run_ids: list[str]) -> dict[str, str]:
    """`owner/slug` of each run that was pushed to Kaggle; its name stays what it was when it was pushed."""
    pushed = {}
    for run_id in run_ids:
        try:
            record = runs.load(ws, run_id)
        except KitError:
            continue  # not here: named as this workspace names its kernels
        if record.backend == "kaggle" and record.remote.count("/") == 1:
            pushed[run_id] = record.remote
    return pushed


def _check_sources(ws: Workspace, config: KernelConfig) -> None:
    for source in source_runs(config):
        record = runs.load(ws, source)
        if record.status is not KernelStatus.COMPLETE:
            raise ConfigError(f"{source} is {record.status.value}, not complete: its outputs cannot be a source", hint=f"kit status {source}")
        if record.kernel != "train":
            raise ConfigError(f"{source} is a {record.kernel} run; resume_from/adapter_run need a train run", hint="kit status")


def create_run(ws: Workspace, backend: Backend, kernel: str, overrides: Mapping[str, Any], tags: dict[str, str] | None = None) -> RunRecord:
    """Create run-N and build its kernel into submissions/run-N/kernel/; nothing is started yet."""
    config = resolve_config(ws, kernel, overrides, backend.name)
    _check_sources(ws, config)
    leaderboard.check(ws)  # refused now, not in the write after a paid session started
    record = runs.allocate(ws, kernel, backend.name, config_dict(config), tags=tags)
    build_for_workspace(ws, kernel, config, runs.run_dir(ws, record.id) / KERNEL_DIR, run_id=record.id)
    return record


def start_run(ws: Workspace, backend: Backend, record: RunRecord, retry_later: tuple[type[KitError], ...] = ()) -> RunRecord:
    """Start a created run's kernel on the backend. A refusal marks the run failed, except `retry_later` errors:
    those leave it queued and unstarted (no remote), so that the same run can be started again later."""
    try:
        record.remote = backend.push(record, runs.run_dir(ws, record.id) / KERNEL_DIR)
    except retry_later as exc:
        record.message = f"not started yet: {exc.message}"
        runs.save(ws, record)
        leaderboard.sync(ws, [record])
        raise
    except KitError as exc:
        record.status, record.message, record.finished = KernelStatus.ERROR, f"push failed: {exc.message}", runs.now()
        runs.save(ws, record)
        leaderboard.sync(ws, [record])
        raise
    record.message = ""
    runs.save(ws, record)
    leaderboard.sync(ws, [record])
    return record


def push_kernel(ws: Workspace, backend: Backend, kernel: str, overrides: Mapping[str, Any], tags: dict[str, str] | None = None) -> RunRecord:
    """Create run-N, build its kernel into submissions/run-N/kernel/, and start it on the backend."""
    return start_run(ws, backend, create_run(ws, backend, kernel, overrides, tags=tags))


def refresh(ws: Workspace, backend: Backend, record: RunRecord) -> RunRecord:
    """Ask the backend for the run's state and save what changed; final runs are not asked again."""
    if record.status.final or not record.remote:  # no remote: created but not started, nothing to ask
        return record
    state = backend.status(record)
    changed = (state.status, state.message, state.gpu or record.gpu) != (record.status, record.message, record.gpu)
    if state.status is KernelStatus.RUNNING and not record.started:
        record.started, changed = runs.now(), True
    if state.status.final:
        record.finished = runs.now()
        record.started = record.started or record.finished
    record.status, record.message, record.gpu = state.status, state.message, state.gpu or record.gpu
    if changed:
        runs.save(ws, record)
        leaderboard.sync(ws, [record])
    if changed and state.status is KernelStatus.COMPLETE:
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
        raise BackendError(f"{record.id} is still {record.status.value}", hint=f"kit push-kernel --wait, or kit status {record.id}")
    if not record.remote:  # made here (an ensemble): its files are already in submissions/run-N/
        return list(record.outputs)
    files = backend.download(record, runs.run_dir(ws, record.id), all_files=all_files, on_bytes=on_bytes)
    record.outputs = sorted(set(record.outputs) | set(files))
    runs.save(ws, record)
    leaderboard.sync(ws, [record])
    return files


def log_tail(text: str, lines: int = 15) -> str:
    """The last `lines` non-empty lines of a log."""
    return "\n".join([line for line in text.splitlines() if line.strip()][-lines:])
