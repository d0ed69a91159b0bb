"""`kit build --explain`: the plan a run's config would get on a named GPU profile, made by the workspace's own
kernels/runtime/plan.py (the code the kernel runs), without running anything and without importing torch."""

from __future__ import annotations

import ast
import sys
import types
from pathlib import Path
from typing import Any, Mapping

from kit.build.script import RUNTIME_PACKAGE, _runtime_closure, _strip_module
from kit.build.templates import kernels_dir
from kit.errors import ConfigError
from kit.workspace.kernel_config import script_settings
from kit.workspace.layout import Workspace


def load_runtime(kernels: Path, module: str) -> types.ModuleType:
    """`module` of kernels/runtime/ with the runtime modules it imports, in one namespace, as the built kernel holds
    them (the builder's own closure and stripping); none of them imports torch at its top."""
    path = kernels / "runtime" / f"{module}.py"
    tree = ast.Module(body=[ast.ImportFrom(module=f"{RUNTIME_PACKAGE}.{module}", names=[ast.alias(name="*")], level=0)], type_ignores=[])
    namespace = types.ModuleType(f"_kit_explain_{module}")
    sys.modules[namespace.__name__] = namespace  # dataclasses look their module up while the classes are made
    try:
        for _, source in _runtime_closure(path, tree, kernels / "runtime"):
            exec(compile(_strip_module(source), str(source), "exec"), namespace.__dict__)
    finally:
        del sys.modules[namespace.__name__]
    return namespace


def default_profile(ws: Workspace, machine_shape: str, profiles: Mapping[str, str]) -> str:
    """The profile of the machine a run goes to: its Kaggle accelerator on the Kaggle backend. The local backend's
    machine is known only to torch, so there --gpu is required."""
    if ws.backend == "kaggle" and machine_shape in profiles:
        return profiles[machine_shape]
    raise ConfigError(f"--explain needs --gpu on the {ws.backend} backend (the machine is known only to torch)",
                      hint="kit build train --explain --gpu cpu  (or t4x2, l4, a100, h100...)")


def explain(ws: Workspace, kernel: str, config, gpu: str | None) -> Any:
    """The Plan `config` (a resolved KernelConfig) would get on the GPU profile `gpu` (None: the run's machine)."""
    kernels = kernels_dir(ws.kernels_dir)
    plan = load_runtime(kernels, "plan")
    name = gpu or default_profile(ws, config.machine_shape, plan.MACHINE_SHAPE_PROFILES)
    if name not in plan.PROFILES:
        raise ConfigError(f"unknown GPU profile {name!r}; profiles: {', '.join(plan.PROFILES)}", hint="kit build train --explain --gpu t4x2")
    machine = plan.PROFILES[name]
    settings = script_settings(config)  # the CONFIG the built kernel gets
    # As the kernel's session stage does: config.json is read only where a GPU's memory figures need it.
    model_config = load_runtime(kernels, "modeling").read_model_config(settings["model"]) if machine.gpus else None
    try:
        return plan.make_plan(settings, machine, kernel, model_config)
    except plan.PlanError as exc:
        raise ConfigError(str(exc), hint="change the setting, or pick another --gpu") from None


def settings_warnings(ws: Workspace, kernel: str, config) -> list[str]:
    """What the plan warns about the run's settings alone, on any machine (a warm-up longer than the run), for kit
    build and kit push-kernel to say before any GPU time is spent; from the workspace's own plan.py (one from before
    such checks warns of nothing)."""
    if kernel != "train":
        return []
    choose_warmup = getattr(load_runtime(kernels_dir(ws.kernels_dir), "plan"), "choose_warmup", None)
    warning = choose_warmup(script_settings(config)).warning if choose_warmup else ""
    return [warning] if warning else []
