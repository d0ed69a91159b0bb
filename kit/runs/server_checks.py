"""Checks of a generated-answer or inference-server task before a kernel is built or pushed: each refusal is one line
naming the problem and the fix, and nothing is spent.

- server mode ([task.server]) on a competition whose files ship no kaggle_evaluation package, or not that module;
- a budget larger than what it must fit in: the rerun's limit larger than the competition's, a row's seconds
  larger than the gateway's deadline per call;
- generation_engine = vllm where the kernel runs here and vLLM is not installed.
(A generated-answer task without an extraction rule is refused when kit.toml loads: kernels/runtime/task.py.)
"""

from __future__ import annotations

import importlib.util

from kit.backends.base import Backend
from kit.errors import ConfigError
from kit.workspace.kernel_config import KernelConfig
from kit.workspace.layout import Workspace


def check_task_run(ws: Workspace, backend: Backend, config: KernelConfig) -> None:
    """Refuse a run of the workspace's task that could not work as configured (see the module's list)."""
    task = ws.task
    if task.served:
        modules = backend.gateway_modules()
        if modules is not None and not modules:
            raise ConfigError(f"[task.server] serves predict to a gateway, and {ws.competition}'s files ship no kaggle_evaluation package",
                              hint="remove [task.server] from kit.toml: the kernel then writes the task's file itself")
        if modules is not None and task.server_module not in modules:
            raise ConfigError(f"[task.server] module {task.server_module!r} is not in {ws.competition}'s kaggle_evaluation/ (it has {', '.join(modules)})",
                              hint=f'module = "{modules[0]}" under [task.server]')
        info = backend.competition_info()
        if info.code and task.run_seconds > info.rerun_seconds:
            raise ConfigError(f"[task.server] run_seconds = {task.run_seconds:g} is more than {ws.competition}'s rerun limit of {info.rerun_seconds:g} s",
                              hint=f"run_seconds = {info.rerun_seconds:g} at most (or rerun_hours under [competition], if the rules allow more)")
        row_seconds = getattr(config, "row_seconds", 0.0)
        if row_seconds and row_seconds > task.call_seconds:
            raise ConfigError(f"row_seconds = {row_seconds:g} is more than the gateway's deadline of {task.call_seconds:g} s a call ([task.server] call_seconds)",
                              hint=f"--set row_seconds={task.call_seconds:g} at most (0: the deadline less a margin)")
    if task.kind == "answer" and getattr(config, "generation_engine", "auto") == "vllm" and backend.runs_here \
            and importlib.util.find_spec("vllm") is None:
        raise ConfigError("generation_engine = vllm, and vLLM is not installed on this machine, where the local backend runs the kernel",
                          hint="--set generation_engine=auto (transformers' generate), or pip install vllm on a machine with a CUDA GPU")
