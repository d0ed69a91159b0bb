"""The scoring stages, shared by the train and infer kernels: the models that score, then validate, then predict.

    scorer = scoring_models(run, config, prompt, adapter_dir, trained=None)  # -> Scorer: one model per planned GPU
    metrics, threshold = validate(run, config, rows, scorer)                 # val_predictions.csv, val_* metrics
    metrics |= predict(run, config, scorer, threshold)                       # submission.csv, test_probs.csv
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from runtime.data import Rows, label_token_ids
from runtime.environment import log
from runtime.modeling import load_for_scoring, prepare_for_scoring, uncompile_layers
from runtime.paths import competition_dir
from runtime.plan import pad_multiple
from runtime.prompts import PromptTemplate, get_prompt
from runtime.scoring import Scores, predict_test_set, resolve_threshold, score_on_devices, val_metrics, write_val_predictions
from runtime.session import Run


@dataclass
class Scorer:
    """The models that score side by side (one per GPU), their tokenizer and the prompt's label tokens."""

    run: Run
    config: dict
    models: list
    devices: list
    tokenizer: object
    template: PromptTemplate

    def __call__(self, sequences, labels=None) -> Scores:
        """P(True) (and the loss where `labels`) of each sequence of token ids."""
        import torch

        plan, dtype = self.run.plan, self.run.dtype
        true_id, false_id = label_token_ids(self.tokenizer, self.template)
        return score_on_devices(
            self.models, self.devices, sequences, true_id, false_id, self.tokenizer.pad_token_id, batch_size=self.config["batch_size"],
            labels=labels, autocast_dtype=dtype if self.run.gpu and dtype != torch.float32 else None,
            max_tokens=plan.score_tokens.value, multiple=pad_multiple(plan.engine.value), packed=plan.packing.value,
        )


def scoring_models(run: Run, config: dict, prompt: str, adapter_dir: Path | None, trained=None, tokenizer=None) -> Scorer:
    """The planned scoring models: `trained` (the train kernel's model, made fast to score) on the first GPU, and
    the base with `adapter_dir` loaded on each other planned GPU (on every one in the infer kernel)."""
    import torch

    plan = run.plan
    models, devices = [], []
    if trained is not None:
        if plan.compile.value:
            uncompile_layers(trained)
        if run.gpu:
            torch.cuda.empty_cache()
        fuse = plan.fuse_projections.value
        log(f"scoring model: {prepare_for_scoring(trained, dtype=run.dtype, setting=config['dequantize_base'], fuse=fuse)}")
        models, devices = [trained], [run.device]
    for k, engine in enumerate(plan.scoring_engines.value):
        if k < len(models):
            continue
        model, tok = load_for_scoring(
            config["model"], adapter_dir, engine=engine, dtype=run.dtype, quantize=plan.load_in_4bit.value,
            max_seq_length=config["max_seq_length"], device=k, dequantize=config["dequantize_base"], packed=plan.packing.value,
            flash=plan.attention.value == "flash varlen", fuse=config["fuse_projections"],
        )
        models.append(model)
        devices.append(f"cuda:{k}" if run.gpu else "cpu")
        tokenizer = tokenizer or tok
    if len(models) > 1:
        log(f"scoring on {len(models)} GPUs")
    return Scorer(run, config, models, devices, tokenizer, get_prompt(prompt))


def validate(run: Run, config: dict, rows: Rows | None, scorer: Scorer) -> tuple[dict, float]:
    """Score the shared validation rows where the plan says so, write val_predictions.csv; returns (the val_*
    metrics, the threshold: tuned on them when threshold=tune)."""
    if rows is None or not rows.split.val or not run.plan.validation.value:
        if config["val_rows"] and not run.plan.validation.value:
            log(run.plan.validation.reason)
        return {}, resolve_threshold(config["threshold"], [], [])
    started = time.time()
    labels = [rows.labels[i] for i in rows.split.val]
    scores = scorer(rows.encode(scorer.tokenizer, scorer.template, rows.split.val, config["max_seq_length"]), labels)
    threshold = resolve_threshold(config["threshold"], scores.prob_true, labels)
    write_val_predictions(run.out, rows.split.val, labels, scores.prob_true)
    metrics = val_metrics(scores, labels, threshold)
    metrics["val_seconds"] = round(time.time() - started, 2)
    log(f"validation: accuracy {metrics['val_accuracy']:.4f} (threshold {threshold:.3f}), loss {metrics['val_loss']:.4f}, "
        f"{len(rows.split.val)} rows in {metrics['val_seconds']:.1f}s")
    return metrics, threshold


def predict(run: Run, config: dict, scorer: Scorer, threshold: float) -> dict:
    """Score test.csv as planned (every row, or the first test_rows), write submission.csv and test_probs.csv."""
    if not config.get("predict_test", True):
        return {}
    decision = run.plan.test_rows
    return predict_test_set(competition_dir(config["competition"]), scorer.tokenizer, scorer.template, config, scorer, run.out,
                            threshold, test_rows=decision.value, note=decision.reason)
