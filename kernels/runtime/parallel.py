"""Data-parallel training: one process per GPU (or per CPU worker), each step's rows split between them.

The kernel does not start the processes itself: it hands them to torch.distributed's elastic launcher, the machinery
behind `torchrun` (launch). The launcher runs `processes` copies of the kernel's own command (`python kernel.py`, as
Kaggle runs it), each with RANK, LOCAL_RANK, WORLD_SIZE and the group's meeting point in its environment; the kernel's
own process only waits. When one copy dies, the launcher stops the others and reports which one and how: the kernel
ends with that line (TrainingProcessFailed), never waiting on a lost process. Rank 0 sees every GPU (it scores on all
of them after training), logs and alone writes outputs; the others each see their own GPU (CUDA_VISIBLE_DEVICES) and
print nothing.

Every process computes the same micro-batches, takes its share of each, weights its losses by the whole step's
targets, and the gradients are summed with one all-reduce: every process then makes the update one process with the
whole batch would make, so the recipe (rows per optimizer step, learning rate, steps) and its result do not change
with the number of GPUs.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass

from runtime.environment import log, warn
from runtime.plan import RANK_ENV, WORLD_ENV

LOCAL_RANK_ENV = "LOCAL_RANK"  # set by the launcher: the process's place on this machine (its GPU)
CONFIG_ENV = "KIT_CONFIG_JSON"  # the config the processes run with (a worker command that has none built in reads it)
STARTED_ENV = "KIT_STARTED"  # when the kernel started (time.time()): rank 0's wall_seconds count from there
VISIBLE = "CUDA_VISIBLE_DEVICES"


class TrainingProcessFailed(RuntimeError):
    """One of the training processes failed; the launcher stopped the others. One line: its rank, pid, exit code."""


@dataclass
class ProcessGroup:
    """This process's place among the processes that train together."""

    rank: int = 0
    world: int = 1

    @property
    def leader(self) -> bool:
        """The process that logs, checkpoints and writes the outputs."""
        return self.rank == 0

    def finish(self) -> None:
        """Leave the group; the leader returns once the others have exited, so that their GPUs are free for scoring
        (the launcher waits for every process and reports one that failed)."""
        if self.world == 1:
            return
        import torch
        import torch.distributed as dist

        pids = torch.zeros(self.world, dtype=torch.int64, device="cuda" if dist.get_backend() == "nccl" else "cpu")
        pids[self.rank] = os.getpid()
        dist.all_reduce(pids)  # every process's pid, known to each
        # All arrive before any leaves: a worker tearing down its gloo connections while the leader still saves the
        # adapter was seen to abort (SIGABRT, "terminate called without an active exception") on a loaded CPU.
        dist.barrier()
        dist.destroy_process_group()
        if self.leader:
            wait_for_exit([int(pid) for pid in pids[1:].tolist()])


def wait_for_exit(pids: list[int], timeout: float = 120.0) -> None:
    """Return once the processes `pids` have exited (and their memory, on the GPU too, is free), or after `timeout`
    seconds with a warning. The launcher reaps them as they exit (it polls its processes every 0.1 s)."""
    deadline = time.time() + timeout
    for pid in pids:
        while True:
            try:
                os.kill(pid, 0)
            except (ProcessLookupError, PermissionError):  # gone (or its pid already another's)
                break
            if time.time() > deadline:
                warn(f"training process {pid} has not exited {timeout:.0f}s after training; going on")
                return
            time.sleep(0.1)


def group_member() -> tuple[int, int] | None:
    """(rank, world) where this process is one of a group torch.distributed's launcher started, else None."""
    if WORLD_ENV not in os.environ:
        return None
    return int(os.environ.get(RANK_ENV, "0")), int(os.environ[WORLD_ENV])


def own_gpu() -> None:
    """In a training process other than rank 0, see only this process's GPU (the LOCAL_RANK-th of those the kernel
    saw), so that its cuda:0 is its own and it opens no CUDA context on another. Call before CUDA starts."""
    member = group_member()
    if member is None or member[0] == 0 or LOCAL_RANK_ENV not in os.environ:
        return
    local = int(os.environ[LOCAL_RANK_ENV])
    named = os.environ.get(VISIBLE)
    gpus = named.split(",") if named else None
    os.environ[VISIBLE] = gpus[local] if gpus and local < len(gpus) else str(local)


def worker_command() -> list[str]:
    """How to run a copy of this kernel: the interpreter and the script this process runs (on Kaggle,
    `python3 /kaggle/src/script.py`)."""
    return [sys.executable, os.path.abspath(sys.argv[0])]


@contextmanager
def environment(values: dict):
    """os.environ with `values` set (the launcher copies it into every process), restored afterwards."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def launch(processes: int, config: dict, command: list[str] | None = None, started: float | None = None) -> None:
    """Run `processes` copies of this kernel (`command`, default: this script again) as one group under
    torch.distributed's elastic launcher, and wait for them. One that fails ends the others at once (no restarts):
    raises TrainingProcessFailed naming its rank, pid and exit code, after saying so in the log."""
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs, Std
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    command = command or worker_command()
    log(f"starting {processes} training processes with torch.distributed's launcher (torchrun's): {' '.join(command[:2])}")
    with tempfile.TemporaryDirectory(prefix="kit-train-processes-") as logs, \
            environment({CONFIG_ENV: json.dumps(config), STARTED_ENV: str(started or time.time())}):
        spec = LaunchConfig(
            min_nodes=1, max_nodes=1, nproc_per_node=processes, run_id=f"kit-{os.getpid()}", max_restarts=0,
            rdzv_backend="c10d", rdzv_endpoint="127.0.0.1:0", local_addr="127.0.0.1",  # this machine alone, a free port
            logs_specs=DefaultLogsSpecs(log_dir=logs, redirects={r: Std.OUT for r in range(1, processes)}),  # rank 0 logs for all
        )
        try:
            elastic_launch(spec, command[0])(*command[1:])
        except ChildFailedError as exc:
            rank, failure = exc.get_first_failure()
            line = failure_line(rank, failure.pid, failure.exitcode, failure.signal_name() if failure.exitcode < 0 else "")
            warn(line)
            raise TrainingProcessFailed(line) from None


def failure_line(rank: int, pid: int, code: int, signal: str = "") -> str:
    """The one line a failed training process leaves."""
    how = f"was killed by {signal} (exit code {code})" if signal else f"exited with code {code}"
    return (f"training process rank {rank} (pid {pid}) {how}; torch.distributed's launcher stopped the other processes"
            + ("" if signal else " (its error is above)"))


def join_group(world: int, rank: int) -> ProcessGroup:
    """Join the group of `world` training processes the launcher started (NCCL on GPUs, gloo on the CPU)."""
    import torch
    import torch.distributed as dist

    if world <= 1:
        return ProcessGroup()
    started = time.time()
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "gloo":
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))  # CPU processes share the cores
    from datetime import timedelta

    dist.init_process_group(backend, rank=rank, world_size=world, timeout=timedelta(minutes=10))  # env://: the launcher's store
    group = ProcessGroup(rank, world)
    if group.leader:
        log(f"{world} training processes ({backend}) joined in {time.time() - started:.1f}s; each step's rows are split between them")
    return group


def my_rows(rows: list[int], lengths: list[int], group: ProcessGroup) -> list[int]:
    """This process's share of a micro-batch: every world-th row by length, so that each gets long and short rows."""
    if group.world == 1:
        return rows
    return sorted(rows, key=lambda r: (-lengths[r], r))[group.rank :: group.world]


def broadcast_trainable(trainable: list, group: ProcessGroup) -> None:
    """Start every process from the leader's adapter weights."""
    if group.world == 1:
        return
    import torch.distributed as dist

    for p in trainable:
        dist.broadcast(p.data, 0)


def sum_across(trainable: list, loss, group: ProcessGroup):
    """Sum every process's gradients of `trainable`, and its `loss`, with one all-reduce; returns the summed loss (on
    the device: reading it is the caller's choice). A process that had no rows this step adds zeros."""
    if group.world == 1:
        return loss
    import torch
    import torch.distributed as dist

    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in trainable]
    flat = torch.cat([g.reshape(-1).float() for g in grads] + [torch.as_tensor(loss, dtype=torch.float32).to(grads[0].device).reshape(1)])
    dist.all_reduce(flat)
    offset = 0
    for p, g in zip(trainable, grads):
        p.grad = flat[offset : offset + g.numel()].view_as(p).to(p.dtype)
        offset += g.numel()
    return flat[offset]


@dataclass
class StepShare:
    """What one process of several does with each micro-batch: its rows, weighted by the whole micro-batch's targets."""

    group: ProcessGroup
    lengths: list  # tokens of each training row as collated (its useful tokens)
    row_targets: list  # tokens each row's loss is taken on (1 with completion_only)

    def rows(self, rows: list[int]) -> list[int]:
        """This process's rows of a micro-batch."""
        return my_rows(rows, self.lengths, self.group)

    def targets(self, rows: list[int]) -> int:
        """The targets of the whole micro-batch, over every process."""
        return sum(self.row_targets[r] for r in rows)

    def tokens(self, micro_batches: list) -> int:
        """Useful tokens of the whole step, over every process (known to each: no communication)."""
        return sum(self.lengths[r] for rows in micro_batches for r in rows)

    def sum(self, trainable: list, loss):
        """The whole step's loss, the gradients summed across the processes."""
        return sum_across(trainable, loss, self.group)
