"""The statistics kit's tables and picks share: how far a score measured on a number of rows can be trusted."""

from __future__ import annotations

import math

# The two-sided 95% quantile of the standard normal.
Z95 = 1.959964


def wilson_interval(accuracy: float, rows: int, z: float = Z95) -> tuple[float, float]:
    """The 95% Wilson interval of an accuracy measured on `rows` rows."""
    if rows <= 0:
        raise ValueError("an interval needs at least one row")
    p = min(max(accuracy, 0.0), 1.0)
    denom = 1 + z * z / rows
    centre = (p + z * z / (2 * rows)) / denom
    half = z * math.sqrt(p * (1 - p) / rows + z * z / (4 * rows * rows)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)
