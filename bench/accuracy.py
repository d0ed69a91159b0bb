"""How accurate kit's default is against the peers on the practice competition (SmolLM2-135M's real weights).

    python bench/accuracy.py baseline [--rows N]                # no GPU: the validation rows' majority class and the
                                                                 # best constant's loss (what learning nothing scores)
    python bench/accuracy.py kit [--seed S] [--rows N] [KEY=VALUE...]   # kit's train kernel as a user runs it
    python bench/accuracy.py trl|unsloth [--seed S] [--rows N]  # a peer trained on the kernel's own rows (same split,
                                                                 # prompt, encoding, hyperparameters), scored on the
                                                                 # same validation rows by kit's scoring
    python bench/accuracy.py table [FILE...]                    # per trainer: the seeds' median and range

The practice competition: 20,000 train / 2,000 test rows, seed 0; N training rows (default 8,000, the practice
default), the workspace's fixed 500 validation rows. Every trainer is read the same way: validation loss (the mean
label-token loss), AUC (scikit-learn, threshold-free) and accuracy at 0.5 (kit's default threshold; no trainer's
threshold is tuned on the rows it is read on). --seed sets the training seed (row order, LoRA init); the
validation rows stay the same. The protocol asks for 3 seeds a trainer. Records go to $OUT/accuracy.json. On the
device machine run it through bench/device.sh, which rebuilds the bundled GGUF from its parts.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import common
from common import SMOLLM2, guarded, record

ROOT_NAME = "learn"


def auc(prob_true: list[float], labels: list[bool]) -> float | None:
    from sklearn.metrics import roc_auc_score

    return round(float(roc_auc_score(labels, prob_true)), 4) if len(set(labels)) == 2 else None


def settings_for(rows: int, seed: int, extra: dict | None = None) -> dict:
    return {"competition": "practice-math", "model": SMOLLM2, "train_rows": rows, "seed": seed, **(extra or {})}


def practice_rows(config: dict):
    """The train kernel's data stage (training_rows): the split, every row's class (0 = True), the task."""
    from runtime.data import load_task, training_rows

    return training_rows(config, load_task(config))


def read_scores(prob_true: list[float], positive: list[bool], nll: list[float] | None = None) -> dict:
    """What every trainer is read by: AUC, accuracy at 0.5, and the mean label-token loss where given."""
    figures = {"val_auc": auc(prob_true, positive), "val_accuracy_at_0.5": round(sum((p >= 0.5) == y for p, y in zip(prob_true, positive)) / len(positive), 4)}
    if nll:
        figures["val_loss"] = sum(nll) / len(nll)
    return figures


def baseline(rows: int) -> None:
    """What learning nothing scores on the validation rows: always the majority class, and the best constant P(True)."""
    from kit.workspace.kernel_config import make_config, script_settings

    root = common.kaggle_tree(ROOT_NAME, 20000, 2000, seed=0)
    os.environ["KIT_KAGGLE_ROOT"] = str(root)
    config = script_settings(make_config("train", settings_for(rows, 0)))
    data = practice_rows(config)
    val = [data.labels[i] == 0 for i in data.split.val]
    train = [data.labels[i] == 0 for i in data.split.train]
    p = sum(val) / len(val)
    record("accuracy", {"what": "baseline: learning nothing", "trainer": "baseline", "val_rows": len(val), "val_true_rate": round(p, 4),
                        "majority_accuracy": round(max(p, 1 - p), 4),
                        "best_constant_loss": round(-(p * math.log(p) + (1 - p) * math.log(1 - p)), 4),
                        "train_true_rate": round(sum(train) / len(train), 4), "train_rows": len(train)})


def kit_run(rows: int, seed: int, overrides: dict) -> None:
    import csv

    root = common.kaggle_tree(ROOT_NAME, 20000, 2000, seed=0)
    label = f"accuracy-kit-{rows}-seed{seed}"
    result = common.run_kernel("train", settings_for(rows, seed, overrides), root, label)
    predictions = root / "working" / "val_predictions.csv"
    figures = {}
    if predictions.is_file():
        got = list(csv.DictReader(open(predictions)))
        figures = read_scores([float(r["prob_true"]) for r in got], [r["is_correct"] == "True" for r in got])
    keep = ("rc", "seconds", "train_seconds", "train_tokens_per_s", "val_accuracy", "val_loss", "val_true_rate", "threshold", "train_rows",
            "cuda_graphs", "compiled", "engine", "error")
    record("accuracy", {"what": "kit default (train kernel)" + (f" {overrides}" if overrides else ""), "trainer": "kit", "seed": seed,
                        "rows": rows, "private_accuracy": common.private_accuracy(root, ROOT_NAME),
                        **{k: v for k, v in result.items() if k in keep}, **figures, "losses": result.get("losses", [])[::10]})


def peer_run(trainer: str, rows: int, seed: int) -> None:
    """A peer on the train kernel's rows (kit's split, prompt, encoding and defaults), scored by kit's scoring."""
    if trainer == "unsloth":
        import unsloth  # noqa: F401  (first: it patches transformers and trl)
    import torch
    from kit.workspace.kernel_config import make_config, script_settings

    from peers.harness import trl_dataset_rows
    from runtime.evaluate import label_tokens
    from runtime.modeling import resolve_model
    from runtime.scoring import score_sequences

    root = common.kaggle_tree(ROOT_NAME, 20000, 2000, seed=0)
    os.environ["KIT_KAGGLE_ROOT"] = str(root)
    config = script_settings(make_config("train", settings_for(rows, seed)))
    data = practice_rows(config)
    path = resolve_model(config["model"])
    started = time.time()
    if trainer == "unsloth":
        from unsloth import FastLanguageModel

        model, tokenizer = FastLanguageModel.from_pretrained(path, max_seq_length=config["max_seq_length"], dtype=torch.bfloat16, load_in_4bit=False)
        model = FastLanguageModel.get_peft_model(model, r=config["r"], lora_alpha=config["lora_alpha"], lora_dropout=0, bias="none",
                                                 target_modules=common.TARGETS, use_gradient_checkpointing=False, random_state=seed)
        peft_config = None
    else:
        from peft import LoraConfig
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16, device_map={"": 0})
        peft_config = LoraConfig(r=config["r"], lora_alpha=config["lora_alpha"], lora_dropout=0.0, bias="none", task_type="CAUSAL_LM",
                                 target_modules=common.TARGETS)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    labels = label_tokens(tokenizer, data.task, config["prompt"], data, config)  # the train kernel's label tokens and template
    train_seqs = data.encode(tokenizer, labels.template, data.split.train, config["max_seq_length"])
    val_seqs = data.encode(tokenizer, labels.template, data.split.val, config["max_seq_length"])
    train_ids = [labels.token_ids[data.labels[i]] for i in data.split.train]
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    dataset = Dataset.from_dict(trl_dataset_rows(train_seqs, train_ids))
    args = SFTConfig(output_dir="/tmp/trl-acc", per_device_train_batch_size=config["batch_size"], gradient_accumulation_steps=config["grad_accum"],
                     num_train_epochs=config["epochs"], learning_rate=config["learning_rate"], lr_scheduler_type=config["lr_scheduler"],
                     warmup_steps=config["warmup_steps"], weight_decay=config["weight_decay"], max_grad_norm=config["max_grad_norm"], bf16=True,
                     optim="adamw_torch_fused", logging_steps=50, save_strategy="no", report_to="none", seed=seed,
                     gradient_checkpointing=False, max_length=None, completion_only_loss=True, padding_free=True, dataloader_num_workers=0)
    sft = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=peft_config)
    train_started = time.time()
    sft.train()
    train_s = time.time() - train_started
    val_labels = [data.labels[i] for i in data.split.val]
    scores = score_sequences(sft.model, val_seqs, labels.token_ids, tokenizer.pad_token_id, batch_size=config["batch_size"], labels=val_labels,
                             device="cuda:0", autocast_dtype=torch.bfloat16, max_tokens=16384, multiple=8)
    figures = read_scores(scores.prob_true, [y == 0 for y in val_labels], [x for x in scores.nll if x is not None])
    name = "unsloth + trl SFTTrainer" if trainer == "unsloth" else "transformers + peft + trl SFTTrainer"
    record("accuracy", {"what": f"{name} (padding-free, completion-only)", "trainer": trainer, "seed": seed, "rows": rows,
                        "train_rows": len(data.split.train), "train_seconds": round(train_s, 1), "seconds": round(time.time() - started, 1),
                        **figures,
                        "losses": [h["loss"] for h in sft.state.log_history if "loss" in h]})


def table(paths: list[Path]) -> str:
    """Markdown: per trainer and row count, each figure's median [range] over its seeds, and the baseline beside."""
    entries = [e for p in paths for e in json.loads(p.read_text()) if "error" not in e]
    lines = ["| trainer | train rows | seeds | val loss | AUC | accuracy at 0.5 | private accuracy | train s |", "|---|---:|---:|---:|---:|---:|---:|---:|"]

    def cell(values):
        values = [v for v in values if v is not None]
        if not values:
            return ""
        s = common.summary(values)
        return f"{s['median']:.4f} [{min(values):.4f}-{max(values):.4f}]" if len(values) > 1 else f"{values[0]:.4f}"

    for e in entries:
        if e["trainer"] == "baseline":
            lines.append(f"| learning nothing (majority class / best constant) | {e['train_rows']} | | {e['best_constant_loss']:.4f} | 0.5 | "
                         f"{e['majority_accuracy']:.4f} | | |")
    for trainer, rows in dict.fromkeys((e["trainer"], e.get("rows")) for e in entries if e["trainer"] != "baseline"):
        group = [e for e in entries if e["trainer"] == trainer and e.get("rows") == rows]
        lines.append(f"| {group[0]['what']} | {rows} | {', '.join(str(e.get('seed')) for e in group)} | {cell([e.get('val_loss') for e in group])} | "
                     f"{cell([e.get('val_auc') for e in group])} | {cell([e.get('val_accuracy_at_0.5') for e in group])} | "
                     f"{cell([e.get('private_accuracy') for e in group])} | {cell([e.get('train_seconds') for e in group])} |")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["baseline", "kit", "trl", "unsloth", "table"])
    parser.add_argument("rest", nargs="*", help="kit: KEY=VALUE settings; table: record files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rows", type=int, default=8000)
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.mode == "baseline":
        baseline(args.rows)
    elif args.mode == "kit":
        kit_run(args.rows, args.seed, dict(item.split("=", 1) for item in args.rest))
    elif args.mode in ("trl", "unsloth"):
        guarded("accuracy", f"accuracy {args.mode}", lambda: peer_run(args.mode, args.rows, args.seed), trainer=args.mode, seed=args.seed)
    else:
        print(table([Path(p) for p in args.rest] or [common.OUT / "accuracy.json"]))
