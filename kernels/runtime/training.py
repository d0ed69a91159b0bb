"""The training loop's parts: step arithmetic across phases, optimizer and schedule, loss at the label, checkpoints.

A phase is one train run. Its `max_steps` counts its own optimizer steps; the global step (all phases together)
is recorded next to it. A run resumed from a finished run starts a new phase (fresh schedule, the adapter and the
optimizer state carried over); a run resumed from an interrupted one finishes that phase where it stopped.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from runtime.data import steps_per_epoch
from runtime.environment import log, warn
from runtime.fusion import fuse_projections
from runtime.modeling import attach_lora, causal_parts, compile_layers, dequantize_base, dequantize_bytes, gpu_room
from runtime.plan import GRAPHED_UNCOMPILED, Decision, Plan, activation_scale, plan_memory, settle_memory

STATE_FILE = "train_state.json"
OPTIMIZER_FILE = "optimizer.pt"
SCHEDULER_FILE = "scheduler.pt"


@dataclass
class TrainState:
    """Where training stands: written with every checkpoint and with the final adapter."""

    global_step: int = 0  # optimizer steps over all phases so far
    phase_step: int = 0  # optimizer steps of the current phase so far
    phase_steps: int = 0  # optimizer steps the current phase makes in total
    global_start: int = 0  # global steps done before the current phase began
    phase: int = 1  # 1 for a fresh run, +1 for each resume from a finished run
    complete: bool = False  # the phase ran all its steps
    seed: int = 0
    data_offset: int = 0
    next_offset: int = 0  # data_offset that gives a later phase fresh rows
    history: list = field(default_factory=list)  # one entry per finished earlier phase

    def save(self, folder: Path) -> None:
        """Write train_state.json into folder."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / STATE_FILE).write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, folder: Path) -> "TrainState":
        """Read train_state.json from folder."""
        data = json.loads((folder / STATE_FILE).read_text())
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def phase_length(n_rows: int, batch_size: int, grad_accum: int, max_steps: int, epochs: float) -> int:
    """Optimizer steps of one phase: max_steps when set, else epochs over the training rows."""
    if max_steps > 0:
        return max_steps
    return max(1, math.ceil(epochs * steps_per_epoch(n_rows, batch_size, grad_accum)))


def plan_phase(previous: TrainState | None, phase_steps: int, *, seed: int, data_offset: int, next_offset: int) -> TrainState:
    """The state this run starts from: fresh, a new phase after a finished run, or the rest of an interrupted phase."""
    if previous is None:
        return TrainState(phase_steps=phase_steps, seed=seed, data_offset=data_offset, next_offset=next_offset)
    if previous.complete:
        history = previous.history + [
            {"phase": previous.phase, "steps": previous.phase_steps, "global_step": previous.global_step,
             "data_offset": previous.data_offset, "next_offset": previous.next_offset, "seed": previous.seed}
        ]
        return TrainState(
            global_step=previous.global_step, phase_step=0, phase_steps=phase_steps, global_start=previous.global_step,
            phase=previous.phase + 1, seed=seed, data_offset=data_offset, next_offset=next_offset, history=history,
        )
    if previous.phase_steps != phase_steps:
        warn(f"the interrupted phase was planned for {previous.phase_steps} steps; this run makes it {phase_steps}")
    return TrainState(
        global_step=previous.global_start + previous.phase_step, phase_step=previous.phase_step, phase_steps=phase_steps,
        global_start=previous.global_start, phase=previous.phase, seed=seed, data_offset=data_offset,
        next_offset=next_offset, history=previous.history,
    )


def stop_on_bad_loss(out_dir: Path, loss: float, step: dict, phase: int, steps_log: list, wall_seconds: float) -> None:
    """End a run whose loss is NaN or infinite at `step` (its record): say so in metrics.json, then raise, so the run
    ends in error without spending more GPU time on a diverged adapter."""
    reason = f"loss is {loss} at global step {step['step']} (phase {phase}, step {step['phase_step']})"
    metrics = {"stopped_early": True, "stop_reason": reason, "phase": phase, "global_step": step["step"],
               "steps_this_run": len(steps_log), "wall_seconds": round(wall_seconds, 2), "steps": steps_log}
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))
    warn(f"stopping early: {reason}")
    raise FloatingPointError(f"stopped early: {reason}; lower learning_rate, or check the data and dtype")


def find_resume_point(source: Path) -> Path | None:
    """The folder to continue from in an earlier run's output: its final adapter, else its latest checkpoint."""
    if (source / STATE_FILE).is_file() and (source / "adapter").is_dir():
        return source
    checkpoints = sorted((source / "checkpoints").glob("step-*"), key=lambda p: int(p.name.split("-")[1])) if (source / "checkpoints").is_dir() else []
    if checkpoints:
        return checkpoints[-1]
    if (source / "adapter").is_dir():
        return source
    return None


def make_optimizer(params, name: str, learning_rate: float, weight_decay: float):
    """The optimizer by name, as the plan chose it (plan.choose_optimizer: 8-bit ones only where bitsandbytes and a
    GPU are there, the fused AdamW only on a GPU)."""
    import torch

    params = list(params)
    if name in ("adamw_8bit", "paged_adamw_8bit"):
        import bitsandbytes as bnb

        cls = bnb.optim.PagedAdamW8bit if name == "paged_adamw_8bit" else bnb.optim.AdamW8bit
        return cls(params, lr=learning_rate, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=learning_rate, momentum=0.9, weight_decay=weight_decay)
    return torch.optim.AdamW(params, lr=learning_rate, weight_decay=weight_decay, fused=(name == "adamw_torch_fused") or None)


def make_scheduler(optimizer, name: str, warmup_steps: int, total_steps: int):
    """The learning-rate schedule over this phase's steps."""
    from transformers import get_scheduler

    return get_scheduler(name, optimizer, num_warmup_steps=min(warmup_steps, total_steps), num_training_steps=total_steps)


def label_loss(model, batch):
    """Mean cross-entropy at the batch's predicted positions; the output layer runs at those positions only."""
    import torch

    decoder, lm_head = causal_parts(model)
    out = decoder(input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False, **batch.attention)
    hidden = out[0] if isinstance(out, tuple) else out.last_hidden_state
    picked = hidden.reshape(-1, hidden.shape[-1]).index_select(0, batch.predict_index)
    logits = lm_head(picked).float()
    return torch.nn.functional.cross_entropy(logits, batch.targets)


def prepare_for_training(model, config: dict, plan: Plan, *, dtype, longest_row: int):
    """Settle the plan's memory decisions on the room measured now that the base is loaded (plan.plan_memory), attach
    LoRA as they say, dequantize the 4-bit base where they found room, fuse and compile as planned; returns (model,
    settled plan)."""
    import torch

    engine = plan.engine.value
    room = gpu_room(0) if torch.cuda.is_available() else None
    extra = dequantize_bytes(model)
    memory_for = lambda compiled: plan_memory(  # noqa: E731
        config["gradient_checkpointing"], model.config, config["r"], longest_row, room, dequantize=config["dequantize_base"],
        dequantize_bytes=extra, activation_scale=activation_scale(engine, compiled))
    memory = memory_for(plan.compile.value)
    if memory.checkpointing and plan.compile.reason == GRAPHED_UNCOMPILED:
        # eager layers hold more activations than compiled ones: compiled, the graphed passes may fit without
        # recomputation (else settle_memory drops the graphs, and the layers stay compiled)
        memory = memory_for(True)
        plan = replace(plan, compile=Decision(True, "the eager layers' activations need recomputation, compiled ones may not"))
    if room is not None:
        log(f"{memory.note} -> gradient checkpointing {'on' if memory.checkpointing else 'off'}, chunks of up to {memory.chunk_tokens} tokens")
    plan = settle_memory(plan, memory)
    compiled = plan.compile.value  # settling can give back the compilation that graphs made needless
    model = attach_lora(model, config, engine=engine, gradient_checkpointing=memory.checkpointing)
    if memory.dequantize:
        log(f"dequantized {dequantize_base(model, dtype)} 4-bit layers: no dequantizing in every pass (same values)")
    if plan.fuse_projections.value:
        fused = fuse_projections(causal_parts(model)[0].layers)
        log(f"fused the projections of {fused} q/k/v and gate/up groups: one matmul for each (the same products)" if fused
            else "projections not fused (4-bit base, or a layer kind kit does not fuse)")
    if compiled:
        log(f"compiling {compile_layers(model)} decoder layers (torch.compile; the first steps wait for it, once)")
    return model, plan


def train_step(model, micro_batches, make_batch, chunks_of, *, optimizer, scaler, trainable, max_grad_norm: float, autocast,
               share=None, graphs=None):
    """One optimizer step over `micro_batches` (lists of row positions); each runs as chunks that fit in memory.

    A chunk's loss is weighted by its share of the micro-batch's targets, so the gradient equals the whole
    micro-batch's. With `share` (a StepShare: data-parallel), this process runs only its rows of each micro-batch,
    weighted by the whole micro-batch's targets, and the gradients are summed across processes. With `graphs` (a
    graphs.GraphedPasses), a chunk it takes replays as a CUDA graph, the others run eagerly. Returns (summed loss as
    a GPU tensor, useful tokens); the caller reads the loss when it must.
    """
    import torch

    loss_sum, tokens = 0.0, 0
    for rows in micro_batches:
        mine = share.rows(rows) if share else rows
        batches = [make_batch(chunk) for chunk in chunks_of(mine)] if mine else []
        targets = share.targets(rows) if share else sum(int(b.targets.numel()) for b in batches)
        for batch in batches:
            weight = batch.targets.numel() / targets / len(micro_batches)
            loss = graphs.backward(batch, weight) if graphs is not None else None
            if loss is None:
                with autocast():
                    loss = label_loss(model, batch) * weight
                scaler.scale(loss).backward()
            loss_sum += loss.detach()
            tokens += batch.useful_tokens
    if share:
        loss_sum, tokens = share.sum(trainable, loss_sum), share.tokens(micro_batches)
    scaler.unscale_(optimizer)
    if max_grad_norm > 0:
        torch.nn.utils.clip_grad_norm_(trainable, max_grad_norm)
    scaler.step(optimizer)
    scaler.update()
    # recorded graphs add into the .grad tensors they were recorded with: those are zeroed, not dropped
    optimizer.zero_grad(set_to_none=graphs is None)
    return loss_sum, tokens


def save_training(folder: Path, model, optimizer, scheduler, state: TrainState) -> None:
    """Adapter, optimizer, schedule and train_state.json into folder (a checkpoint or the run's output)."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder / "adapter"))
    torch.save(optimizer.state_dict(), folder / OPTIMIZER_FILE)
    torch.save(scheduler.state_dict(), folder / SCHEDULER_FILE)
    state.save(folder)


def save_checkpoint(out_dir: Path, model, optimizer, scheduler, state: TrainState) -> Path:
    """A checkpoint at checkpoints/step-<global step>; older ones are removed (the output disk is small)."""
    root = out_dir / "checkpoints"
    folder = root / f"step-{state.global_step}"
    save_training(folder, model, optimizer, scheduler, state)
    for old in root.glob("step-*"):
        if old != folder:
            shutil.rmtree(old, ignore_errors=True)
    log(f"checkpoint saved: {folder}")
    return folder


def restore_optimizer(folder: Path, optimizer, scheduler, *, same_phase: bool) -> bool:
    """Load the optimizer state (and the schedule when continuing the same phase) saved in folder, if there."""
    import torch

    if not (folder / OPTIMIZER_FILE).is_file():
        return False
    settings = [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups]
    optimizer.load_state_dict(torch.load(folder / OPTIMIZER_FILE, map_location="cpu", weights_only=False))
    if same_phase and (folder / SCHEDULER_FILE).is_file():
        scheduler.load_state_dict(torch.load(folder / SCHEDULER_FILE, map_location="cpu", weights_only=False))
    else:
        # A new phase keeps Adam's moments but its own settings and schedule (learning rate, weight decay).
        for group, saved in zip(optimizer.param_groups, settings):
            group.update(saved)
    return True
