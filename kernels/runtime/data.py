"""Rows in, token ids out: reading the competition files, the validation/training split, encoding and batching.

The data stage: `training_rows(config, task)` (train kernel) and `validation_rows(config, task)` (infer kernel) ->
Rows, the labelled table (CSV or Parquet, as the task names it), each row's class and which rows validate and which
train; Rows.encode turns rows into prompts' token ids.

The validation set depends only on the number of rows, `val_seed` and `val_rows`, so every run of a workspace is
scored on the same rows; training rows come from the rest, ordered by `seed`, so that `data_offset` lets a later
phase continue on rows an earlier phase with the same seed never saw.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

from runtime.environment import log, warn
from runtime.paths import competition_dir, find_source
from runtime.prompts import PromptTemplate
from runtime.task import Task


def read_table(path: Path):
    """A CSV or Parquet file (by its suffix) as a pandas DataFrame, every column as text (a missing cell: "")."""
    import pandas as pd

    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            import pyarrow  # noqa: F401  (pandas reads Parquet with it; say so before pandas' longer message)
        except ImportError:
            raise ImportError(f"{path.name} is a Parquet file and reading it needs pyarrow: pip install pyarrow") from None
        table = pd.read_parquet(path)
        return table.astype(object).where(table.notna(), "").astype(str)
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def parse_label(value) -> bool:
    """A label cell (True/False, true/false, 1/0) as a bool."""
    text = str(value).strip().lower()
    if text in ("true", "1", "1.0", "yes"):
        return True
    if text in ("false", "0", "0.0", "no"):
        return False
    raise ValueError(f"unreadable is_correct value {value!r}: expected True or False")


def load_task(config: dict) -> Task:
    """The task the kernel was built for (its `task` setting), or today's binary is_correct task without one."""
    return Task.from_dict(config["task"]) if config.get("task") else Task.default()


@dataclass(frozen=True)
class Split:
    """Indices into train.csv: the shared validation rows, this run's training rows, and what the sampling had."""

    val: list[int]
    train: list[int]
    available: int  # training rows the order offered after data_offset (before train_rows cut it)
    next_offset: int  # data_offset a later phase with the same seed uses to see only fresh rows


def split_rows(
    labels: list[int],
    *,
    val_rows: int,
    val_seed: int,
    train_rows: int,
    seed: int,
    balance: bool,
    offset: int = 0,
) -> Split:
    """Choose the validation rows first (fixed by val_seed), then training rows from the rest, never overlapping.
    `labels` are the rows' classes (0 = the first class: True for the binary task)."""
    import numpy as np

    n = len(labels)
    if val_rows >= n:
        raise ValueError(f"val_rows={val_rows} leaves no training rows out of {n}")
    # A permutation, not a sample: a smaller val_rows gives a subset of a larger one.
    val = np.random.default_rng(val_seed).permutation(n)[:val_rows]
    in_val = np.zeros(n, dtype=bool)
    in_val[val] = True
    rest = np.flatnonzero(~in_val)
    order = rest[np.random.default_rng(seed).permutation(len(rest))]
    if balance:
        labels_arr = np.asarray(labels, dtype=np.int64)[order]
        groups = [order[labels_arr == c] for c in np.unique(labels_arr)]
        rounds = min((len(g) for g in groups), default=0)
        # one row of each class in turn (True, False, True, ... for the binary task): any prefix (and so any
        # offset/train_rows window) stays balanced; each class gives as many rows as the rarest has
        order = np.empty(len(groups) * rounds, dtype=order.dtype)
        for k, group in enumerate(groups):
            order[k :: len(groups)] = group[:rounds]
    available = max(0, len(order) - offset)
    take = available if train_rows == 0 else min(train_rows, available)
    train = order[offset : offset + take]
    return Split(val=sorted(int(i) for i in val), train=[int(i) for i in train], available=available, next_offset=offset + take)


def adds_bos(tokenizer) -> bool:
    """Whether the tokenizer puts a BOS token in front by itself."""
    ids = tokenizer("x").input_ids
    return tokenizer.bos_token_id is not None and len(ids) > 0 and ids[0] == tokenizer.bos_token_id


def encode_prompts(tokenizer, template: PromptTemplate, rows, max_seq_length: int) -> list[list[int]]:
    """Token ids of each row's prompt (`rows`: mappings of column -> text), at most max_seq_length - 1 (room for the
    label); the template's `shorten` field loses its middle where a prompt is too long."""
    parts = [template.parts(row) for row in rows]
    if not parts:
        return []
    heads, values, tails = zip(*parts)
    bos = [tokenizer.bos_token_id] if adds_bos(tokenizer) else []
    head_ids = tokenizer(list(heads), add_special_tokens=False).input_ids
    value_ids = tokenizer(list(values), add_special_tokens=False).input_ids
    distinct_tails = list(dict.fromkeys(tails))  # most templates end the same way on every row: split it once
    tail_ids = dict(zip(distinct_tails, tokenizer(distinct_tails, add_special_tokens=False).input_ids))
    limit = max_seq_length - 1
    out = []
    for head, value, tail in zip(head_ids, value_ids, tails):
        tail = tail_ids[tail]
        room = limit - len(bos) - len(head) - len(tail)
        if len(value) > room:
            # The start (the method) and the end (the output and the boxed answer) carry the evidence.
            keep_head = max(room, 0) // 2
            value = value[:keep_head] + value[len(value) - (max(room, 0) - keep_head) :]
        ids = bos + head + value + tail
        if len(ids) > limit:  # the rest alone is too long: keep the end, where the label is asked for
            ids = bos + ids[len(ids) - limit + len(bos) :]
        out.append(ids)
    return out


def training_order(lengths: list[int], batch_size: int, group_by_length: bool, seed: int) -> list[list[int]]:
    """Micro-batches of row positions for one epoch: shuffled, and when grouping, similar lengths share a batch."""
    rng = random.Random(seed)
    rows = list(range(len(lengths)))
    rng.shuffle(rows)
    if not group_by_length:
        return [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
    # Sort within pools of 64 batches: ~3% padding on the competition's length mix (32: ~5%), while a batch's rows
    # still come from a random sample of the data set.
    pool = batch_size * 64
    batches = []
    for start in range(0, len(rows), pool):
        chunk = sorted(rows[start : start + pool], key=lambda r: lengths[r])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def bucket_width(tokens: int) -> int:
    """The width a packed batch of `tokens` tokens is padded to when its passes replay as CUDA graphs (graphs.py):
    eight widths an octave, multiples of 8, always at least one pad token more (the pad row is never empty).

    A graph holds one shape, so each width recorded costs a capture; eight an octave keeps them few (about 30
    between 100 and 20,000 tokens) and the padding under 1/8 of the width (about 6% on average)."""
    step = max(8, 1 << max(tokens.bit_length() - 4, 0))  # 1/8 of the octave `tokens` is in (its top power of two / 8)
    return (tokens // step + 1) * step


def bucket_pad_limit(width: int) -> int:
    """The most pad tokens bucket_width adds to reach `width`: a bound on the pad row's length."""
    return max(8, width // 8)


def padded_width(longest: int, multiple: int) -> int:
    """The width a batch whose longest row has `longest` tokens is padded to (a multiple of `multiple`)."""
    return -(-longest // multiple) * multiple


def scoring_order(lengths: list[int], batch_size: int, max_tokens: int = 0, multiple: int = 1) -> list[list[int]]:
    """Batches of row positions sorted by length, longest first, so that a batch has almost no padding.

    With `max_tokens`, a batch holds as many rows as fit in that many padded tokens (at least `batch_size`):
    short rows go through in large batches, where the GPU's matrix units are busy.
    """
    rows = sorted(range(len(lengths)), key=lambda r: -lengths[r])
    if max_tokens <= 0:
        return [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
    batches, i = [], 0
    while i < len(rows):
        take = max(batch_size, max_tokens // padded_width(lengths[rows[i]], multiple))
        batches.append(rows[i : i + take])
        i += take
    return batches


def split_by_tokens(rows: list[int], lengths: list[int], max_tokens: int, multiple: int = 1, packed: bool = False) -> list[list[int]]:
    """A micro-batch cut into chunks of at most `max_tokens` tokens (one row at least), longest rows together: padded
    tokens (rows times the longest, rounded up to `multiple`), or with `packed` the rows' own tokens.

    The chunks' losses, weighted by their share of the targets, give the micro-batch's gradient exactly: activation
    memory is bounded by `max_tokens` whatever the batch size, so recomputation is needed only for rows too long
    to fit alone.
    """
    ordered = sorted(rows, key=lambda r: -lengths[r])
    if max_tokens <= 0:
        return [ordered]
    width = lambda r: lengths[r] if packed else padded_width(lengths[r], multiple)  # noqa: E731
    chunks, tokens = [], 0
    for r in ordered:
        # a row adds its own tokens to a packed chunk, and the chunk's width (its first row's: longest first) to a padded one
        added = width(r) if packed or not chunks else width(chunks[-1][0])
        if chunks and tokens + added <= max_tokens:
            chunks[-1].append(r)
            tokens += added
        else:
            chunks.append([r])
            tokens = width(r)
    return chunks


def steps_per_epoch(n_rows: int, batch_size: int, grad_accum: int) -> int:
    """Optimizer steps in one pass over n_rows."""
    return math.ceil(math.ceil(n_rows / batch_size) / grad_accum)


@dataclass
class Batch:
    """Model inputs of one micro-batch, and where its predictions are read.

    `predict_index` are flat positions (into batch*length) whose next-token logits count, with `targets` the tokens
    they must predict; `label_index` has one position per row: the last prompt token, where the label is read.
    """

    input_ids: object
    position_ids: object | None
    predict_index: object
    targets: object
    label_index: object
    useful_tokens: int
    attention: dict = field(default_factory=dict)  # extra decoder arguments: a packed batch's row boundaries


def collate(
    sequences: list[list[int]],
    pad_id: int,
    *,
    label_ids: list[int] | None = None,
    completion_only: bool = True,
    packed: bool = False,
    pad_to_multiple: int = 1,
    pad_to_bucket: bool = False,
    completion_from: list[int] | None = None,
    device="cpu",
) -> Batch:
    """Build a micro-batch: right-padded rows (exact for a causal model without a mask), or packed into one row.

    With `label_ids`, the label token follows each prompt: the loss is on it alone (completion_only) or on every
    token after the first. Without them (scoring), `targets` is empty and only `label_index` matters.
    `pad_to_multiple` rounds the padded width up: a compiled model (unsloth) then sees few distinct shapes.
    `pad_to_bucket` (packed only) ends the packed row with one more row of pad tokens, up to bucket_width: it attends
    only to itself and is never predicted, so the loss is the same, and a CUDA graph of that width replays it.
    With `completion_from` (generated answers), each sequence is a prompt and its completion, the completion starting
    at that position: the loss is on the completion's tokens alone.
    """
    import torch

    rows = [list(s) + ([label_ids[i]] if label_ids is not None and not completion_only else []) for i, s in enumerate(sequences)]
    lengths = [len(r) for r in rows]
    prompt_lengths = [len(s) for s in sequences]
    if packed:
        width, starts, pos = sum(lengths), [], []
        for n in lengths:
            starts.append(len(pos))
            pos.extend(range(n))
        flat = [t for r in rows for t in r]
        if pad_to_bucket:
            pad = bucket_width(width) - width
            starts_pad, width = width, width + pad
            flat.extend([pad_id] * pad)
            pos.extend(range(pad))
        input_ids = torch.tensor([flat], dtype=torch.long)
        position_ids = torch.tensor([pos], dtype=torch.long)
        bounds = torch.tensor(starts + ([starts_pad] if pad_to_bucket else []) + [width], dtype=torch.int32)
    else:
        width = padded_width(max(lengths), pad_to_multiple)
        starts = [i * width for i in range(len(rows))]
        input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        for i, r in enumerate(rows):
            input_ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        position_ids = bounds = None
    if completion_from is not None:
        prompt_lengths = list(completion_from)
    label_index = [starts[i] + prompt_lengths[i] - 1 for i in range(len(rows))]
    if completion_from is not None:
        predict = [starts[i] + j for i, r in enumerate(rows) for j in range(prompt_lengths[i] - 1, len(r) - 1)]
        targets = [t for i, r in enumerate(rows) for t in r[prompt_lengths[i]:]]
    elif label_ids is None:
        predict, targets = [], []
    elif completion_only:
        predict, targets = label_index, list(label_ids)
    else:
        predict = [starts[i] + j for i, r in enumerate(rows) for j in range(len(r) - 1)]
        targets = [t for r in rows for t in r[1:]]
    move = lambda t: to_device(t, device)  # noqa: E731
    return Batch(
        input_ids=move(input_ids),
        position_ids=None if position_ids is None else move(position_ids),
        predict_index=move(torch.tensor(predict, dtype=torch.long)),
        targets=move(torch.tensor(targets, dtype=torch.long)),
        label_index=move(torch.tensor(label_index, dtype=torch.long)),
        useful_tokens=sum(lengths),
        # the names transformers passes on to attention functions (attention.flash_packed_attention reads them)
        # max_length_q bounds every row, the pad row included (flash attention computes no position past it)
        attention={} if bounds is None else {"cu_seq_lens_q": move(bounds), "max_length_q": int((bounds[1:] - bounds[:-1]).max())},
    )


def to_device(tensor, device):
    """A CPU tensor on `device`. To a GPU it goes through pinned memory without blocking: a plain copy from pageable
    memory waits for all the work queued before it, so the GPU would idle while Python builds the next batch."""
    if str(device).startswith("cuda"):
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


@dataclass(frozen=True)
class Rows:
    """The data stage's output: the train file, every row's class, the split, and the task (its classes known)."""

    table: object  # the train file as a DataFrame of text
    labels: list  # every row's class as an index into task.classes()
    split: Split
    task: Task

    def records(self, rows: list[int], fields) -> list[dict]:
        """The cells of `fields` of `rows` (positions in the train file), one mapping per row."""
        columns = {name: self.table[name].tolist() for name in fields}
        return [{name: columns[name][i] for name in fields} for i in rows]

    def encode(self, tokenizer, template: PromptTemplate, rows: list[int], max_seq_length: int) -> list[list[int]]:
        """Token ids of the prompts of `rows` (positions in the train file)."""
        return encode_prompts(tokenizer, template, self.records(rows, template.fields()), max_seq_length)

    def class_counts(self, rows: list[int]) -> list[int]:
        """How many of `rows` each class has, in the task's class order."""
        counts = [0] * len(self.task.classes())
        for i in rows:
            counts[self.labels[i]] += 1
        return counts


def class_of_rows(task: Task, table) -> tuple[Task, list[int]]:
    """(the task with its classes known, every row's class as an index into them): the classes as declared, or read
    from the train file (labels = "from_train"). A value outside the declared classes stops the run."""
    missing = [c for c in task.target_columns() if c not in table.columns]
    if missing:
        raise ValueError(f"{task.train} has no column {missing[0]!r} (the task's target); its columns: {', '.join(table.columns)}")
    targets = [task.target(row) for row in table[list(task.target_columns())].to_dict("records")]
    task = task.with_labels(targets)  # reads the classes (from_train), or checks the values against the listed ones
    index = {c: k for k, c in enumerate(task.classes())}
    return task, [index[task.canonical(t)] for t in targets]


def read_labelled(config: dict, task: Task):
    """The task's train file, its classes and every row's class."""
    table = read_table(competition_dir(config["competition"], task.train) / task.train)
    task, labels = class_of_rows(task, table)
    return table, task, labels


def training_rows(config: dict, task: Task) -> Rows:
    """The train kernel's data stage: the shared validation rows and this run's training rows (train_rows sampled
    after data_offset, balanced when asked)."""
    table, task, labels = read_labelled(config, task)
    split = split_rows(
        labels, val_rows=config["val_rows"], val_seed=config["val_seed"], train_rows=config["train_rows"],
        seed=config["seed"], balance=config["balance"], offset=config["data_offset"],
    )
    if not split.train:
        raise ValueError(f"no training rows left after data_offset={config['data_offset']} ({split.available} available)")
    if config["train_rows"] and len(split.train) < config["train_rows"]:
        warn(f"only {len(split.train)} training rows available (train_rows={config['train_rows']})")
    rows = Rows(table, labels, split, task)
    counts = rows.class_counts(split.train)
    shown = f"{counts[0]} True" if task.classes() == ("True", "False") else ", ".join(f"{n} {c}" for c, n in zip(task.classes(), counts))
    log(f"rows: {len(split.train)} training ({shown}), {len(split.val)} validation, "
        f"data_offset={config['data_offset']} -> next phase data_offset={split.next_offset}")
    return rows


def known_classes(config: dict, task: Task) -> Task:
    """The task with its classes known where there is no train file to read them from (labels = "from_train"):
    those the adapter's train run recorded in its metrics.json."""
    if task.labels is not None:
        return task
    saved = None
    if config.get("adapter_run"):
        try:
            saved = json.loads((find_source(config["adapter_run"]) / "metrics.json").read_text()).get("classes")
        except (OSError, ValueError):
            saved = None
    if not saved:
        raise ValueError(f"the task's labels are read from {task.train} (labels = \"from_train\"), and the competition has no "
                         f"{task.train}; list them in [task.target] labels, or score with adapter_run set to a train run")
    return task.with_labels(saved)


def validation_rows(config: dict, task: Task) -> Rows | None:
    """The infer kernel's data stage: the shared validation rows (the train runs' own, by val_seed), or None where
    the competition has no train file."""
    try:
        folder = competition_dir(config["competition"], task.train)
    except FileNotFoundError:
        return None
    if not (folder / task.train).is_file():
        return None
    table, task, labels = read_labelled(config, task)
    split = split_rows(labels, val_rows=config["val_rows"], val_seed=config["val_seed"], train_rows=1, seed=0, balance=False)
    return Rows(table, labels, split, task)
