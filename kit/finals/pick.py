"""Choosing the final submissions: an honest estimate of each run's accuracy, and picks whose best score is highest.

The model, stated once (the reasoning `kit pick` prints refers to it):

- A run's validation accuracy v (n_v rows) and public score p (n_p rows) are binomial draws around its true
  accuracy. Validation rows come from train.csv and public rows from test.csv, so the two can differ by a shift;
  a shift is the same for every run, so it is estimated as the mean gap (public - validation) over the runs that
  have both, and validation scores are moved by it before they are combined.
- The combined score x = (n_v * (v + shift) + n_p * p) / (n_v + n_p) counts every scored row once, wherever it is;
  its noise variance is s^2 = x(1 - x) / (n_v + n_p).
- The highest of many noisy scores is partly luck (the winner's curse). Empirical Bayes takes that back: the runs'
  true accuracies are taken as drawn from N(mu, tau^2), mu the mean of x and tau^2 the spread of x beyond its noise,
  so a run's estimate is mu + B (x - mu) with B = tau^2 / (tau^2 + s^2), and its variance B s^2 plus
  (1 - B)^2 times the variance of mu itself.
- Kaggle keeps the best private score of the final picks. The first pick is the best estimate; each further pick is
  the run that most raises the expected best private score. Two runs that predict the same test labels get nearly
  the same private score, so their correlation comes from how often their test predictions disagree, and the
  expected maximum of correlated normal scores is Clark's (1961).

Domain functions return typed results and never print; kit/commands/finals.py formats them.
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import NormalDist

from kit.errors import ConfigError, KitError
from kit.leaderboard.stats import Z95
from kit.runs import store
from kit.runs.store import KernelStatus
from kit.workspace.layout import Workspace

# Correlation assumed between two runs when one has no test predictions on this machine to compare.
UNKNOWN_CORRELATION = 0.5
# Runs this correlated (about 5% of test rows predicted differently at 82% accuracy) count as near-duplicates.
NEAR_DUPLICATE = 0.8
# The smallest spread of true accuracies (0.1 points) kept, so that estimates still rank runs when the measured
# spread is all noise.
MIN_TAU = 0.001
# Fewer runs than this cannot tell true spread from noise; their scores are not shrunk.
MIN_RUNS_TO_SHRINK = 3
_NORMAL = NormalDist()


@dataclass(frozen=True)
class TestPredictions:
    """A run's predicted test labels as bits (bit i: row `ids[i]` predicted True), to measure disagreement fast."""

    ids: tuple[str, ...]
    bits: int

    def disagreement(self, other: "TestPredictions") -> float | None:
        """Share of test rows where the two runs predict differently (None if they cover different rows)."""
        if not (self.ids is other.ids or self.ids == other.ids) or not self.ids:
            return None
        return (self.bits ^ other.bits).bit_count() / len(self.ids)


@dataclass(frozen=True)
class Candidate:
    """What is known about one run when choosing: its scores, their sizes and its test predictions."""

    run: str
    val_accuracy: float | None = None  # the validation score: accuracy, or the task's metric where it is another (ranked)
    val_rows: int = 0
    public_score: float | None = None
    private_score: float | None = None
    submission_ref: str = ""
    predictions: TestPredictions | None = None
    threshold_tuned: bool = False  # the threshold was tuned on the validation rows, so val_accuracy is optimistic


@dataclass(frozen=True)
class Estimate:
    """A run's true-accuracy estimate and how it was made."""

    run: str
    combined: float  # size-weighted validation (shifted) and public score
    rows: int  # scored rows behind `combined`
    mean: float  # after shrinkage toward the mean of the runs
    sd: float
    shrink: float  # share of (combined - mu) taken back, 1 - B

    @property
    def interval(self) -> tuple[float, float]:
        return self.mean - Z95 * self.sd, self.mean + Z95 * self.sd


@dataclass(frozen=True)
class Pick:
    """One proposed final submission, with the expected best private score once it is added, and why."""

    rank: int
    candidate: Candidate
    estimate: Estimate
    expected_best: float
    gain: float
    reasons: list[str]


@dataclass(frozen=True)
class Skipped:
    """A run that was not considered, and why."""

    run: str
    why: str


@dataclass(frozen=True)
class PickResult:
    """The proposed picks, every candidate's estimate (best first), and notes on the whole choice."""

    picks: list[Pick]
    estimates: list[Estimate]
    notes: list[str]
    skipped: list[Skipped] = field(default_factory=list)
    public_rows: int = 0
    private_rows: int = 0
    metric: str = "accuracy"  # the task's metric; another than accuracy is ranked, not estimated (choose_ranked)

    def to_json(self) -> dict:
        """A JSON-ready view of the result, for `kit pick --json`."""

        def pick_json(p: Pick) -> dict:
            c, e = p.candidate, p.estimate
            low, high = e.interval
            return {
                "rank": p.rank, "run": c.run, "submission_ref": c.submission_ref, "estimate": round(e.mean, 5),
                "estimate_sd": round(e.sd, 5), "estimate_interval95": [round(low, 5), round(high, 5)],
                "combined": round(e.combined, 5), f"val_{self.metric}": c.val_accuracy, "val_rows": c.val_rows,
                "public_score": c.public_score, "private_score": c.private_score,
                "expected_best_private": round(p.expected_best, 5), "gain": round(p.gain, 5), "reasons": p.reasons,
            }

        return {
            "picks": [pick_json(p) for p in self.picks],
            "estimates": [{k: (round(v, 5) if isinstance(v, float) else v) for k, v in asdict(e).items()} for e in self.estimates],
            "notes": self.notes,
            "skipped": [asdict(s) for s in self.skipped],
            "public_rows": self.public_rows,
            "private_rows": self.private_rows,
            "metric": self.metric,
        }


# -- the estimate ------------------------------------------------------------------------------------------


def _clamp(a: float) -> float:
    return min(max(a, 0.01), 0.99)


def correlation(a: float, b: float, disagreement: float | None) -> float:
    """Correlation of two runs' per-row correctness, from their accuracies and how often their labels differ.

    Where two runs disagree exactly one is right, so P(both right) = (a + b - d) / 2."""
    if disagreement is None:
        return UNKNOWN_CORRELATION
    a, b = _clamp(a), _clamp(b)
    both = (a + b - disagreement) / 2
    rho = (both - a * b) / math.sqrt(a * (1 - a) * b * (1 - b))
    return min(max(rho, -1.0), 1.0)


def validation_shift(candidates: list[Candidate]) -> tuple[float, int]:
    """Mean (public - validation) over runs with both scores, and how many runs that is (0 shift below two)."""
    gaps = [c.public_score - c.val_accuracy for c in candidates if c.public_score is not None and c.val_accuracy is not None and c.val_rows > 0]
    if len(gaps) < 2:
        return 0.0, len(gaps)
    return sum(gaps) / len(gaps), len(gaps)


def _combined(c: Candidate, shift: float, public_rows: int) -> tuple[float, int]:
    parts = []
    if c.val_accuracy is not None and c.val_rows > 0:
        parts.append((c.val_accuracy + shift, c.val_rows))
    if c.public_score is not None:
        parts.append((c.public_score, public_rows))
    rows = sum(n for _, n in parts)
    return sum(x * n for x, n in parts) / rows, rows


def estimate(candidates: list[Candidate], public_rows: int) -> tuple[list[Estimate], list[list[float]], dict]:
    """Every candidate's shrunk estimate, their correlation matrix, and the quantities behind them."""
    shift, shift_runs = validation_shift(candidates)
    combined = [_combined(c, shift, public_rows) for c in candidates]
    xs = [x for x, _ in combined]
    noise = [_clamp(x) * (1 - _clamp(x)) / rows for x, rows in combined]
    k = len(candidates)
    rho = [[1.0] * k for _ in range(k)]
    for i in range(k):
        for j in range(i + 1, k):
            pi, pj = candidates[i].predictions, candidates[j].predictions
            d = pi.disagreement(pj) if pi is not None and pj is not None else None
            rho[i][j] = rho[j][i] = correlation(xs[i], xs[j], d)
    mu = sum(xs) / k
    info = {"shift": shift, "shift_runs": shift_runs, "mu": mu, "tau": None, "spread": None, "noise": None}
    if k < MIN_RUNS_TO_SHRINK:
        estimates = [Estimate(c.run, x, rows, x, math.sqrt(s2), 0.0) for c, (x, rows), s2 in zip(candidates, combined, noise)]
    else:
        spread = sum((x - mu) ** 2 for x in xs) / (k - 1)
        # Runs scored on the same rows err together; only the part of their noise that differs spreads them out.
        mean_rho = sum(rho[i][j] for i in range(k) for j in range(k) if i != j) / (k * (k - 1))
        independent_noise = sum(noise) / k * (1 - mean_rho)
        tau2 = max(spread - independent_noise, MIN_TAU**2)
        info.update(tau=math.sqrt(tau2), spread=math.sqrt(spread), noise=math.sqrt(max(independent_noise, 0.0)))
        # The mean itself is measured: its noise is shared by the runs as far as they err together.
        mu_var = sum(noise) / k * (mean_rho + (1 - mean_rho) / k) + tau2 / k
        estimates = []
        for c, (x, rows), s2 in zip(candidates, combined, noise):
            b = tau2 / (tau2 + s2)
            estimates.append(Estimate(c.run, x, rows, mu + b * (x - mu), math.sqrt(b * s2 + (1 - b) ** 2 * mu_var), 1 - b))
    return estimates, rho, info


# -- the picks ---------------------------------------------------------------------------------------------


def _max_moments(m1: float, v1: float, m2: float, v2: float, cov: float) -> tuple[float, float, float]:
    """Mean and variance of max(X1, X2) for jointly normal X1, X2 (Clark 1961), and P(X1 > X2)."""
    a2 = v1 + v2 - 2 * cov
    if a2 <= 1e-18:
        return (m1, v1, 1.0) if m1 >= m2 else (m2, v2, 0.0)
    a = math.sqrt(a2)
    alpha = (m1 - m2) / a
    p1, p2, density = _NORMAL.cdf(alpha), _NORMAL.cdf(-alpha), _NORMAL.pdf(alpha)
    mean = m1 * p1 + m2 * p2 + a * density
    second = (m1 * m1 + v1) * p1 + (m2 * m2 + v2) * p2 + (m1 + m2) * a * density
    return mean, max(second - mean * mean, 0.0), p1


def choose(candidates: list[Candidate], public_rows: int, private_rows: int, n: int = 3) -> PickResult:
    """Propose `n` picks from `candidates` (see the module docstring for the model); no files are read."""
    if not candidates:
        raise KitError("no runs to pick from", hint="kit submit RUN first, or kit pick --include-unsubmitted")
    if any(c.public_score is not None for c in candidates) and public_rows <= 0:
        raise ConfigError("the public split's size is unknown, so public scores cannot be weighed", hint="set public_rows under [competition] in kit.toml")
    estimates, rho, info = estimate(candidates, public_rows)
    # What a run's private score may turn out to be: its estimate's uncertainty plus the private split's own noise.
    var = [e.sd**2 + _clamp(e.mean) * (1 - _clamp(e.mean)) / max(private_rows, 1) for e in estimates]
    k = len(candidates)
    cov = [[effective_correlation(rho, i, j) * math.sqrt(var[i] * var[j]) for j in range(k)] for i in range(k)]
    by_estimate = sorted(range(k), key=lambda i: (-estimates[i].mean, -estimates[i].combined, candidates[i].run))
    public_rank = {i: r + 1 for r, i in enumerate(sorted((i for i in range(k) if candidates[i].public_score is not None), key=lambda i: -candidates[i].public_score))}

    first = by_estimate[0]
    chosen = [first]
    best_mean, best_var, best_cov = estimates[first].mean, var[first], list(cov[first])
    picks = [Pick(1, candidates[first], estimates[first], best_mean, 0.0, _first_reasons(candidates, estimates, info, first, public_rank, public_rows))]
    while len(chosen) < min(n, k):
        options = []
        for j in by_estimate:
            if j in chosen:
                continue
            mean, new_var, p_old = _max_moments(best_mean, best_var, estimates[j].mean, var[j], best_cov[j])
            options.append((mean, j, new_var, p_old))
        mean, j, new_var, p_old = max(options, key=lambda o: (o[0], estimates[o[1]].mean))
        passed_over = [i for i in by_estimate if i not in chosen and estimates[i].mean > estimates[j].mean]
        reasons = _next_reasons(candidates, estimates, rho, chosen, j, mean - best_mean, passed_over, public_rank)
        best_cov = [best_cov[i] * p_old + cov[j][i] * (1 - p_old) for i in range(k)]
        picks.append(Pick(len(chosen) + 1, candidates[j], estimates[j], mean, mean - best_mean, reasons))
        chosen.append(j)
        best_mean, best_var = mean, new_var
    skipped_notes = _notes(candidates, info, public_rows)
    return PickResult(picks, [estimates[i] for i in by_estimate], skipped_notes, public_rows=public_rows, private_rows=private_rows)


def effective_correlation(rho: list[list[float]], i: int, j: int) -> float:
    """The correlation the picks are chosen with: a pair's own if they are near-duplicates, else the typical pair's.

    In simulation (bench/pick_simulation.py), trading estimate for small differences in correlation lost on
    average: a disagreement measured on the test rows also reflects how each run did on them, and the estimates
    are noisier than their stated sd. Near-duplicates (correlation >= NEAR_DUPLICATE: a later phase, a threshold
    variant, a resubmission) are what wastes a final slot, so only they are kept apart."""
    if i == j:
        return 1.0
    if rho[i][j] >= NEAR_DUPLICATE:
        return rho[i][j]
    k = len(rho)
    return min(_median([rho[a][b] for a in range(k) for b in range(a + 1, k)]), NEAR_DUPLICATE)


def _median(values: list[float]) -> float:
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _scores_text(c: Candidate, info: dict, public_rows: int) -> str:
    parts = []
    if c.val_accuracy is not None and c.val_rows > 0:
        shifted = f", {info['shift'] * 100:+.2f} pts to the public scale" if info["shift"] else ""
        parts.append(f"validation {_pct(c.val_accuracy)} on {c.val_rows} rows{shifted}")
    if c.public_score is not None:
        parts.append(f"public {_pct(c.public_score)} on {public_rows} rows")
    return " and ".join(parts)


def _first_reasons(candidates, estimates, info, i, public_rank, public_rows) -> list[str]:
    c, e = candidates[i], estimates[i]
    low, high = e.interval
    reasons = [f"best estimate of true accuracy: {_pct(e.mean)} (95% {_pct(low)}..{_pct(high)})"]
    reasons.append(f"combined {_pct(e.combined)} from {_scores_text(c, info, public_rows)}, weighted by rows")
    if info["tau"] is not None:
        reasons.append(
            f"shrunk {e.shrink:.0%} toward the runs' mean {_pct(info['mu'])}: scores spread {info['spread'] * 100:.2f} pts, "
            f"noise alone {info['noise'] * 100:.2f} pts, so part of the lead of the best of {len(candidates)} is luck"
        )
    if c.public_score is not None and public_rank.get(i, 0) > 1:
        reasons.append(f"public rank {public_rank[i]} of {len(public_rank)}: the public split alone would rank it lower")
    reasons.extend(_warnings(c))
    return reasons


def _next_reasons(candidates, estimates, rho, chosen, j, gain, passed_over, public_rank) -> list[str]:
    c, e = candidates[j], estimates[j]
    low, high = e.interval
    reasons = [f"raises the expected best private score of the picks by {gain * 100:+.3f} pts; estimate {_pct(e.mean)} (95% {_pct(low)}..{_pct(high)})"]
    for i in chosen:
        d = _disagreement(candidates[i], c)
        overlap = f"disagrees with {candidates[i].run} on {d:.1%} of test rows" if d is not None else f"no test predictions to compare with {candidates[i].run}"
        reasons.append(f"{overlap} (correlation {rho[i][j]:.2f})")
    for i in passed_over[:2]:
        closest = max(chosen, key=lambda k: rho[k][i])
        reasons.append(
            f"chosen over {candidates[i].run} (estimate {_pct(estimates[i].mean)}), whose private score would move with "
            f"{candidates[closest].run}'s (correlation {rho[closest][i]:.2f})"
        )
    if c.public_score is not None:
        reasons.append(f"public {_pct(c.public_score)}, rank {public_rank[j]} of {len(public_rank)}")
    reasons.extend(_warnings(c))
    return reasons


def _warnings(c: Candidate) -> list[str]:
    out = []
    if c.public_score is None:
        out.append("never submitted: no public score; submit it before choosing it as a final")
    if c.threshold_tuned and c.val_accuracy is not None:
        out.append("its threshold was tuned on the validation rows, so its validation accuracy is a little optimistic")
    if c.private_score is not None:
        out.append(f"private score (known now): {_pct(c.private_score)}")
    return out


def _disagreement(a: Candidate, b: Candidate) -> float | None:
    return a.predictions.disagreement(b.predictions) if a.predictions is not None and b.predictions is not None else None


def _notes(candidates, info, public_rows) -> list[str]:
    notes = []
    if info["shift_runs"] >= 2:
        notes.append(f"public scores run {info['shift'] * 100:+.2f} pts from validation on average over {info['shift_runs']} runs; validation is shifted by that")
    if info["tau"] is None:
        notes.append(f"only {len(candidates)} runs: too few to tell true differences from noise, so scores are not shrunk")
    missing = [c.run for c in candidates if c.predictions is None]
    if missing:
        notes.append(f"no test predictions for {', '.join(missing)}: their overlap with other picks is assumed (correlation {UNKNOWN_CORRELATION})")
    return notes


# -- the workspace -----------------------------------------------------------------------------------------


def read_predictions(folder: Path) -> TestPredictions | None:
    """A run's predicted test labels: submission.csv (what is scored), else test_probs.csv at 0.5; None if neither."""
    for name, column, is_true in (
        ("submission.csv", "is_correct", lambda v: v.strip().lower() in ("true", "1")),
        ("test_probs.csv", "prob_true", lambda v: float(v) >= 0.5),
    ):
        path = folder / name
        if not path.is_file():
            continue
        try:
            with open(path, newline="", encoding="utf-8") as fh:
                rows = sorted((row["ID"], is_true(row[column])) for row in csv.DictReader(fh))
        except (KeyError, ValueError):  # not the binary is_correct file: no labels to compare
            return None
        bits = 0
        for i, (_, value) in enumerate(rows):
            if value:
                bits |= 1 << i
        return TestPredictions(tuple(r for r, _ in rows), bits)
    return None


def load_candidates(ws: Workspace, include_unsubmitted: bool = False, only: set[str] | None = None) -> tuple[list[Candidate], list[Skipped]]:
    """Every complete run with a scored submission (or, if asked, with a validation score) as a Candidate;
    with `only`, just those runs (the others are not considered, nor listed as skipped)."""
    from kit.leaderboard.sheet import read_metrics
    from kit.task import run_metric

    candidates, skipped = [], []
    for record in store.all_runs(ws):
        if only is not None and record.id not in only:
            continue
        if record.status is not KernelStatus.COMPLETE:
            skipped.append(Skipped(record.id, f"{record.status.value}, not complete"))
            continue
        scored = [s for s in record.submissions if s.status == "complete" and s.public_score is not None]
        sub = scored[-1] if scored else None
        metrics = read_metrics(ws, record.id)
        val, val_rows = run_metric(metrics, ws.task), int(metrics.get("val_rows") or 0)
        if sub is None and not include_unsubmitted:
            skipped.append(Skipped(record.id, "no scored submission (kit submit, or --include-unsubmitted)"))
            continue
        if sub is None and (val is None or val_rows == 0):
            skipped.append(Skipped(record.id, f"neither a public score nor a validation {ws.task.metric}"))
            continue
        candidates.append(Candidate(
            run=record.id,
            val_accuracy=val if val_rows else None,
            val_rows=val_rows,
            public_score=sub.public_score if sub else None,
            private_score=sub.private_score if sub else None,
            submission_ref=sub.ref if sub else "",
            predictions=read_predictions(store.run_dir(ws, record.id)),
            threshold_tuned=str(record.config.get("threshold", "")) == "tune",
        ))
    return candidates, skipped


def pick(ws: Workspace, n: int | None = None, include_unsubmitted: bool = False, only: set[str] | None = None) -> PickResult:
    """Propose the workspace's final submissions (n defaults to kit.toml's final_picks), among `only` if given."""
    candidates, skipped = load_candidates(ws, include_unsubmitted, only)
    if not candidates:
        raise KitError("no run has a scored submission to pick", hint="kit submit RUN, then kit scores; or kit pick --include-unsubmitted")
    public_rows, private_rows = ws.split_sizes()
    if private_rows is None:
        test_rows = next((len(c.predictions.ids) for c in candidates if c.predictions is not None), 0)
        private_rows = max(test_rows - public_rows, 0) or public_rows
    if ws.task.metric != "accuracy":
        result = choose_ranked(candidates, ws.task.metric, ws.task.higher_is_better, n or ws.final_picks)
    else:
        result = choose(candidates, public_rows, private_rows, n or ws.final_picks)
    return PickResult(result.picks, result.estimates, result.notes, skipped, public_rows, private_rows, result.metric)


def choose_ranked(candidates: list[Candidate], metric: str, higher_is_better: bool, n: int = 3) -> PickResult:
    """Picks for a task scored by another metric than accuracy: the binomial model of `choose` does not hold for it,
    so runs are ranked by their public score, else their validation score (`val_accuracy` holds the task's
    metric), best first in the metric's direction (lower log loss is better), without shrinkage."""
    if not candidates:
        raise KitError("no runs to pick from", hint="kit submit RUN first, or kit pick --include-unsubmitted")
    sign = 1.0 if higher_is_better else -1.0
    direction = "higher" if higher_is_better else "lower"

    def score(c: Candidate) -> tuple[float, int]:
        return (c.public_score, 0) if c.public_score is not None else (c.val_accuracy, c.val_rows)  # type: ignore[return-value]

    def number(c: Candidate) -> int:  # ties: the earlier run (run-9 before run-10)
        found = store.RUN_ID.match(c.run)
        return int(found.group(1)) if found else 0

    ranked = sorted(candidates, key=lambda c: (c.public_score is None, -sign * score(c)[0], number(c)))
    public = [c for c in ranked if c.public_score is not None]
    estimates = [Estimate(c.run, score(c)[0], score(c)[1], score(c)[0], 0.0, 0.0) for c in ranked]
    picks, best = [], None
    for rank, (c, e) in enumerate(zip(ranked[:n], estimates[:n]), start=1):
        if c.public_score is not None:
            reasons = [f"public {metric} {c.public_score:.5f}, rank {public.index(c) + 1} of {len(public)}"]
        else:
            reasons = [f"validation {metric} {c.val_accuracy:.5f} on {c.val_rows} rows (no public score)"]
        if c.val_accuracy is not None and c.public_score is not None:
            reasons.append(f"validation {metric} {c.val_accuracy:.5f} on {c.val_rows} rows")
        value = e.mean if best is None else (max if higher_is_better else min)(best, e.mean)
        picks.append(Pick(rank, c, e, value, 0.0 if best is None else abs(value - best), reasons))
        best = value
    notes = [f"{metric}: {direction} is better; runs are ranked by public score, else validation (kit's shrunk estimates "
             "and diversity model are for accuracy)"]
    return PickResult(picks, estimates, notes, metric=metric)


def mark(ws: Workspace, result: PickResult) -> list[str]:
    """Write the picks' ranks into leaderboard.csv's `final` column, clearing earlier marks; returns the runs marked."""
    from kit.leaderboard import sheet

    header, rows = sheet.load_table(ws)
    chosen = {p.candidate.run: str(p.rank) for p in result.picks}
    changes = {r["run"]: {"final": ""} for r in rows if r.get("final") and r["run"] not in chosen}
    changes.update({run: {"final": rank} for run, rank in chosen.items()})
    sheet.update(ws.leaderboard_path, changes, add_columns=sheet.MARK_COLUMNS)
    return list(chosen)


def submissions_url(ws: Workspace) -> str:
    """The competition's page where final submissions are selected by hand."""
    return f"https://www.kaggle.com/competitions/{ws.competition}/submissions"
