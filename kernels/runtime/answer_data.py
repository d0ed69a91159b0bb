"""The data of a task whose answer is generated: each row's prompt (the task's template filled from its columns) and
the completion the train kernel teaches (the task's completion column, else the answer as the extraction rule reads
it), split into validation and training rows as every task's rows are.

    rows = answer_rows(config, task)                                     # -> AnswerRows (None without a train file)
    sequences, starts = encode_answer_examples(config, rows, tokenizer)   # the loss is on the completions
"""

from __future__ import annotations

from dataclasses import dataclass

from runtime.answers import AnswerRule, read_answer
from runtime.data import read_table, split_rows
from runtime.environment import log
from runtime.paths import competition_dir


def answer_rule(task) -> AnswerRule:
    """The task's answer: its type, range and extraction rule."""
    return AnswerRule(type=task.answer, lo=task.answer_min, hi=task.answer_max, extract=task.extract, marker=task.marker)


def fill(template: str, row) -> str:
    """The prompt of one row: the template's {column} fields from the row (a dict or a table row); a literal brace is
    written {{ or }}, as in every task prompt (task.py)."""
    return template.format_map({str(k): ("" if v is None else str(v)) for k, v in dict(row).items()})


def completion_text(task, row) -> str:
    """What the model learns to write after the prompt: the task's completion column, else the answer alone, written
    the way the extraction rule reads it."""
    if task.completion:
        return str(row[task.completion])
    answer = str(row[task.column])
    return {"boxed": f"\\boxed{{{answer}}}", "after_marker": f"{task.marker} {answer}"}.get(task.extract, answer)


@dataclass(frozen=True)
class AnswerRows:
    """The labelled table of an answer task, split as every task's (validation rows fixed by val_seed)."""

    task: object
    table: object
    split: object
    truths: list  # every row's answer, read as the task's answer type

    def prompts(self, rows: list[int]) -> list[str]:
        """The prompts of `rows` (positions in the train file)."""
        return [fill(self.task.prompt, self.table.iloc[i]) for i in rows]


def answer_rows(config: dict, task, train_rows: int = 1) -> AnswerRows | None:
    """train's rows and their answers, split into validation and training rows; None without a train file."""
    path = competition_dir(config["competition"]) / task.train
    if not path.is_file():
        return None
    table = read_table(path)
    rule = answer_rule(task)
    truths = [read_answer(str(v), rule) for v in table[task.column]]
    split = split_rows([False] * len(truths), val_rows=config["val_rows"], val_seed=config["val_seed"], train_rows=train_rows,
                       seed=config.get("seed", 0), balance=False, offset=config.get("data_offset", 0))
    return AnswerRows(task, table, split, truths)


def answer_training_rows(config: dict, task) -> AnswerRows:
    """The train kernel's data stage for an answer task: train_rows rows after data_offset, never a validation row."""
    rows = answer_rows(config, task, config["train_rows"])
    if rows is None or not rows.split.train:
        raise ValueError(f"no training rows in {task.train} (train_rows={config['train_rows']}, data_offset={config['data_offset']})")
    log(f"rows: {len(rows.split.train)} training, {len(rows.split.val)} validation (generated answers: {task.column})")
    return rows


def encode_answer_examples(config: dict, rows: AnswerRows, tokenizer):
    """Token ids of each training row's prompt and completion (ending with EOS), cut to max_seq_length from the
    prompt's start, and where each completion starts: the loss is on the completion alone."""
    prompts = rows.prompts(rows.split.train)
    completions = [completion_text(rows.task, rows.table.iloc[i]) for i in rows.split.train]
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None and tokenizer("x").input_ids[:1] == [tokenizer.bos_token_id] else []
    prompt_ids = tokenizer(prompts, add_special_tokens=False).input_ids
    completion_ids = tokenizer(completions, add_special_tokens=False).input_ids
    limit = config["max_seq_length"]
    sequences, starts = [], []
    for p, c in zip(prompt_ids, completion_ids):
        c = (c + [tokenizer.eos_token_id])[: limit - len(bos) - 1]
        p = p[max(0, len(p) - (limit - len(bos) - len(c))):]
        sequences.append(bos + p + c)
        starts.append(len(bos) + len(p))
    lengths = [len(s) for s in sequences]
    log(f"prompt and completion tokens: mean {sum(lengths) / len(lengths):.0f}, max {max(lengths)}; loss on the completion only")
    return sequences, starts
