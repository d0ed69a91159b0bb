"""The train kernel: sample rows, fine-tune LoRA on the label token, validate, score the test set, write outputs."""

from __future__ import annotations

import json
import math
import os
import shutil
import time

from kernels.runtime.attention import choose_packing, use_packed_attention
from kernels.runtime.data import collate, encode_prompts, label_token_ids, pad_multiple, padded_width, parse_label, read_table, split_by_tokens, split_rows, training_order
from kernels.runtime.environment import choose_dtype, dtype_name, gpu_names, log, quiet_progress_bars, skip_validation, warn
from kernels.runtime.install import install_pinned
from kernels.runtime.modeling import check_adapter_matches, fast_path_warnings, load_adapter_weights, load_base_model, load_for_scoring, prepare_for_scoring, resolve_model, uncompile_layers, use_model_source
from kernels.runtime.parallel import RANK_ENV, StepShare, broadcast_trainable, join_group, training_processes
from kernels.runtime.paths import competition_dir, find_source, working_dir
from kernels.runtime.prompts import get_prompt
from kernels.runtime.scoring import SCORE_TOKENS, finite_or_none, predict_test_set, resolve_threshold, score_on_devices, val_metrics, write_val_predictions
from kernels.runtime.training import TrainState, find_resume_point, make_optimizer, make_scheduler, phase_length, plan_phase, prepare_for_training, restore_optimizer, save_checkpoint, save_training, stop_on_bad_loss, training_engine, train_step


def micro_batches(order_for_epoch, start: int):
    """Endless micro-batches (lists of row positions) over epochs, skipping the first `start` (a resumed phase)."""
    epoch, seen = 0, 0
    while True:
        for rows in order_for_epoch(epoch):
            if seen >= start:
                yield rows
            seen += 1
        epoch += 1


def main(config: dict, worker_command: list[str] | None = None) -> dict:
    """Run the train kernel with `config` (the CONFIG dict kit build writes); returns the metrics it wrote.

    With several training processes (train_processes), this is also what each worker runs (started by the first
    with `worker_command`, default: this script again): the same steps on its share of the rows, and no outputs.
    """
    started = time.time()
    quiet_progress_bars()
    if RANK_ENV not in os.environ:  # workers start after the first process installed everything
        install_pinned(config["engine"])  # before anything imports torch or transformers
    out = working_dir()
    use_model_source(config["model"])  # before unsloth or transformers is imported
    processes = training_processes(config["train_processes"])
    if processes > 1 and RANK_ENV not in os.environ:
        resolve_model(config["model"])  # converted once, by this process, before the workers read it
    group = join_group(processes, config, worker_command)
    log(f"kit train kernel: model={config['model']} prompt={config['prompt']} train_rows={config['train_rows']} "
        f"val_rows={config['val_rows']} output={out}")
    engine = training_engine(config)
    import torch

    dtype = choose_dtype(config["dtype"])
    gpu = torch.cuda.is_available()
    device = "cuda:0" if gpu else "cpu"
    torch.manual_seed(config["seed"])
    log(f"engine={engine} dtype={dtype_name(dtype)} device={device} gpus={gpu_names() or 'none'}")
    if gpu and torch.cuda.device_count() > group.world:
        # Training on every GPU (train_processes=0) is not the default yet: it has run on the CPU only (gloo).
        log(f"training on {group.world} of {torch.cuda.device_count()} GPUs (train_processes=0 trains on all, one process each); "
            f"all of them share validation and test scoring")

    # ---- data
    comp = competition_dir(config["competition"])
    train_table = read_table(comp / "train.csv")
    all_labels = [parse_label(v) for v in train_table["is_correct"]]
    resume_point = None
    previous = None
    if config["resume_from"]:
        source = find_source(config["resume_from"])
        resume_point = find_resume_point(source)
        if resume_point is None:
            raise FileNotFoundError(f"no adapter or checkpoint in the output of {config['resume_from']} ({source})")
        previous = TrainState.load(resume_point) if (resume_point / "train_state.json").is_file() else TrainState(complete=True)
        log(f"resuming from {resume_point}: phase {previous.phase}, global step {previous.global_step}, "
            f"{'finished' if previous.complete else f'interrupted at phase step {previous.phase_step}'}")
    split = split_rows(
        all_labels, val_rows=config["val_rows"], val_seed=config["val_seed"], train_rows=config["train_rows"],
        seed=config["seed"], balance=config["balance"], offset=config["data_offset"],
    )
    if not split.train:
        raise ValueError(f"no training rows left after data_offset={config['data_offset']} ({split.available} available)")
    if config["train_rows"] and len(split.train) < config["train_rows"]:
        warn(f"only {len(split.train)} training rows available (train_rows={config['train_rows']})")
    if previous is not None and previous.complete and previous.seed == config["seed"] and config["data_offset"] < previous.next_offset:
        warn(f"this phase trains again on rows the previous phase saw; data_offset={previous.next_offset} gives fresh rows")
    log(f"rows: {len(split.train)} training ({sum(all_labels[i] for i in split.train)} True), {len(split.val)} validation, "
        f"data_offset={config['data_offset']} -> next phase data_offset={split.next_offset}")

    # ---- model and encoding
    model, tokenizer = load_base_model(
        config["model"], engine=engine, dtype=dtype, load_in_4bit=config["load_in_4bit"], max_seq_length=config["max_seq_length"]
    )
    template = get_prompt(config["prompt"])
    true_id, false_id = label_token_ids(tokenizer, template)
    column = lambda name, rows: [train_table[name].iat[i] for i in rows]  # noqa: E731
    sequences = encode_prompts(
        tokenizer, template, column("question", split.train), column("answer", split.train), column("solution", split.train),
        config["max_seq_length"],
    )
    train_labels = [all_labels[i] for i in split.train]
    label_ids = [true_id if y else false_id for y in train_labels]
    lengths = [len(s) + (0 if config["completion_only"] else 1) for s in sequences]
    log(f"prompt tokens: mean {sum(lengths) / len(lengths):.0f}, max {max(lengths)}; label tokens True={true_id} False={false_id}")
    packed = choose_packing(config["packing"], engine)
    if config["packing"] == "on" and not packed:
        warn("packing is not supported with engine=unsloth (its attention ignores row boundaries); using length-grouped batches")
    if packed:
        log(f"packed rows: {use_packed_attention(model, device)}")
    if engine != "unsloth":
        for message in fast_path_warnings(config["lora_dropout"], config["lora_bias"]):
            log(f"note: {message} (only matters with engine=unsloth)")

    def order_for_epoch(epoch: int):
        return training_order(lengths, config["batch_size"], config["group_by_length"] and not packed, config["seed"] + epoch)

    multiple = 1 if packed else pad_multiple(engine)
    model, plan, compiled = prepare_for_training(model, config, engine=engine, dtype=dtype, longest_row=padded_width(max(lengths), multiple))
    checkpointing, chunk_tokens = plan.checkpointing, plan.chunk_tokens
    if resume_point is not None:
        check_adapter_matches(resume_point / "adapter", config)
        load_adapter_weights(model, resume_point / "adapter")
    trainable = [p for p in model.parameters() if p.requires_grad]
    broadcast_trainable(trainable, group)
    share = StepShare(group, lengths, [1 if config["completion_only"] else len(s) for s in sequences]) if group.world > 1 else None
    log(f"trainable parameters: {sum(p.numel() for p in trainable):,}")

    # ---- steps
    phase_steps = phase_length(len(sequences), config["batch_size"], config["grad_accum"], config["max_steps"], config["epochs"])
    state = plan_phase(previous, phase_steps, seed=config["seed"], data_offset=config["data_offset"], next_offset=split.next_offset)
    optimizer = make_optimizer(trainable, config["optim"], config["learning_rate"], config["weight_decay"])
    scheduler = make_scheduler(optimizer, config["lr_scheduler"], config["warmup_steps"], phase_steps)
    if resume_point is not None and restore_optimizer(resume_point, optimizer, scheduler, same_phase=not previous.complete):
        log("optimizer state restored" + ("" if previous.complete else " with the schedule"))
    if state.phase_step >= phase_steps:
        log(f"phase already complete ({state.phase_step}/{phase_steps} steps)")
    scaler = torch.amp.GradScaler("cuda", enabled=gpu and dtype == torch.float16)
    autocast = lambda: torch.autocast("cuda", dtype=dtype, enabled=gpu and dtype != torch.float32)  # noqa: E731
    stream = micro_batches(order_for_epoch, state.phase_step * config["grad_accum"])
    make_batch = lambda rows: collate(  # noqa: E731
        [sequences[r] for r in rows], tokenizer.pad_token_id, label_ids=[label_ids[r] for r in rows],
        completion_only=config["completion_only"], packed=packed, pad_to_multiple=multiple, device=device,
    )
    steps_log: list[dict] = []
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    log(f"training: phase {state.phase}, steps {state.phase_step + 1}..{phase_steps} of this phase "
        f"(global {state.global_step + 1}..{state.global_start + phase_steps}), batch {config['batch_size']} x {config['grad_accum']}, "
        f"gradient checkpointing {'on' if checkpointing else 'off'}, packing {'on' if packed else 'off'}")
    model.train()
    train_started = time.time()
    train_tokens = 0
    last_read = train_started
    unread: list = []  # the last step: its loss still on the GPU, read only once the next step is queued

    def settle() -> None:
        """Read the unread step's loss (waiting for that step alone: the GPU has the next one queued, so it never
        idles while Python logs), log it, and stop on a loss that is not finite."""
        nonlocal last_read
        loss_sum, record = unread.pop()
        loss_value = float(loss_sum)
        now = time.time()
        if not math.isfinite(loss_value):
            if not group.leader:
                raise FloatingPointError(f"loss is {loss_value} at global step {record['step']}")
            stop_on_bad_loss(out, loss_value, record, state.phase, steps_log, now - started)
        record.update(loss=round(loss_value, 5), tokens_per_s=round(record["tokens"] / max(now - last_read, 1e-9), 1),
                      elapsed_s=round(now - train_started, 2))
        last_read = now
        steps_log.append(record)
        if group.leader and (record["phase_step"] == 1 or record["phase_step"] % config["logging_steps"] == 0 or record["phase_step"] == phase_steps):
            log(f"step {record['phase_step']}/{phase_steps} (global {record['step']}) loss {loss_value:.4f} lr {record['lr']:.2e} "
                f"tokens/s {record['tokens_per_s']:.0f} elapsed {record['elapsed_s']:.1f}s")

    while state.phase_step < phase_steps:
        loss_sum, tokens = train_step(
            model, [next(stream) for _ in range(config["grad_accum"])], make_batch,
            lambda rows: split_by_tokens(rows, lengths, chunk_tokens, multiple, packed), optimizer=optimizer, scaler=scaler,
            trainable=trainable, max_grad_norm=config["max_grad_norm"], autocast=autocast, share=share,
        )
        lr = scheduler.get_last_lr()[0]
        scheduler.step()
        state.phase_step += 1
        state.global_step += 1
        train_tokens += tokens
        if unread:
            settle()
        unread.append((loss_sum, {"step": state.global_step, "phase_step": state.phase_step, "lr": lr, "tokens": tokens}))
        if config["save_steps"] and state.phase_step % config["save_steps"] == 0 and state.phase_step < phase_steps:
            settle()  # a checkpoint holds only steps whose loss was finite
            if group.leader:
                save_checkpoint(out, model, optimizer, scheduler, state)
    if unread:
        settle()
    train_seconds = time.time() - train_started
    if not group.leader:
        group.finish()
        return {}
    state.complete = True
    save_training(out, model, optimizer, scheduler, state)
    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    tokenizer.save_pretrained(str(out / "adapter"))
    peak = torch.cuda.max_memory_allocated() / 2**30 if gpu else None
    log(f"trained {len(steps_log)} steps in {train_seconds:.1f}s ({train_tokens / max(train_seconds, 1e-9):.0f} tokens/s); adapter saved")

    group.finish()

    # ---- validation and test
    del optimizer, scheduler
    if compiled:
        uncompile_layers(model)
    if gpu:
        torch.cuda.empty_cache()
    fuse = config["fuse_projections"] and engine == "hf"
    log(f"scoring model: {prepare_for_scoring(model, dtype=dtype, setting=config['dequantize_base'], fuse=fuse)}")
    models, devices = [model], [device]
    if gpu and torch.cuda.device_count() > 1 and (split.val or config["predict_test"]):
        for k in range(1, torch.cuda.device_count()):
            extra, _ = load_for_scoring(
                config["model"], out / "adapter", engine="hf", dtype=dtype, load_in_4bit=config["load_in_4bit"],
                max_seq_length=config["max_seq_length"], device=k, dequantize=config["dequantize_base"], packed=packed,
                fuse=config["fuse_projections"],
            )
            models.append(extra)
            devices.append(f"cuda:{k}")
        log(f"scoring on {len(models)} GPUs")
    score = lambda seqs, labels=None: score_on_devices(  # noqa: E731
        models, devices, seqs, true_id, false_id, tokenizer.pad_token_id, batch_size=config["batch_size"], labels=labels,
        autocast_dtype=dtype if gpu and dtype != torch.float32 else None, max_tokens=SCORE_TOKENS if gpu else 0,
        multiple=pad_multiple(engine), packed=packed,
    )
    metrics: dict = {}
    threshold = 0.5
    if split.val and not skip_validation(config["threshold"]):
        val_started = time.time()
        val_labels = [all_labels[i] for i in split.val]
        val_sequences = encode_prompts(
            tokenizer, template, column("question", split.val), column("answer", split.val), column("solution", split.val),
            config["max_seq_length"],
        )
        val_scores = score(val_sequences, val_labels)
        threshold = resolve_threshold(config["threshold"], val_scores.prob_true, val_labels)
        write_val_predictions(out, split.val, val_labels, val_scores.prob_true)
        metrics.update(val_metrics(val_scores, val_labels, threshold))
        metrics["val_seconds"] = round(time.time() - val_started, 2)
        log(f"validation: accuracy {metrics['val_accuracy']:.4f} (threshold {threshold:.3f}), loss {metrics['val_loss']:.4f}, "
            f"{len(split.val)} rows in {metrics['val_seconds']:.1f}s")
    else:
        threshold = resolve_threshold(config["threshold"], [], [])
    if config["predict_test"]:
        metrics.update(predict_test_set(comp, tokenizer, template, config, score, out, threshold))

    # ---- records
    metrics.update({
        "engine": engine, "dtype": dtype_name(dtype), "gpu": gpu_names(), "gpu_count": len(gpu_names()),
        "gradient_checkpointing": checkpointing, "dequantized_base": plan.dequantize, "compiled": compiled, "packing": packed, "train_processes": group.world,
        "train_rows": len(split.train), "train_true_rows": sum(train_labels), "data_offset": config["data_offset"],
        "next_data_offset": split.next_offset, "phase": state.phase, "phase_steps": phase_steps, "global_step": state.global_step,
        "steps_this_run": len(steps_log), "train_seconds": round(train_seconds, 2),
        "train_tokens": train_tokens, "train_tokens_per_s": round(train_tokens / max(train_seconds, 1e-9), 1),
        "train_loss_last": (sum(s["loss"] for s in steps_log[-10:]) / len(steps_log[-10:])) if steps_log else None,
        "peak_memory_gib": None if peak is None else round(peak, 3), "wall_seconds": round(time.time() - started, 2),
        "steps": steps_log,
    })
    metrics = {k: finite_or_none(v) for k, v in metrics.items()}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    effective = {**config, "engine": engine, "dtype": dtype_name(dtype), "gradient_checkpointing": "on" if checkpointing else "off",
                 "compile": "on" if compiled else "off",
                 "packing": packed, "threshold_used": threshold}
    (out / "config.json").write_text(json.dumps(effective, indent=1))
    log(f"done in {metrics['wall_seconds']:.1f}s; outputs in {out}")
    return metrics
