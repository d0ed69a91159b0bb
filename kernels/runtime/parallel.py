"""Data-parallel training: one process per GPU (or per CPU worker), each step's rows split between them.

The first process (rank 0) is the kernel itself: it starts the others as copies of its own command, with their rank
in the environment and one GPU each (CUDA_VISIBLE_DEVICES), and alone writes outputs. Every process computes the same
micro-batches, takes its share of each, weights its losses by the whole step's targets, and the gradients are summed
with one all-reduce: every process then makes the update one process with the whole batch would make, so the recipe
(rows per optimizer step, learning rate, steps) and its result do not change with the number of GPUs.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from runtime.environment import log
from runtime.plan import RANK_ENV, WORLD_ENV

PORT_ENV = "KIT_PORT"
CONFIG_ENV = "KIT_CONFIG_JSON"


@dataclass
class ProcessGroup:
    """This process's place among the processes that train together."""

    rank: int = 0
    world: int = 1
    workers: list = field(default_factory=list)  # the other processes (rank 0 only)
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def leader(self) -> bool:
        """The process that logs, checkpoints and writes the outputs."""
        return self.rank == 0

    def finish(self) -> None:
        """Leave the group; the leader waits for the others and fails if one of them failed."""
        if self.world == 1:
            return
        import torch.distributed as dist

        # All arrive before any leaves: a worker tearing down its gloo connections while the leader still saves the
        # adapter was seen to abort (SIGABRT, "terminate called without an active exception") on a loaded CPU.
        dist.barrier()
        dist.destroy_process_group()
        self.done.set()
        for worker in self.workers:
            if worker.wait() != 0:
                raise RuntimeError(f"a training process (pid {worker.pid}) exited with code {worker.returncode}; see the log above")


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on, for the processes to meet at."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_command() -> list[str]:
    """How to start a copy of this kernel: the interpreter and script this process runs."""
    return [sys.executable, os.path.abspath(sys.argv[0])]


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES names them."""
    import torch

    named = os.environ.get("CUDA_VISIBLE_DEVICES")
    return named.split(",") if named else [str(k) for k in range(torch.cuda.device_count())]


def watch(group: ProcessGroup) -> None:
    """End the leader at once if a worker dies: its collectives would otherwise wait for the lost process."""

    def run() -> None:
        while not group.done.wait(2.0):
            for worker in group.workers:
                code = worker.poll()
                if code not in (None, 0):
                    log(f"training process {worker.pid} exited with code {code}; stopping")
                    os._exit(1)

    threading.Thread(target=run, daemon=True).start()


def join_group(world: int, config: dict, command: list[str] | None = None) -> ProcessGroup:
    """Form the group of `world` training processes: the leader starts the workers (`command`, default: this
    script again), every process joins the same torch.distributed group (NCCL on GPUs, gloo on the CPU)."""
    import torch
    import torch.distributed as dist

    if world <= 1:
        return ProcessGroup()
    rank = int(os.environ.get(RANK_ENV, "0"))
    workers = []
    if rank == 0:
        port = free_port()
        gpus = visible_gpus() if torch.cuda.is_available() else []
        for r in range(1, world):
            env = {**os.environ, RANK_ENV: str(r), WORLD_ENV: str(world), PORT_ENV: str(port), CONFIG_ENV: json.dumps(config)}
            if gpus:
                env["CUDA_VISIBLE_DEVICES"] = gpus[r]
            # Workers print nothing (the leader logs for all); their errors still reach stderr.
            workers.append(subprocess.Popen(command or worker_command(), env=env, stdout=subprocess.DEVNULL))
    else:
        port = int(os.environ[PORT_ENV])
    started = time.time()
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "gloo":
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))  # CPU processes share the cores
    from datetime import timedelta

    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world, timeout=timedelta(minutes=10))
    group = ProcessGroup(rank, world, workers)
    if group.leader:
        watch(group)
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
