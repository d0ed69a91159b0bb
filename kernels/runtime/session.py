"""The first stage of every kernel: install what it needs, make the plan, print it, join the other training processes.

    run = start_run(config, "train")   # -> Run: the plan, the output folder, the process group, the clock

A train run of several processes (train_processes) starts them here: the kernel's own process hands them to
torch.distributed's launcher (parallel.launch), waits, and gets a Run with `launched` set (rank 0's metrics), while
each process it started runs the whole recipe as a member of the group.

Nothing after this stage asks the machine what it can do: the stages read `run.plan`.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from runtime.environment import log, quiet_progress_bars, torch_dtype, warn
from runtime.install import install_pinned
from runtime.modeling import read_model_config, resolve_model, use_model_source
from runtime.parallel import STARTED_ENV, ProcessGroup, group_member, join_group, launch, own_gpu
from runtime.paths import working_dir
from runtime.plan import Plan, detect_machine, make_plan, processes_here, unsloth_imports


@dataclass
class Run:
    """What every stage of one kernel run shares."""

    kernel: str  # train | infer
    plan: Plan | None  # None only in the process that launched the training processes (launched)
    out: Path  # the working folder, where the outputs go
    group: ProcessGroup = field(default_factory=ProcessGroup)
    started: float = field(default_factory=time.time)
    launched: dict | None = None  # in the process that launched several training processes: the metrics rank 0 wrote

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
    processes start them under torch.distributed's launcher (`worker_command`, default: this script again) and wait:
    the Run returned then has `launched` (rank 0's metrics) and no plan. In a process it started, join the group."""
    member = group_member()  # (rank, world) in a process the launcher started
    started = float(os.environ.get(STARTED_ENV, time.time())) if member else time.time()
    quiet_progress_bars()
    if member is None:  # the processes start after the kernel's own installed everything
        install_pinned(config["engine"])  # before anything imports torch or transformers
    own_gpu()  # rank 1 or more: its GPU alone, before CUDA starts
    use_model_source(config["model"])  # before unsloth or transformers is imported
    if kernel == "train" and member is None and (processes := processes_here(config)) > 1:
        resolve_model(config["model"])  # converted once, by this process, before the training processes read it
        launch(processes, config, worker_command, started)
        out = working_dir()
        return Run(kernel, None, out, started=started, launched=json.loads((out / "metrics.json").read_text()))
    plan = plan_this_machine(config, kernel)
    leader = member is None or member[0] == 0
    if leader:
        log(plan.table())
        for message in plan.warnings():
            warn(message)
    group = ProcessGroup()
    if kernel == "train":
        import torch

        torch.manual_seed(config["seed"])
        if member is not None:
            rank, world = member
            if world != plan.train_processes.value:
                raise RuntimeError(f"{world} training processes were started but the plan has {plan.train_processes.value}; run the "
                                   "kernel as `python kernel.py` (it starts its own), or set train_processes to match")
            group = join_group(world, rank)
    run = Run(kernel, plan, working_dir(), group, started)
    log(f"kit {kernel} kernel: model={config['model']} prompt={config['prompt']} val_rows={config['val_rows']} output={run.out}")
    return run
