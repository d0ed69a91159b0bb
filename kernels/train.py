"""kit train kernel: fine-tune a causal LM with LoRA to give each row's class (its label token), then score the test set.

The task (its `task` setting; without one, the binary is_correct task) says which files, prompt, classes, metric
and submission. Reads the competition's train and test files from the input tree and writes to the working folder:
the adapter, config.json, metrics.json, plan.json, val_predictions.csv and (unless predict_test is off) the
submission and test_probs.csv.
"""

CONFIG: dict = {}  # kit:config (kit build writes the effective settings here, one per line)

from runtime.answer_data import answer_training_rows  # noqa: E402  (the runtime below is inlined by kit build)
from runtime.answering import answers_after_training  # noqa: E402
from runtime.data import load_task, training_rows  # noqa: E402
from runtime.evaluate import label_tokens, predict, scoring_models, validate  # noqa: E402
from runtime.fit import train  # noqa: E402
from runtime.modeling import load_model  # noqa: E402
from runtime.outputs import run_metrics, task_metrics, write_outputs  # noqa: E402
from runtime.session import start_run  # noqa: E402


def main(config: dict, worker_command: list[str] | None = None) -> dict:
    """The recipe: start (install, plan, process group) -> data -> model -> train -> validate -> predict -> outputs.

    With several training processes (train_processes) this process only launches them (torch.distributed's launcher
    runs `worker_command`, default: this script again, once per process) and returns what the first wrote; each runs
    the same steps on its share of the rows, and only the first writes outputs.
    """
    run = start_run(config, "train", worker_command)  # the plan is printed and fixed here; nothing after asks the machine
    if run.launched is not None:  # the training processes ran this recipe
        return run.launched
    task = load_task(config)
    if task.kind == "answer":  # a generated answer: the loss on each row's completion (runtime/answering.py)
        return train_for_answers(run, config, task)
    rows = training_rows(config, task)
    model, tokenizer = load_model(config, run.plan)
    labels = label_tokens(tokenizer, rows.task, config["prompt"], rows, config)
    trained = train(run, config, rows, model, tokenizer, labels=labels)
    if not run.leader:
        return {}
    scorer = scoring_models(run, config, rows.task, config["prompt"], rows, run.out / "adapter", trained=trained.model, tokenizer=tokenizer, labels=labels)
    metrics, rule = validate(run, config, rows, scorer)
    metrics.update(predict(run, config, scorer, rule))
    plan = run.plan
    metrics.update({
        **run_metrics(run), "gradient_checkpointing": plan.checkpointing.value, "dequantized_base": plan.dequantize_base.value,
        "compiled": plan.compile.value, "train_processes": run.group.world, "train_rows": len(rows.split.train),
        **trained.row_metrics(), "data_offset": config["data_offset"], "next_data_offset": rows.split.next_offset,
        **trained.metrics(), "steps": trained.steps, **task_metrics(labels),
    })
    effective = {**config, "engine": plan.engine.value, "dtype": plan.dtype.value, "gradient_checkpointing": "on" if plan.checkpointing.value else "off",
                 "compile": "on" if plan.compile.value else "off", "packing": plan.packing.value, "threshold_used": rule.threshold}
    return write_outputs(run, metrics, effective)


def train_for_answers(run, config: dict, task) -> dict:
    """A generated-answer task: LoRA on each row's prompt and completion, then the saved adapter validated by sampling."""
    rows = answer_training_rows(config, task)
    model, tokenizer = load_model(config, run.plan)
    trained = train(run, config, rows, model, tokenizer)
    if not run.leader:
        return {}
    del model, trained.model  # validation loads the saved adapter, as the infer kernel does
    metrics = {**run_metrics(run), **trained.metrics(), "train_rows": len(rows.split.train), "steps": trained.steps,
               **answers_after_training(run, config, task)}
    return write_outputs(run, metrics, {**config, "engine": run.plan.engine.value, "dtype": run.plan.dtype.value})


if __name__ == "__main__":
    main(CONFIG)
