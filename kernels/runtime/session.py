"""The first stage of every kernel: install what it needs, make the plan, print it, join the other training processes.

    run = start_run(config, "train")   # -> Run: the plan, the output folder, the process group, the clock

Nothing after this stage asks the machine what it can do: the stages read `run.plan`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from runtime.environment import log, quiet_progress_bars, torch_dtype, warn
from runtime.install import install_pinned
from runtime.modeling import read_model_config, resolve_model, use_model_source
from runtime.parallel import ProcessGroup, join_group
from runtime.paths import working_dir
from runtime.plan import RANK_ENV, Plan, detect_machine, make_plan, unsloth_imports


@dataclass
class Run:
    """What every stage of one kernel run shares."""

    kernel: str  # train | infer
    plan: Plan
    out: Path  # the working folder, where the outputs go
    group: ProcessGroup = field(default_factory=ProcessGroup)
    started: float = field(default_factory=time.time)

    @property
    def leader(self) -> bool:
        """This process writes the outputs (the only one, unless several train together)."""
        return self.group.leader

    @property
    def gpu(self) -> bool:
        """Whether the run has a CUDA GPU."""
        return self.plan.score_tokens.value > 0

    @property
    def device(self) -> str:
        """Where the model trains (and the first scoring model runs)."""
        return "cuda:0" if self.gpu else "cpu"

    @property
    def dtype(self):
        """The planned compute dtype, as torch names it."""
        return torch_dtype(self.plan.dtype.value)


def plan_this_machine(config: dict, kernel: str) -> Plan:
    """make_plan on this machine; where unsloth is chosen it is imported now (before transformers, so that its patches
    apply), and a broken install gives the plan made without it."""
    machine = detect_machine()
    model_config = read_model_config(config["model"]) if machine.gpus else None  # a GPU's memory figures need it
    plan = make_plan(config, machine, kernel, model_config)
    if plan.engine.value == "unsloth" and not unsloth_imports(required=config["engine"] == "unsloth"):
        plan = make_plan(config, machine.without("unsloth"), kernel, model_config)
    return plan


def start_run(config: dict, kernel: str, worker_command: list[str] | None = None) -> Run:
    """Install the pinned packages (Kaggle), make and print the plan, and for a train run with several training
    processes start and join them (`worker_command`, default: this script again)."""
    started = time.time()
    quiet_progress_bars()
    worker = RANK_ENV in os.environ
    if not worker:  # workers start after the first process installed everything
        install_pinned(config["engine"])  # before anything imports torch or transformers
    use_model_source(config["model"])  # before unsloth or transformers is imported
    plan = plan_this_machine(config, kernel)
    if not worker:
        log(plan.table())
        for message in plan.warnings():
            warn(message)
    group = ProcessGroup()
    if kernel == "train":
        import torch

        torch.manual_seed(config["seed"])
        processes = plan.train_processes.value
        if processes > 1 and not worker:
            resolve_model(config["model"])  # converted once, by this process, before the workers read it
        group = join_group(processes, config, worker_command)
    run = Run(kernel, plan, working_dir(), group, started)
    log(f"kit {kernel} kernel: model={config['model']} prompt={config['prompt']} val_rows={config['val_rows']} output={run.out}")
    return run
