"""Scoring rows with one forward pass each: every class's probability from the label tokens' logits at the last
prompt position (softmax over the classes' tokens), however many classes there are.

Only the decoder runs over the whole row; the output layer is applied at one position per row, so no
[batch, length, vocabulary] tensor is ever built. Rows are sorted by length and split across every GPU.
"""

from __future__ import annotations

import csv
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from runtime.data import collate, encode_prompts, read_table, scoring_order, to_device
from runtime.environment import log
from runtime.modeling import causal_parts
from runtime.task import Rule, Task, baseline, decide, prob_column, score, write_submission


def hidden_at(model, batch):
    """Final hidden states at the batch's `label_index` and `predict_index` positions (flattened), from one pass."""
    decoder, _ = causal_parts(model)
    out = decoder(input_ids=batch.input_ids, position_ids=batch.position_ids, use_cache=False, **batch.attention)
    hidden = out[0] if isinstance(out, tuple) else out.last_hidden_state
    flat = hidden.reshape(-1, hidden.shape[-1])
    return flat


def label_logits(model, batch):
    """Full-vocabulary logits (float32) at each row's last prompt position: [rows, vocab]."""
    _, lm_head = causal_parts(model)
    flat = hidden_at(model, batch)
    return lm_head(flat.index_select(0, batch.label_index)).float()


@dataclass
class Scores:
    """Per-row probability of each class (rows x classes, in the order of the label tokens) and, where labels were
    given, the cross-entropy of the true label token."""

    probs: list[list[float]]
    nll: list[float | None]

    @property
    def prob_true(self) -> list[float]:
        """The first class's probability: P(True) for the binary task."""
        return [p[0] for p in self.probs]


def score_sequences(model, sequences, label_ids, pad_id: int, *, batch_size: int, labels=None, device="cpu",
                    autocast_dtype=None, max_tokens: int = 0, multiple: int = 1, packed: bool = False) -> Scores:
    """Score prompts (token id lists) on one model: each class's probability = softmax over the label tokens'
    logits (`label_ids`, one a class). `labels` (optional) are the rows' classes as indices into `label_ids`.

    Batches hold `batch_size` rows, or with `max_tokens` as many as fit in that many padded tokens; widths are
    rounded up to `multiple`. `packed` puts a batch's rows back to back in one sequence, without padding (the model
    must attend with attention.use_packed_attention).
    """
    import torch

    probs: list[list[float]] = [[]] * len(sequences)
    nll: list[float | None] = [None] * len(sequences)
    device_type = "cuda" if str(device).startswith("cuda") else "cpu"
    model.eval()
    pending = []  # (rows, probabilities, label-token loss) still on the device: read once at the end, so the GPU never waits
    with torch.inference_mode(), torch.autocast(device_type, dtype=autocast_dtype, enabled=autocast_dtype is not None and device_type == "cuda"):
        columns = None
        for rows in scoring_order([len(s) for s in sequences], batch_size, max_tokens, 1 if packed else multiple):
            batch = collate([sequences[r] for r in rows], pad_id, packed=packed, pad_to_multiple=multiple, device=device)
            logits = label_logits(model, batch)
            if columns is None:
                columns = to_device(torch.tensor(list(label_ids), dtype=torch.long), logits.device)
            row_nll = None
            if labels is not None:
                targets = to_device(torch.tensor([label_ids[labels[r]] for r in rows]), logits.device)
                row_nll = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
            pending.append((rows, torch.softmax(logits.index_select(1, columns), dim=1), row_nll))
    for rows, p, row_nll in pending:
        for r, values in zip(rows, p.tolist()):
            probs[r] = values
        if row_nll is not None:
            for r, x in zip(rows, row_nll.tolist()):
                nll[r] = x
    return Scores(probs, nll)


def score_on_devices(models: list, devices: list, sequences, label_ids, pad_id: int, *, batch_size: int, labels=None,
                     autocast_dtype=None, max_tokens: int = 0, multiple: int = 1, packed: bool = False) -> Scores:
    """Split the rows across one model per device (a thread each) and gather the scores in the original order."""
    sizes = {"batch_size": batch_size, "max_tokens": max_tokens, "multiple": multiple, "packed": packed}
    if len(models) == 1:
        return score_sequences(models[0], sequences, label_ids, pad_id, labels=labels, device=devices[0], autocast_dtype=autocast_dtype, **sizes)
    # Deal rows by length so that every device gets the same mix of long and short rows.
    order = sorted(range(len(sequences)), key=lambda r: -len(sequences[r]))
    shares = [order[k :: len(models)] for k in range(len(models))]
    results: list[Scores | None] = [None] * len(models)
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            import torch

            if str(devices[k]).startswith("cuda"):
                torch.cuda.set_device(devices[k])
            share = shares[k]
            results[k] = score_sequences(
                models[k], [sequences[r] for r in share], label_ids, pad_id,
                labels=None if labels is None else [labels[r] for r in share], device=devices[k], autocast_dtype=autocast_dtype, **sizes,
            )
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(models))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    probs: list[list[float]] = [[]] * len(sequences)
    nll: list[float | None] = [None] * len(sequences)
    for share, result in zip(shares, results):
        for j, r in enumerate(share):
            probs[r], nll[r] = result.probs[j], result.nll[j]
    return Scores(probs, nll)


def accuracy(prob_true: list[float], labels: list[bool], threshold: float) -> float:
    """Share of rows where (P(True) >= threshold) equals the label."""
    if not labels:
        return float("nan")
    return sum((p >= threshold) == y for p, y in zip(prob_true, labels)) / len(labels)


def write_csv(path: Path, header: list[str], rows) -> None:
    """A CSV file, written to a temporary name first so that a reader never sees half of it."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    partial.replace(path)


def probability_cells(task: Task, probs: list[list[float]]) -> tuple[list[str], list[list[str]]]:
    """The probability columns of val_predictions.csv and test_probs.csv and each row's cells: a binary task's
    prob_true (P of its positive class, as kit has always read it), then p_<class> for every class."""
    binary = task.kind == "binary"
    header = (["prob_true"] if binary else []) + [prob_column(c) for c in task.classes()]
    cells = [([f"{p[0]:.6f}"] if binary else []) + [f"{x:.6f}" for x in p] for p in probs]
    return header, cells


def write_test_outputs(out_dir: Path, task: Task, ids: list, probs: list[list[float]], rule: Rule) -> list:
    """The task's submission file (its values decided by `rule`) and test_probs.csv (id, probabilities); returns
    the values submitted."""
    values = decide(task, probs, rule)
    write_submission(task, ids, values, out_dir / task.file)
    header, cells = probability_cells(task, probs)
    write_csv(out_dir / "test_probs.csv", [task.id, *header], ([i, *c] for i, c in zip(ids, cells)))
    return values


def write_val_predictions(out_dir: Path, task: Task, rows: list[int], labels: list[int], probs: list[list[float]]) -> None:
    """val_predictions.csv: row (index in the train file), the label (a binary task: is_correct, True when the row
    is of the positive class, as before), then the probabilities (probability_cells)."""
    classes = task.classes()
    binary = task.kind == "binary"
    header, cells = probability_cells(task, probs)
    if binary:  # row,is_correct,prob_true first: the columns kit has always read, in their place
        header = ["is_correct", header[0], "label", *header[1:]]
        lines = ([r, str(y == 0), c[0], classes[y], *c[1:]] for r, y, c in zip(rows, labels, cells))
    else:
        header = ["label", *header]
        lines = ([r, classes[y], *c] for r, y, c in zip(rows, labels, cells))
    write_csv(out_dir / "val_predictions.csv", ["row", *header], lines)


def val_metrics(task: Task, scores: Scores, labels: list[int], rule: Rule, groups: list | None = None) -> dict:
    """The validation figures: the competition's metric after the decision rule, its baseline (a model that ignores
    its input), the mean label-token loss; a binary task also its accuracy at the threshold and at 0.5."""
    classes = task.classes()
    truth = [classes[y] for y in labels]
    losses = [x for x in scores.nll if x is not None]
    described, base = baseline(task, truth, groups)
    metrics = {
        "val_rows": len(labels),
        "metric": task.metric,
        "val_metric": score(task, truth, scores.probs, rule, groups) if labels else float("nan"),
        "val_baseline": base,
        "baseline": described,
        "rule": rule.to_dict(),
    }
    if task.kind == "binary":
        positive = [y == 0 for y in labels]
        metrics.update({
            "val_accuracy": accuracy(scores.prob_true, positive, rule.threshold),
            "val_accuracy_at_0.5": accuracy(scores.prob_true, positive, 0.5),
        })
    metrics["val_loss"] = sum(losses) / len(losses) if losses else float("nan")
    if task.kind == "binary":
        metrics.update({"val_true_rate": sum(positive) / len(labels) if labels else float("nan"), "threshold": rule.threshold})
    return metrics


def finite_or_none(value):
    """NaN and infinities as None, so that metrics.json stays valid JSON."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def predict_test_set(competition: Path, tokenizer, template, task: Task, config: dict, score, out_dir: Path, rule: Rule, *,
                     test_rows: int = 0, note: str = "scoring every test row") -> dict:
    """Score the task's test file (only its first `test_rows` rows when set: the plan's test_rows, `note` its
    reason) with `score`, write the submission and test_probs.csv into out_dir, and return the test metrics."""
    started = time.time()
    table = read_table(competition / task.test)
    if test_rows:
        table = table.head(test_rows)
    log(f"{note}, {len(table)} rows of {competition / task.test}")
    fields = template.fields()
    missing = [c for c in (task.id, *fields) if c not in table.columns]
    if missing:
        raise ValueError(f"{task.test} has no column {missing[0]!r}; its columns: {', '.join(table.columns)}")
    columns = {name: table[name].tolist() for name in fields}
    records = [{name: columns[name][i] for name in fields} for i in range(len(table))]
    probs = score(encode_prompts(tokenizer, template, records, config["max_seq_length"])).probs
    values = write_test_outputs(out_dir, task, list(table[task.id]), probs, rule)
    seconds = time.time() - started
    rows_per_s = round(len(table) / max(seconds, 1e-9), 1)
    log(f"test: {len(table)} rows scored in {seconds:.1f}s ({rows_per_s} rows/s); {task.file} written")
    metrics = {"test_rows": len(table), "test_seconds": round(seconds, 2), "test_rows_per_s": rows_per_s}
    if task.kind == "binary" and task.output == "label":
        metrics["test_true_rate"] = sum(v == task.positive for v in values) / max(len(table), 1)
    return metrics
