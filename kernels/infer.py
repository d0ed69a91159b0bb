"""kit inference kernel: score the test set with a base model and a train run's adapter, one forward pass a row.

Writes the task's submission, test_probs.csv, plan.json and, when labelled validation rows exist,
val_predictions.csv and metrics.json to the working folder. A generated-answer task samples completions and votes
instead; for an inference-server competition the kernel ends serving `predict` to the competition's gateway (on
its rerun) or running the local gateway on the visible test file, which writes the gateway's submission file.
"""

CONFIG: dict = {}  # kit:config (kit build writes the effective settings here, one per line)

from runtime.answering import answer_stage, generated_or_served  # noqa: E402  (the runtime below is inlined by kit build)
from runtime.data import known_classes, load_task, validation_rows  # noqa: E402
from runtime.environment import log  # noqa: E402
from runtime.evaluate import predict, scoring_models, validate  # noqa: E402
from runtime.modeling import adapter_settings  # noqa: E402
from runtime.outputs import run_metrics, task_metrics, write_outputs  # noqa: E402
from runtime.session import start_run  # noqa: E402


def main(config: dict) -> dict:
    """The recipe: start (install, plan) -> data -> model (one per planned GPU) -> validate -> predict -> outputs."""
    run = start_run(config, "infer")
    adapter_dir, prompt = adapter_settings(config)
    log(f"adapter={adapter_dir or 'none (base model)'} prompt={prompt}")
    if generated_or_served(load_task(config)):  # sampled answers, or predict for the competition's gateway (runtime/answering.py)
        metrics = {**run_metrics(run), **answer_stage(run, config, load_task(config), adapter_dir), "adapter_run": config["adapter_run"]}
        return write_outputs(run, metrics, {**config, "engine": run.plan.engine.value, "dtype": run.plan.dtype.value})
    rows = validation_rows(config, load_task(config))
    task = rows.task if rows is not None else known_classes(config, load_task(config))
    scorer = scoring_models(run, config, task, prompt, rows, adapter_dir)
    metrics, rule = validate(run, config, rows, scorer)
    metrics.update(predict(run, config, scorer, rule))
    metrics.update({
        **run_metrics(run), "prompt": prompt, "adapter_run": config["adapter_run"], "threshold": rule.threshold,
        "peak_memory_gib": peak_memory_gib(run), **task_metrics(scorer.labels),
    })
    effective = {**config, "engine": run.plan.engine.value, "dtype": run.plan.dtype.value, "prompt": prompt, "threshold_used": rule.threshold}
    return write_outputs(run, metrics, effective)


def peak_memory_gib(run) -> float | None:
    """The most GPU memory scoring held."""
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**30, 3) if run.gpu else None


if __name__ == "__main__":
    main(CONFIG)
