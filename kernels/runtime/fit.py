"""The train stage: fine-tune LoRA on the label token of the training rows, resuming a previous phase when asked.

    trained = train(run, config, rows, model, tokenizer)   # -> Trained: the model (LoRA attached), steps and figures

Every process training together runs it on its share of the rows; only the first (run.leader) saves the adapter
and goes on to score.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass, field

from runtime.answer_data import AnswerRows, encode_answer_examples
from runtime.attention import use_packed_attention
from runtime.data import Rows, collate, padded_width, split_by_tokens, training_order
from runtime.environment import log, step_line, warn
from runtime.graphs import GraphedPasses
from runtime.modeling import check_adapter_matches, fast_path_warnings, load_adapter_weights
from runtime.parallel import StepShare, broadcast_trainable
from runtime.paths import find_source
from runtime.plan import choose_warmup, planned_steps
from runtime.labels import LabelTokens
from runtime.session import Run
from runtime.training import TrainState, find_resume_point, make_optimizer, make_scheduler, phase_length, plan_phase, prepare_for_training, restore_optimizer, save_checkpoint, save_training, stop_on_bad_loss, train_step


@dataclass
class Trained:
    """The train stage's output: the trained model and what the records say about the phase."""

    model: object
    state: TrainState
    phase_steps: int
    steps: list = field(default_factory=list)  # one record per optimizer step: loss, lr, tokens/s
    seconds: float = 0.0
    tokens: int = 0
    class_rows: dict = field(default_factory=dict)  # training rows of each class
    peak_memory_gib: float | None = None  # the most GPU memory training held
    graph_counts: dict = field(default_factory=dict)  # CUDA graphs recorded and replayed (empty when the passes ran eagerly)

    def metrics(self) -> dict:
        """The training figures of metrics.json."""
        last = self.steps[-10:]
        return {"phase": self.state.phase, "phase_steps": self.phase_steps, "global_step": self.state.global_step,
                "steps_this_run": len(self.steps), "train_seconds": round(self.seconds, 2), "train_tokens": self.tokens,
                "train_tokens_per_s": round(self.tokens / max(self.seconds, 1e-9), 1),
                "train_loss_last": (sum(s["loss"] for s in last) / len(last)) if last else None,
                "peak_memory_gib": None if self.peak_memory_gib is None else round(self.peak_memory_gib, 3), **self.graph_counts}

    def row_metrics(self) -> dict:
        """The training rows of each class: train_true_rows for the binary True/False task (as before), else by class."""
        if tuple(self.class_rows) == ("True", "False"):
            return {"train_true_rows": self.class_rows["True"]}
        return {"train_class_rows": self.class_rows}


@dataclass
class Examples:
    """The training rows as the steps see them: token ids, label token, length (with the label when it is an input)."""

    sequences: list
    label_ids: list | None
    lengths: list
    pad_id: int
    # generated answers: each sequence is a prompt and its completion, which starts here; the loss is on it alone
    completion_from: list | None = None

    def row_targets(self, completion_only: bool) -> list:
        """The tokens each row's loss is taken on."""
        if self.completion_from is not None:
            return [n - start for n, start in zip(self.lengths, self.completion_from)]
        return [1 if completion_only else len(s) for s in self.sequences]


def micro_batches(order_for_epoch, start: int):
    """Endless micro-batches (lists of row positions) over epochs, skipping the first `start` (a resumed phase)."""
    epoch, seen = 0, 0
    while True:
        for rows in order_for_epoch(epoch):
            if seen >= start:
                yield rows
            seen += 1
        epoch += 1


def previous_phase(config: dict, rows: Rows):
    """(the folder to resume from, its TrainState), or (None, None) without resume_from."""
    if not config["resume_from"]:
        return None, None
    source = find_source(config["resume_from"])
    point = find_resume_point(source)
    if point is None:
        raise FileNotFoundError(f"no adapter or checkpoint in the output of {config['resume_from']} ({source})")
    previous = TrainState.load(point) if (point / "train_state.json").is_file() else TrainState(complete=True)
    log(f"resuming from {point}: phase {previous.phase}, global step {previous.global_step}, "
        f"{'finished' if previous.complete else f'interrupted at phase step {previous.phase_step}'}")
    if previous.complete and previous.seed == config["seed"] and config["data_offset"] < previous.next_offset:
        warn(f"this phase trains again on rows the previous phase saw; data_offset={previous.next_offset} gives fresh rows")
    return point, previous


def encode_examples(config: dict, rows: Rows, tokenizer, labels: LabelTokens | None = None) -> Examples:
    """The training rows' prompts as token ids, each with its class's label token (`labels`); for a
    generated-answer task (rows are AnswerRows), each prompt followed by its completion."""
    if isinstance(rows, AnswerRows):
        sequences, starts = encode_answer_examples(config, rows, tokenizer)
        return Examples(sequences, None, [len(s) for s in sequences], tokenizer.pad_token_id, completion_from=starts)
    sequences = rows.encode(tokenizer, labels.template, rows.split.train, config["max_seq_length"])
    label_ids = [labels.token_ids[rows.labels[i]] for i in rows.split.train]
    lengths = [len(s) + (0 if config["completion_only"] else 1) for s in sequences]
    log(f"prompt tokens: mean {sum(lengths) / len(lengths):.0f}, max {max(lengths)}; {len(labels.classes)} classes")
    return Examples(sequences, label_ids, lengths, tokenizer.pad_token_id)


def ready_model(run: Run, config: dict, model, examples: Examples, point):
    """LoRA attached (resumed weights loaded), memory settled on the room measured now, packed attention installed;
    returns (model, trainable parameters). Settles run.plan's memory decisions."""
    plan = run.plan
    if plan.packing.value:
        log(f"packed rows: {use_packed_attention(model, plan.attention.value == 'flash varlen')}")
    if plan.engine.value != "unsloth":
        for message in fast_path_warnings(config["lora_dropout"], config["lora_bias"]):
            log(f"note: {message} (only matters with engine=unsloth)")
    longest = padded_width(max(examples.lengths), plan.pad_multiple.value)
    model, run.plan = prepare_for_training(model, config, plan, dtype=run.dtype, longest_row=longest)
    if point is not None:
        check_adapter_matches(point / "adapter", config)
        load_adapter_weights(model, point / "adapter")
    trainable = [p for p in model.parameters() if p.requires_grad]
    broadcast_trainable(trainable, run.group)
    log(f"trainable parameters: {sum(p.numel() for p in trainable):,}")
    return model, trainable


def train(run: Run, config: dict, rows: Rows, model, tokenizer, labels: LabelTokens | None = None) -> Trained:
    """Fine-tune `model` to give each training row's label token (`labels`), for this phase's steps (a generated-answer
    task's AnswerRows: on their completions); the leader saves adapter/ and train_state.json."""
    import torch

    point, previous = previous_phase(config, rows)
    examples = encode_examples(config, rows, tokenizer, labels)
    model, trainable = ready_model(run, config, model, examples, point)
    phase_steps = phase_length(len(examples.sequences), config["batch_size"], config["grad_accum"], config["max_steps"], config["epochs"])
    state = plan_phase(previous, phase_steps, seed=config["seed"], data_offset=config["data_offset"], next_offset=rows.split.next_offset)
    if planned_steps(config) != phase_steps:  # the plan could not know the run's length (train.csv's size): say it now
        warmup = choose_warmup({**config, "max_steps": phase_steps})
        if warmup.warning:
            warn(warmup.warning)
    optimizer = make_optimizer(trainable, run.plan.optimizer.value, config["learning_rate"], config["weight_decay"])
    scheduler = make_scheduler(optimizer, config["lr_scheduler"], config["warmup_steps"], phase_steps)
    if point is not None and restore_optimizer(point, optimizer, scheduler, same_phase=not previous.complete):
        log("optimizer state restored" + ("" if previous.complete else " with the schedule"))
    if state.phase_step >= phase_steps:
        log(f"phase already complete ({state.phase_step}/{phase_steps} steps)")
    counts = {} if examples.label_ids is None else dict(zip(rows.task.classes(), rows.class_counts(rows.split.train)))
    trained = Trained(model, state, phase_steps, class_rows=counts)
    if run.gpu:
        torch.cuda.reset_peak_memory_stats()
    log(f"training: phase {state.phase}, steps {state.phase_step + 1}..{phase_steps} of this phase "
        f"(global {state.global_step + 1}..{state.global_start + phase_steps}), batch {config['batch_size']} x {config['grad_accum']}, "
        f"gradient checkpointing {'on' if run.plan.checkpointing.value else 'off'}, packing {'on' if run.plan.packing.value else 'off'}")
    Steps(run, config, trained, examples, trainable, optimizer, scheduler).run_phase()
    if run.leader:
        state.complete = True
        save_training(run.out, model, optimizer, scheduler, state)
        shutil.rmtree(run.out / "checkpoints", ignore_errors=True)
        tokenizer.save_pretrained(str(run.out / "adapter"))
        trained.peak_memory_gib = torch.cuda.max_memory_allocated() / 2**30 if run.gpu else None
        log(f"trained {len(trained.steps)} steps in {trained.seconds:.1f}s ({trained.tokens / max(trained.seconds, 1e-9):.0f} tokens/s); adapter saved")
    run.group.finish()
    del optimizer, scheduler
    return trained


class Steps:
    """The optimizer steps of one phase: each step's loss is read only once the next step is queued (so the GPU never
    idles while Python logs), logged every logging_steps, and checked finite; checkpoints every save_steps."""

    def __init__(self, run: Run, config: dict, trained: Trained, examples: Examples, trainable, optimizer, scheduler):
        import torch

        self.run, self.config, self.trained, self.examples = run, config, trained, examples
        self.trainable, self.optimizer, self.scheduler = trainable, optimizer, scheduler
        plan, gpu, dtype = run.plan, run.gpu, run.dtype
        self.packed, self.multiple, self.chunk_tokens = plan.packing.value, plan.pad_multiple.value, plan.chunk_tokens.value
        self.scaler = torch.amp.GradScaler("cuda", enabled=gpu and dtype == torch.float16)
        self.autocast = lambda: torch.autocast("cuda", dtype=dtype, enabled=gpu and dtype != torch.float32)  # noqa: E731
        self.share = StepShare(run.group, examples.lengths, examples.row_targets(config["completion_only"])) if run.group.world > 1 else None
        self.unread: list = []  # the last step: its loss still on the GPU
        self.graphs = GraphedPasses(trained.model, dtype, longest_row=max(examples.lengths)) if plan.cuda_graphs.value else None
        if self.graphs is not None:  # a chunk padded to its bucket grows by up to 1/8: it still fits the memory plan
            self.chunk_tokens = self.chunk_tokens * 8 // 9

    def order_for_epoch(self, epoch: int):
        """The micro-batches of one epoch (length-grouped unless packed)."""
        config = self.config
        return training_order(self.examples.lengths, config["batch_size"], config["group_by_length"] and not self.packed, config["seed"] + epoch)

    def make_batch(self, rows):
        """One micro-batch's tensors on the training device."""
        e = self.examples
        return collate([e.sequences[r] for r in rows], e.pad_id, label_ids=None if e.label_ids is None else [e.label_ids[r] for r in rows],
                       completion_only=self.config["completion_only"], packed=self.packed, pad_to_multiple=self.multiple,
                       pad_to_bucket=self.graphs is not None and not self.graphs.off, device=self.run.device,
                       completion_from=None if e.completion_from is None else [e.completion_from[r] for r in rows])

    def run_phase(self) -> None:
        """Step until the phase's last step."""
        config, state, trained = self.config, self.trained.state, self.trained
        stream = micro_batches(self.order_for_epoch, state.phase_step * config["grad_accum"])
        trained.model.train()
        self.started = self.last_read = time.time()
        while state.phase_step < trained.phase_steps:
            loss_sum, tokens = train_step(
                trained.model, [next(stream) for _ in range(config["grad_accum"])], self.make_batch,
                lambda rows: split_by_tokens(rows, self.examples.lengths, self.chunk_tokens, self.multiple, self.packed),
                optimizer=self.optimizer, scaler=self.scaler, trainable=self.trainable, max_grad_norm=config["max_grad_norm"],
                autocast=self.autocast, share=self.share, graphs=self.graphs,
            )
            lr = self.scheduler.get_last_lr()[0]
            self.scheduler.step()
            state.phase_step += 1
            state.global_step += 1
            trained.tokens += tokens
            if self.unread:
                self.settle()
            self.unread.append((loss_sum, {"step": state.global_step, "phase_step": state.phase_step, "lr": lr, "tokens": tokens}))
            if config["save_steps"] and state.phase_step % config["save_steps"] == 0 and state.phase_step < trained.phase_steps:
                self.settle()  # a checkpoint holds only steps whose loss was finite
                if self.run.leader:
                    save_checkpoint(self.run.out, trained.model, self.optimizer, self.scheduler, state)
        if self.unread:
            self.settle()
        trained.seconds = time.time() - self.started
        if self.graphs is not None:
            log(self.graphs.summary())
            trained.graph_counts = self.graphs.counts()
            self.graphs.close()

    def settle(self) -> None:
        """Read the unread step's loss (waiting for that step alone), log it, and stop on a loss that is not finite."""
        loss_sum, record = self.unread.pop()
        loss_value = float(loss_sum)
        now = time.time()
        trained, run = self.trained, self.run
        if not math.isfinite(loss_value):
            if not run.leader:
                raise FloatingPointError(f"loss is {loss_value} at global step {record['step']}")
            stop_on_bad_loss(run.out, loss_value, record, trained.state.phase, trained.steps, now - run.started)
        record.update(loss=round(loss_value, 5), tokens_per_s=round(record["tokens"] / max(now - self.last_read, 1e-9), 1),
                      elapsed_s=round(now - self.started, 2))
        self.last_read = now
        trained.steps.append(record)
        step, every = record["phase_step"], self.config["logging_steps"]
        if run.leader and (step == 1 or step % every == 0 or step == trained.phase_steps):
            log(step_line(step, trained.phase_steps, record["step"], loss_value, record["lr"], record["tokens_per_s"], record["elapsed_s"]))
