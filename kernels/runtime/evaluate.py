"""The scoring stages, shared by the train and infer kernels: the models that score, then validate, then predict.

    scorer = scoring_models(run, config, task, prompt, rows, adapter_dir)  # -> Scorer: one model per planned GPU
    metrics, rule = validate(run, config, rows, scorer)    # val_predictions.csv, the metric, the rule tuned on it
    metrics |= predict(run, config, scorer, rule)          # the submission, test_probs.csv
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from runtime.data import Rows, read_table
from runtime.environment import log
from runtime.labels import LabelTokens, choose_label_tokens
from runtime.modeling import load_for_scoring, prepare_for_scoring, uncompile_layers
from runtime.paths import competition_dir, find_source
from runtime.plan import pad_multiple
from runtime.prompts import PromptTemplate, get_prompt, task_template
from runtime.scoring import Scores, predict_test_set, score_on_devices, val_metrics, write_val_predictions
from runtime.session import Run
from runtime.task import Rule, Task, fit_rule


def kernel_prompt(task: Task, prompt: str) -> PromptTemplate:
    """The template a task is prompted with: its own, or (a task without one: the binary is_correct task) the named
    template of the `prompt` setting."""
    return task_template(task.prompt, task.shorten) if task.prompt else get_prompt(prompt)


def label_check_rows(task: Task, fields, rows: Rows | None, config: dict, n: int = 8) -> list[dict]:
    """A few rows to check the label tokens on: the train file's first, else the test file's (the infer kernel of
    a competition without labelled rows)."""
    if rows is not None:
        return rows.records(list(range(min(n, len(rows.labels)))), fields)
    table = read_table(competition_dir(config["competition"], task.test) / task.test).head(n)
    return [{name: table[name].iat[i] for name in fields} for i in range(len(table))]


def label_tokens(tokenizer, task: Task, prompt: str, rows: Rows | None, config: dict) -> LabelTokens:
    """The label tokens of the task's classes and the template that asks for them (with codes where needed), logged."""
    template = kernel_prompt(task, prompt)
    labels = choose_label_tokens(tokenizer, template, task.classes(), label_check_rows(task, template.fields(), rows, config))
    log(labels.describe())
    return labels


@dataclass
class Scorer:
    """The models that score side by side (one per GPU), their tokenizer, the task and its classes' label tokens."""

    run: Run
    config: dict
    models: list
    devices: list
    tokenizer: object
    task: Task
    labels: LabelTokens

    @property
    def template(self) -> PromptTemplate:
        return self.labels.template

    def __call__(self, sequences, labels=None) -> Scores:
        """Each class's probability (and the loss where `labels`, class indices) of each sequence of token ids."""
        import torch

        plan, dtype = self.run.plan, self.run.dtype
        return score_on_devices(
            self.models, self.devices, sequences, self.labels.token_ids, self.tokenizer.pad_token_id, batch_size=self.config["batch_size"],
            labels=labels, autocast_dtype=dtype if self.run.gpu and dtype != torch.float32 else None,
            max_tokens=plan.score_tokens.value, multiple=pad_multiple(plan.engine.value), packed=plan.packing.value,
        )


def scoring_models(run: Run, config: dict, task: Task, prompt: str, rows: Rows | None, adapter_dir: Path | None, trained=None,
                   tokenizer=None, labels: LabelTokens | None = None) -> Scorer:
    """The planned scoring models: `trained` (the train kernel's model, made fast to score) on the first GPU, and
    the base with `adapter_dir` loaded on each other planned GPU (on every one in the infer kernel). The label
    tokens are `labels` (those the model trained on), else chosen here (the same choice: it depends only on the
    tokenizer, the prompt and the classes)."""
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
    return Scorer(run, config, models, devices, tokenizer, task, labels or label_tokens(tokenizer, task, prompt, rows, config))


def no_validation_rule(config: dict, task: Task) -> Rule:
    """The rule where no validation rows were scored: the one the adapter's train run tuned (its metrics.json),
    else the untuned one (the threshold setting, temperature 1, cut points between the classes). A threshold set
    to a number is that number."""
    import numpy as np

    untuned = fit_rule(task, [], np.zeros((0, len(task.classes()))), threshold=config["threshold"])
    if untuned.name == "threshold" and str(config["threshold"]) != "tune":
        return untuned
    if config.get("adapter_run"):
        try:
            saved = json.loads((find_source(config["adapter_run"]) / "metrics.json").read_text()).get("rule")
        except (FileNotFoundError, OSError, ValueError):
            saved = None
        if saved:
            log(f"decision rule of {config['adapter_run']}: {saved}")
            return Rule.from_dict(saved)
    return untuned


def validate(run: Run, config: dict, rows: Rows | None, scorer: Scorer) -> tuple[dict, Rule]:
    """Score the shared validation rows where the plan says so, write val_predictions.csv; returns (the val_*
    metrics: the competition's metric among them, the decision rule tuned on them)."""
    task = scorer.task
    if rows is None or not rows.split.val or not run.plan.validation.value:
        if config["val_rows"] and not run.plan.validation.value:
            log(run.plan.validation.reason)
        return {}, no_validation_rule(config, task)
    started = time.time()
    labels = [rows.labels[i] for i in rows.split.val]
    scores = scorer(rows.encode(scorer.tokenizer, scorer.template, rows.split.val, config["max_seq_length"]), labels)
    classes = task.classes()
    groups = rows.table[task.group].iloc[rows.split.val].tolist() if task.group else None
    rule = fit_rule(task, [classes[y] for y in labels], scores.probs, threshold=config["threshold"])
    write_val_predictions(run.out, task, rows.split.val, labels, scores.probs)
    metrics = val_metrics(task, scores, labels, rule, groups)
    metrics["val_seconds"] = round(time.time() - started, 2)
    log(f"validation: {task.metric} {metrics['val_metric']:.4f} ({describe_rule(rule)}; {metrics['baseline']}: {metrics['val_baseline']:.4f}), "
        f"loss {metrics['val_loss']:.4f}, {len(rows.split.val)} rows in {metrics['val_seconds']:.1f}s")
    return metrics, rule


def describe_rule(rule: Rule) -> str:
    """The decision rule in a few words."""
    if rule.name == "threshold":
        return f"threshold {rule.threshold:.3f}"
    if rule.name == "temperature":
        return f"temperature {rule.temperature:.3f}"
    if rule.name == "cut_points":
        return "cut points " + ", ".join(f"{c:.2f}" for c in rule.cuts)
    return {"top_k": "the top k, best first", "identity": "the probabilities as they are"}.get(rule.name, "the most probable class")


def predict(run: Run, config: dict, scorer: Scorer, rule: Rule) -> dict:
    """Score the test file as planned (every row, or the first test_rows), write the submission and test_probs.csv."""
    if not config.get("predict_test", True):
        return {}
    decision = run.plan.test_rows
    task = scorer.task
    return predict_test_set(competition_dir(config["competition"], task.test), scorer.tokenizer, scorer.template, task, config, scorer,
                            run.out, rule, test_rows=decision.value, note=decision.reason)
