"""The table of `kit pick` against the top public scores in bench/RESULTS.md, from tests/pick_simulation.py's model.

    python bench/pick_simulation.py                 # the scenarios of bench/RESULTS.md
    python bench/pick_simulation.py --trials 500 --val-rows 5000 --public-rows 1000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.pick_simulation import FAMILY, Outcome, Scenario, simulate  # noqa: E402

SIZES = [(300, 1000, 1000), (1000, 1000, 1000), (5000, 1000, 1000), (5000, 500, 1500), (20000, 2500, 7500)]
SCENARIOS = [Scenario(v, p, q, kind=kind) for kind in ("recipes", "variants", "near-duplicates") for v, p, q in SIZES]


def table(outcomes: list[Outcome]) -> str:
    """The outcomes as a markdown table, scores in percent."""
    lines = [
        "| runs | val rows | public rows | private rows | kit pick (best of 3) | top-3 public (best of 3) | kit - top-3 (± 1 s.e.) | top-3 estimates, no diversity | kit first pick | top-1 public | top-3 true |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for o in outcomes:
        s = o.scenario
        lines.append(
            f"| {s.kind} | {s.val_rows} | {s.public_rows} | {s.private_rows} | {100 * o.kit_best_of_picks:.3f} | {100 * o.top3_public:.3f} "
            f"| {100 * o.diff_mean:+.3f} ± {100 * o.diff_se:.3f} | {100 * o.top3_estimates:.3f} | {100 * o.kit_first_pick:.3f} | {100 * o.top1_public:.3f} | {100 * o.top3_true:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-rows", type=int)
    parser.add_argument("--public-rows", type=int)
    parser.add_argument("--private-rows", type=int)
    parser.add_argument("--kind", choices=sorted(FAMILY), default="recipes")
    args = parser.parse_args()
    scenarios = SCENARIOS
    if args.val_rows or args.public_rows or args.private_rows:
        public = args.public_rows or 1000
        scenarios = [Scenario(args.val_rows or 1000, public, args.private_rows or public, kind=args.kind)]
    print(table([simulate(s, args.trials, args.seed) for s in scenarios]))


if __name__ == "__main__":
    main()
