"""The inference kernel: score the test set (and the shared validation rows) with a base model and a saved adapter."""

from __future__ import annotations

import json
import time

from kernels.runtime.attention import choose_packing
from kernels.runtime.data import encode_prompts, label_token_ids, pad_multiple, parse_label, read_table, split_rows
from kernels.runtime.environment import choose_dtype, choose_engine, dtype_name, gpu_names, log, quiet_progress_bars, skip_validation, warn
from kernels.runtime.install import install_pinned
from kernels.runtime.modeling import load_for_scoring, use_model_source
from kernels.runtime.paths import competition_dir, find_source, working_dir
from kernels.runtime.prompts import get_prompt
from kernels.runtime.scoring import SCORE_TOKENS, finite_or_none, predict_test_set, resolve_threshold, score_on_devices, val_metrics, write_val_predictions


def adapter_settings(config: dict):
    """The adapter folder of config['adapter_run'] (None for the base model) and the prompt it was trained with."""
    if not config["adapter_run"]:
        return None, config["prompt"]
    source = find_source(config["adapter_run"])
    adapter_dir = source / "adapter"
    if not (adapter_dir / "adapter_config.json").is_file():
        raise FileNotFoundError(f"no adapter/ in the output of {config['adapter_run']} ({source})")
    prompt = config["prompt"]
    trained = source / "config.json"
    if trained.is_file():
        trained_prompt = json.loads(trained.read_text()).get("prompt", prompt)
        if trained_prompt != prompt:
            warn(f"{config['adapter_run']} was trained with prompt={trained_prompt}; scoring with it, not prompt={prompt}")
            prompt = trained_prompt
    return adapter_dir, prompt


def main(config: dict) -> dict:
    """Run the inference kernel with `config`; returns the metrics it wrote."""
    started = time.time()
    quiet_progress_bars()
    install_pinned(config["engine"])  # before anything imports torch or transformers
    out = working_dir()
    use_model_source(config["model"])  # before unsloth or transformers is imported
    engine = choose_engine(config["engine"], prefer="unsloth")
    import torch

    dtype = choose_dtype(config["dtype"])
    gpu = torch.cuda.is_available()
    adapter_dir, prompt = adapter_settings(config)
    log(f"kit infer kernel: model={config['model']} adapter={adapter_dir or 'none (base model)'} prompt={prompt} "
        f"engine={engine} dtype={dtype_name(dtype)} gpus={gpu_names() or 'none'}")
    count = torch.cuda.device_count() if gpu else 1
    packed = choose_packing(config["packing"], engine)
    models, devices, tokenizer = [], [], None
    for k in range(count):
        # Extra GPUs load through transformers: unsloth's patched model assumes the first GPU.
        model, tok = load_for_scoring(
            config["model"], adapter_dir, engine=engine if k == 0 else "hf", dtype=dtype, load_in_4bit=config["load_in_4bit"],
            max_seq_length=config["max_seq_length"], device=k, dequantize=config["dequantize_base"], packed=packed,
            fuse=config["fuse_projections"],
        )
        models.append(model)
        devices.append(f"cuda:{k}" if gpu else "cpu")
        tokenizer = tokenizer or tok
    template = get_prompt(prompt)
    true_id, false_id = label_token_ids(tokenizer, template)
    score = lambda seqs, labels=None: score_on_devices(  # noqa: E731
        models, devices, seqs, true_id, false_id, tokenizer.pad_token_id, batch_size=config["batch_size"], labels=labels,
        autocast_dtype=dtype if gpu and dtype != torch.float32 else None, max_tokens=SCORE_TOKENS if gpu else 0,
        multiple=pad_multiple(engine), packed=packed,
    )
    comp = competition_dir(config["competition"])
    metrics: dict = {}
    val_labels, val_probs = [], []
    if config["val_rows"] and (comp / "train.csv").is_file() and not skip_validation(config["threshold"]):
        train_table = read_table(comp / "train.csv")
        labels = [parse_label(v) for v in train_table["is_correct"]]
        rows = split_rows(labels, val_rows=config["val_rows"], val_seed=config["val_seed"], train_rows=1, seed=0, balance=False).val
        val_labels = [labels[i] for i in rows]
        sequences = encode_prompts(
            tokenizer, template, [train_table["question"].iat[i] for i in rows], [train_table["answer"].iat[i] for i in rows],
            [train_table["solution"].iat[i] for i in rows], config["max_seq_length"],
        )
        val_scores = score(sequences, val_labels)
        val_probs = val_scores.prob_true
        write_val_predictions(out, rows, val_labels, val_probs)
    threshold = resolve_threshold(config["threshold"], val_probs, val_labels)
    if val_labels:
        metrics.update(val_metrics(val_scores, val_labels, threshold))
        log(f"validation: accuracy {metrics['val_accuracy']:.4f} (threshold {threshold:.3f}), loss {metrics['val_loss']:.4f}")
    metrics.update(predict_test_set(comp, tokenizer, template, config, score, out, threshold))
    metrics.update({
        "engine": engine, "dtype": dtype_name(dtype), "packing": packed, "gpu": gpu_names(), "gpu_count": len(gpu_names()), "prompt": prompt,
        "adapter_run": config["adapter_run"], "threshold": threshold,
        "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 3) if gpu else None,
        "wall_seconds": round(time.time() - started, 2),
    })
    metrics = {k: finite_or_none(v) for k, v in metrics.items()}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    (out / "config.json").write_text(json.dumps({**config, "engine": engine, "dtype": dtype_name(dtype), "prompt": prompt, "threshold_used": threshold}, indent=1))
    return metrics
