"""The stages of a task whose answer is generated (an integer in a range, or a short text), and server mode.

    metrics = answer_stage(run, config, task, adapter_dir)   # infer kernel: validate, then the test set or the server

(The train kernel's side, prompts and completions: answer_data.py.)

Each row's prompt is the task's template filled from its columns; N completions are sampled (generate.py), each
one's answer read by the task's extraction rule (answers.py), and the majority answer given, ties to the earliest.
In server mode (the task has [task.server]: the competition ships kaggle_evaluation) the kernel's last step is the
serve / local-gateway branch (serve.py) and the gateway writes the submission file.
"""

from __future__ import annotations

import csv
import time

from runtime.answer_data import AnswerRows, answer_rows, answer_rule, fill
from runtime.answers import AnswerRule, answer_of, most_common, vote
from runtime.data import encode_prompts, known_classes, read_table, validation_rows
from runtime.evaluate import no_validation_rule, scoring_models, validate
from runtime.modeling import adapter_settings
from runtime.environment import competition_rerun, log
from runtime.generate import load_sampler
from runtime.paths import competition_dir, working_dir
from runtime.serve import RowAnswerer, ServerSpec, serve_or_run_local_gateway
from runtime.task import decide


def server_spec(task) -> ServerSpec | None:
    """The task's server section as the kernel keeps time by it; None for a task whose kernel writes the file."""
    if not task.server_module:
        return None
    id_column, answer_column = (list(task.sub_columns) + ["answer"])[:2] if task.sub_columns else (task.id, "answer")
    return ServerSpec(module=task.server_module, call_seconds=task.call_seconds, run_seconds=task.run_seconds,
                      file=task.server_file, id_column=id_column, answer_column=answer_column, rows=task.server_rows,
                      local_data=(task.test,))


def sample_rows(sampler, rule: AnswerRule, prompts: list[str], seconds: float | None = None) -> list[tuple[object, list]]:
    """(the voted answer or None, each completion's answer) of every prompt."""
    out = []
    for completions in sampler.complete(prompts, seconds):
        answers = [answer_of(text, rule) for text in completions]
        out.append((vote(answers), answers))
    return out


def validate_answers(run, config: dict, task, rows: AnswerRows | None, sampler, rule: AnswerRule) -> dict:
    """Generate for the shared validation rows: val_accuracy (voted answer equal to the truth), val_predictions.csv."""
    if rows is None or not rows.split.val:
        return {}
    started = time.time()
    results = sample_rows(sampler, rule, rows.prompts(rows.split.val))
    truths = [rows.truths[i] for i in rows.split.val]
    right = sum(answer == truth for (answer, _), truth in zip(results, truths))
    with open(run.out / "val_predictions.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["row", task.column, "predicted", "samples"])
        for i, truth, (answer, answers) in zip(rows.split.val, truths, results):
            writer.writerow([i, truth, "" if answer is None else answer, " ".join("-" if a is None else str(a) for a in answers)])
    seconds = time.time() - started
    metrics = {"val_accuracy": right / len(truths), "val_rows": len(truths), "val_seconds": round(seconds, 2),
               "val_seconds_per_row": round(seconds / len(truths), 3), "val_answered": sum(a is not None for a, _ in results) / len(truths)}
    log(f"validation: accuracy {metrics['val_accuracy']:.4f} on {len(truths)} rows ({config['samples']} samples a row), "
        f"{metrics['val_seconds_per_row']:.2f} s a row")
    return metrics


def answer_test_table(run, config: dict, task, sampler, rule: AnswerRule) -> dict:
    """A table competition of generated answers: every test row answered (fallback where none), the task's file."""
    table = read_table(competition_dir(config["competition"]) / task.test)
    if config["test_rows"]:
        table = table.head(config["test_rows"])
    started, given, answers = time.time(), [], []
    for i in range(len(table)):
        answer, _ = sample_rows(sampler, rule, [fill(task.prompt, table.iloc[i])], config["row_seconds"] or None)[0]
        answers.append(answer if answer is not None else most_common(given, rule))
        given += [answer] if answer is not None else []
        log(f"row {table[task.id].iat[i]}: {answers[-1]!r}")
    id_column, answer_column = (list(task.sub_columns) + ["answer"])[:2] if task.sub_columns else (task.id, "answer")
    with open(run.out / task.file, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([id_column, answer_column])
        writer.writerows(zip(table[task.id], answers))
    return {"test_rows": len(table), "test_seconds_per_row": round((time.time() - started) / max(len(table), 1), 3)}


def generated_or_served(task) -> bool:
    """Whether the kernel takes this module's path: a generated answer, or any task the gateway calls predict for."""
    return task.kind == "answer" or task.served


def answer_stage(run, config: dict, task, adapter_dir) -> dict:
    """The infer kernel for a generated-answer task: the engine chosen (and why), validation on the shared rows, then
    every test row answered into the task's file, or, in server mode, the serve / local-gateway branch (the model
    loads on the first call; the rerun skips validation: the server must be listening within the startup limit)."""
    if task.kind != "answer":
        return serve_classes(run, config, task, adapter_dir)
    rule = answer_rule(task)
    engine, reason = run.plan.generation.value, run.plan.generation.reason  # the plan's choice, in its table at the top of the log
    spec = server_spec(task)
    metrics: dict = {"generation_engine": engine, "generation_engine_reason": reason}
    rows = answer_rows(config, task) if config["val_rows"] and not (spec and competition_rerun()) else None
    sampler = load_sampler(engine, config, adapter_dir, run) if spec is None or rows is not None else None
    metrics.update(validate_answers(run, config, task, rows, sampler, rule) if rows is not None else {})
    if spec is None:
        metrics.update(answer_test_table(run, config, task, sampler, rule))
        return metrics

    def answer(model, row, seconds):
        if config["row_seconds"]:
            seconds = min(seconds, config["row_seconds"])
        return sample_rows(model, rule, [fill(task.prompt, row)], seconds)[0][0]

    answerer = RowAnswerer(spec, lambda: sampler or load_sampler(engine, config, adapter_dir, run), answer,
                           lambda given: most_common(given, rule), check=lambda a: a is not None, started=run.started)
    mode = serve_or_run_local_gateway(spec, answerer, competition_dir(config["competition"]), working_dir())
    metrics.update(answerer.summary(), server=mode)
    return metrics


def answers_after_training(run, config: dict, task) -> dict:
    """The train kernel's last stage for a generated-answer task: the adapter it saved, loaded as the infer kernel
    loads it, validated on the shared rows (and, for a competition whose kernel writes the file, the test set
    answered). A server competition's submission is an infer run's: its gateway calls that kernel's predict."""
    if not config["val_rows"] and (task.served or not config["predict_test"]):
        return {}
    rule = answer_rule(task)
    engine = run.plan.generation.value  # the plan's choice, with its reason in the table at the top of the log
    sampler = load_sampler(engine, config, run.out / "adapter", run)
    metrics = {"generation_engine": engine, **validate_answers(run, config, task, answer_rows(config, task), sampler, rule)}
    if config["predict_test"] and not task.served:
        metrics.update(answer_test_table(run, config, task, sampler, rule))
    return metrics


def serve_classes(run, config: dict, task, adapter_dir) -> dict:
    """Server mode for a classification task: predict scores the row in one forward pass, as the kernel scores a test
    row, and answers what the task submits (a label, a probability, per-class probabilities, the top k). The commit
    run validates first (the decision rule tuned on the shared rows); the rerun serves at once, with the rule the
    adapter's train run tuned (its metrics.json), and loads the model on the first call."""
    spec = server_spec(task)
    prompt = adapter_settings(config)[1]
    metrics, scorer, rule = {}, None, None
    if not competition_rerun():
        rows = validation_rows(config, task) if config["val_rows"] else None
        scorer = scoring_models(run, config, rows.task if rows is not None else known_classes(config, task), prompt, rows, adapter_dir)
        metrics, rule = validate(run, config, rows, scorer)

    known = known_classes(config, task)  # the class set (read from train where the task says from_train)

    def load():
        loaded = scorer or scoring_models(run, config, known, prompt, None, adapter_dir)
        return loaded, rule or no_validation_rule(config, loaded.task)

    def answer(model, row, seconds):
        loaded, decision = model
        probs = loaded(encode_prompts(loaded.tokenizer, loaded.template, [row], config["max_seq_length"])).probs
        value = decide(loaded.task, probs, decision)[0]
        if isinstance(value, tuple) and known.output == "probabilities":  # one column a class, as the submission has
            return dict(zip(known.sub_columns[1:], value))
        return known.separator.join(value) if isinstance(value, tuple) else value

    def fallback(given):
        """The answer given most often so far; before any, a valid one: uniform probabilities, or the first class."""
        if known.output == "probabilities":
            return {c: 1 / len(known.classes()) for c in known.sub_columns[1:]}
        if known.output == "probability":
            return 0.5
        return vote(given) if given else known.classes()[0]

    answerer = RowAnswerer(spec, load, answer, fallback, started=run.started)
    mode = serve_or_run_local_gateway(spec, answerer, competition_dir(config["competition"]), working_dir())
    metrics.update(answerer.summary(), server=mode)
    return metrics
