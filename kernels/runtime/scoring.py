"""Scoring rows with one forward pass each: P(True) from the label tokens' logits at the last prompt position.

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
from runtime.task import tune_threshold


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
    """Per-row P(True) and, where labels were given, the cross-entropy of the true label token."""

    prob_true: list[float]
    nll: list[float | None]


def score_sequences(model, sequences, true_id: int, false_id: int, pad_id: int, *, batch_size: int, labels=None, device="cpu",
                    autocast_dtype=None, max_tokens: int = 0, multiple: int = 1, packed: bool = False) -> Scores:
    """Score prompts (token id lists) on one model: P(True) = softmax over the two label tokens' logits.

    Batches hold `batch_size` rows, or with `max_tokens` as many as fit in that many padded tokens; widths are
    rounded up to `multiple`. `packed` puts a batch's rows back to back in one sequence, without padding (the model
    must attend with attention.use_packed_attention).
    """
    import torch

    prob = [0.0] * len(sequences)
    nll: list[float | None] = [None] * len(sequences)
    device_type = "cuda" if str(device).startswith("cuda") else "cpu"
    model.eval()
    pending = []  # (rows, P(True), label-token loss) still on the device: read once at the end, so the GPU never waits
    with torch.inference_mode(), torch.autocast(device_type, dtype=autocast_dtype, enabled=autocast_dtype is not None and device_type == "cuda"):
        for rows in scoring_order([len(s) for s in sequences], batch_size, max_tokens, 1 if packed else multiple):
            batch = collate([sequences[r] for r in rows], pad_id, packed=packed, pad_to_multiple=multiple, device=device)
            logits = label_logits(model, batch)
            pair = torch.stack([logits[:, true_id], logits[:, false_id]], dim=1)
            row_nll = None
            if labels is not None:
                targets = to_device(torch.tensor([true_id if labels[r] else false_id for r in rows]), logits.device)
                row_nll = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
            pending.append((rows, torch.softmax(pair, dim=1)[:, 0], row_nll))
    for rows, p_true, row_nll in pending:
        for r, p in zip(rows, p_true.tolist()):
            prob[r] = p
        if row_nll is not None:
            for r, x in zip(rows, row_nll.tolist()):
                nll[r] = x
    return Scores(prob, nll)


def score_on_devices(models: list, devices: list, sequences, true_id: int, false_id: int, pad_id: int, *, batch_size: int, labels=None,
                     autocast_dtype=None, max_tokens: int = 0, multiple: int = 1, packed: bool = False) -> Scores:
    """Split the rows across one model per device (a thread each) and gather the scores in the original order."""
    sizes = {"batch_size": batch_size, "max_tokens": max_tokens, "multiple": multiple, "packed": packed}
    if len(models) == 1:
        return score_sequences(models[0], sequences, true_id, false_id, pad_id, labels=labels, device=devices[0], autocast_dtype=autocast_dtype, **sizes)
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
                models[k], [sequences[r] for r in share], true_id, false_id, pad_id,
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
    prob = [0.0] * len(sequences)
    nll: list[float | None] = [None] * len(sequences)
    for share, result in zip(shares, results):
        for j, r in enumerate(share):
            prob[r], nll[r] = result.prob_true[j], result.nll[j]
    return Scores(prob, nll)


def accuracy(prob_true: list[float], labels: list[bool], threshold: float) -> float:
    """Share of rows where (P(True) >= threshold) equals the label."""
    if not labels:
        return float("nan")
    return sum((p >= threshold) == y for p, y in zip(prob_true, labels)) / len(labels)


def resolve_threshold(setting: str, prob_true: list[float], labels: list[bool]) -> float:
    """The threshold a config asks for: a number, or 'tune' (tuned on validation; 0.5 without validation rows)."""
    if str(setting) == "tune":
        return tune_threshold(prob_true, labels) if labels else 0.5
    return float(setting)


def write_csv(path: Path, header: list[str], rows) -> None:
    """A CSV file, written to a temporary name first so that a reader never sees half of it."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    partial.replace(path)


def write_test_outputs(out_dir: Path, ids: list, prob_true: list[float], threshold: float) -> None:
    """submission.csv (ID,is_correct as True/False) and test_probs.csv (ID,prob_true)."""
    write_csv(out_dir / "submission.csv", ["ID", "is_correct"], ((i, "True" if p >= threshold else "False") for i, p in zip(ids, prob_true)))
    write_csv(out_dir / "test_probs.csv", ["ID", "prob_true"], ((i, f"{p:.6f}") for i, p in zip(ids, prob_true)))


def write_val_predictions(out_dir: Path, rows: list[int], labels: list[bool], prob_true: list[float]) -> None:
    """val_predictions.csv: row (index in train.csv), is_correct (the label), prob_true."""
    write_csv(out_dir / "val_predictions.csv", ["row", "is_correct", "prob_true"], ((r, str(y), f"{p:.6f}") for r, y, p in zip(rows, labels, prob_true)))


def val_metrics(scores: Scores, labels: list[bool], threshold: float) -> dict:
    """Validation accuracy (at the threshold and at 0.5) and mean label-token loss."""
    losses = [x for x in scores.nll if x is not None]
    return {
        "val_rows": len(labels),
        "val_accuracy": accuracy(scores.prob_true, labels, threshold),
        "val_accuracy_at_0.5": accuracy(scores.prob_true, labels, 0.5),
        "val_loss": sum(losses) / len(losses) if losses else float("nan"),
        "val_true_rate": sum(labels) / len(labels) if labels else float("nan"),
        "threshold": threshold,
    }


def finite_or_none(value):
    """NaN and infinities as None, so that metrics.json stays valid JSON."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def predict_test_set(competition: Path, tokenizer, template, config: dict, score, out_dir: Path, threshold: float, *, test_rows: int = 0,
                     note: str = "scoring every test row") -> dict:
    """Score test.csv (only its first `test_rows` rows when set: the plan's test_rows, `note` its reason) with
    `score`, write submission.csv and test_probs.csv into out_dir, and return the test metrics."""
    started = time.time()
    table = read_table(competition / "test.csv")
    if test_rows:
        table = table.head(test_rows)
    log(f"{note}, {len(table)} rows of {competition / 'test.csv'}")
    sequences = encode_prompts(
        tokenizer, template, list(table["question"]), list(table["answer"]), list(table["solution"]), config["max_seq_length"]
    )
    prob_true = score(sequences).prob_true
    write_test_outputs(out_dir, list(table["ID"]), prob_true, threshold)
    seconds = time.time() - started
    rows_per_s = round(len(table) / max(seconds, 1e-9), 1)
    log(f"test: {len(table)} rows scored in {seconds:.1f}s ({rows_per_s} rows/s); submission.csv written")
    return {"test_rows": len(table), "test_seconds": round(seconds, 2), "test_rows_per_s": rows_per_s,
            "test_true_rate": sum(p >= threshold for p in prob_true) / max(len(table), 1)}
