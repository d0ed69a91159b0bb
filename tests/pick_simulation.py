"""Does `kit pick` choose better finals than the top public scores? A simulation with known true accuracies.

Each trial makes `runs` classifiers in `families`. Every run is scored on the same rows: a validation split, a
public split and a private split; its correctness on each row is drawn from a latent score (shared by every run,
by its family, and its own) so that its accuracy is its true accuracy and runs of one family err together. Two
kinds of families:

    recipes    different recipes: true accuracies uniform over [low, high], families only a little alike
               (correlation of per-row correctness about 0.17)
    variants   close variants of a few recipes (a later phase, another learning rate, a threshold): a family's
               runs are within a few tenths of a point of each other and make mostly the same errors
               (correlation of per-row correctness about 0.6; 12% of rows predicted differently)
    near-duplicates  as variants, but closer still (correlation about 0.85; 4.5% of rows differ): phases of one
               training run, threshold variants, resubmissions

Then ways of choosing three finals are scored by the private score Kaggle keeps, the best of the three:

    kit pick        kit.finals.pick.choose: validation and public combined by size, shrunk, diverse picks
    top-3 public    the three highest public scores
    top-3 estimates kit pick's estimates without the diversity step (its three best estimates)
    top-3 true      the three highest true accuracies

The model lives with the tests, so that they measure kit.finals.pick with it; bench/pick_simulation.py prints the table of
bench/RESULTS.md from it. Imported only by those two, never on the CLI's path (it needs numpy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from kit.finals.pick import Candidate, TestPredictions, choose

# How a run's latent per-row score splits: shared by every run (hard rows), by its family, and its own.
SHARED = 0.45
FAMILY = {"recipes": 0.35, "variants": 0.8, "near-duplicates": 0.88}
# Spread (sd) of true accuracy inside a family of close variants.
VARIANT_SD = 0.003


@dataclass(frozen=True)
class Scenario:
    """The sizes and spread of one simulated competition."""

    val_rows: int
    public_rows: int
    private_rows: int
    runs: int = 12
    families: int = 4
    kind: str = "recipes"  # or "variants"
    low: float = 0.80  # true accuracies (recipes) or family centres (variants) are uniform in [low, high]
    high: float = 0.84


@dataclass(frozen=True)
class Outcome:
    """Mean private score (best of the picks) per strategy, and the paired difference kit - top-3 public."""

    scenario: Scenario
    trials: int
    kit_best_of_picks: float
    kit_first_pick: float
    top3_estimates: float
    top3_public: float
    top1_public: float
    top3_true: float
    diff_mean: float
    diff_se: float


def _bits(correct_row: np.ndarray) -> int:
    return int.from_bytes(np.packbits(correct_row.astype(np.uint8), bitorder="little").tobytes(), "little")


def trial(s: Scenario, rng: np.random.Generator) -> tuple[float, ...]:
    """One simulated competition: the private score each strategy keeps (see Outcome for the order)."""
    family = np.arange(s.runs) % s.families
    if s.kind != "recipes":
        truth = np.clip(rng.uniform(s.low, s.high, size=s.families)[family] + rng.normal(0, VARIANT_SD, size=s.runs), 0.5, 0.99)
    else:
        truth = rng.uniform(s.low, s.high, size=s.runs)
    rows = s.val_rows + s.public_rows + s.private_rows
    weight = FAMILY[s.kind]
    own = math.sqrt(1 - SHARED**2 - weight**2)
    latent = (
        SHARED * rng.standard_normal(rows)[None, :]
        + weight * rng.standard_normal((s.families, rows))[family]
        + own * rng.standard_normal((s.runs, rows))
    )
    cut = np.array([NormalDist().inv_cdf(t) for t in truth])
    correct = latent < cut[:, None]  # P(correct) = truth for each run; errors correlate through the shared parts
    val = correct[:, : s.val_rows].mean(axis=1)
    public = correct[:, s.val_rows : s.val_rows + s.public_rows].mean(axis=1)
    private = correct[:, s.val_rows + s.public_rows :].mean(axis=1)
    # Disagreement between predicted labels equals disagreement in correctness: the bits stand in for the labels.
    test_ids = tuple(str(i) for i in range(s.public_rows + s.private_rows))
    candidates = [
        Candidate(
            run=f"run-{k + 1}", val_accuracy=float(val[k]), val_rows=s.val_rows, public_score=float(public[k]),
            predictions=TestPredictions(test_ids, _bits(correct[k, s.val_rows :])),
        )
        for k in range(s.runs)
    ]
    result = choose(candidates, s.public_rows, s.private_rows, n=3)
    kit_picks = [int(p.candidate.run.split("-")[1]) - 1 for p in result.picks]
    top_estimates = [int(e.run.split("-")[1]) - 1 for e in result.estimates[:3]]
    by_public = np.argsort(-public, kind="stable")
    return (
        float(private[kit_picks].max()),
        float(private[kit_picks[0]]),
        float(private[top_estimates].max()),
        float(private[by_public[:3]].max()),
        float(private[by_public[0]]),
        float(private[np.argsort(-truth)[:3]].max()),
    )


def simulate(s: Scenario, trials: int, seed: int = 0) -> Outcome:
    """Run `trials` simulated competitions of scenario `s` and average what each strategy keeps."""
    rng = np.random.default_rng(seed)
    results = np.array([trial(s, rng) for _ in range(trials)])
    diff = results[:, 0] - results[:, 3]
    means = results.mean(axis=0)
    return Outcome(s, trials, *map(float, means), float(diff.mean()), float(diff.std(ddof=1) / math.sqrt(trials)))
