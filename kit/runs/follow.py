"""What a running kernel's log says about how far it is: the train kernel's step lines, read back by kit so that a
wait off a terminal and `kit status` can say more than `running`.

The kernel logs `step S/T (global G) loss L lr X tokens/s Y elapsed Es` every logging_steps (kernels/runtime/fit.py);
rows per second and the time left come from those figures and the run's batch settings.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Any, Mapping

from kit.progress import clock

STEP_LINE = re.compile(r"\bstep (\d+)/(\d+) \(global \d+\) loss (\S+) lr \S+ tokens/s \S+ elapsed ([0-9.]+)s")
EVERY_ENV = "KIT_PROGRESS_EVERY"
DEFAULT_EVERY = 60.0


def line_interval() -> float:
    """Seconds between progress lines while a wait is followed off a terminal: $KIT_PROGRESS_EVERY, else a minute."""
    try:
        seconds = float(os.environ.get(EVERY_ENV, "") or DEFAULT_EVERY)
    except ValueError:
        return DEFAULT_EVERY
    return seconds if math.isfinite(seconds) and seconds > 0 else DEFAULT_EVERY


@dataclass(frozen=True)
class TrainingProgress:
    """The last training step a kernel logged."""

    step: int
    steps: int  # of this phase
    loss: float
    elapsed: float  # seconds of training when it was logged
    rows_per_step: int | None  # batch_size x grad_accum, where the run's settings say

    @property
    def rows_per_second(self) -> float | None:
        if not self.rows_per_step or self.elapsed <= 0:
            return None
        return self.step * self.rows_per_step / self.elapsed

    @property
    def seconds_left(self) -> float | None:
        """Training time left at the pace so far (validation and prediction come after it)."""
        if self.step <= 0 or self.elapsed <= 0:
            return None
        return self.elapsed / self.step * max(0, self.steps - self.step)

    def line(self) -> str:
        """`step 10/40, loss 0.6931, 1.7 rows/s, training about 08:30 left`."""
        parts = [f"step {self.step}/{self.steps}", f"loss {self.loss:.4f}"]
        if self.rows_per_second is not None:
            parts.append(f"{self.rows_per_second:.1f} rows/s")
        if self.seconds_left is not None:
            parts.append("training done" if self.step >= self.steps else f"training about {clock(self.seconds_left)} left")
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "steps": self.steps, "loss": self.loss, "elapsed_s": self.elapsed,
                "rows_per_s": None if self.rows_per_second is None else round(self.rows_per_second, 3),
                "seconds_left": None if self.seconds_left is None else round(self.seconds_left, 1)}


def last_progress(log: str, config: Mapping[str, Any]) -> TrainingProgress | None:
    """The last step line of a kernel's log, or None before the first one (or for a kernel that trains nothing)."""
    found = None
    for found in STEP_LINE.finditer(log):
        pass
    if found is None:
        return None
    step, steps, loss, elapsed = found.groups()
    try:
        loss_value = float(loss)
    except ValueError:
        loss_value = math.nan
    batch, accum = config.get("batch_size"), config.get("grad_accum")
    rows = batch * accum if isinstance(batch, int) and isinstance(accum, int) else None
    return TrainingProgress(int(step), int(steps), loss_value, float(elapsed), rows)
