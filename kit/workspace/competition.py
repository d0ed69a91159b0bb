"""What kind of competition the workspace's is: a file competition (a CSV is uploaded) or a code competition
(the notebook itself is submitted, and the competition reruns it on a hidden test set with the internet off).

Kaggle says which in the `isKernelsSubmissionsOnly` field of its competition record (ListCompetitions); the
practice competition says it in its competition.json. The answer does not change during a competition, so the
Kaggle backend caches it under .kit/kaggle/<competition>/competition.json.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from kit.fileio import atomic_write_json

# Kaggle's API gives no rerun time limit; its code competitions state one in their rules, most often 9 hours for a
# CPU or GPU notebook. kit.toml's [competition] rerun_hours overrides it for a competition that says otherwise.
DEFAULT_RERUN_HOURS = 9.0
CACHE_FILE = "competition.json"


@dataclass(frozen=True)
class CompetitionInfo:
    """The facts of a competition that change how kit submits to it."""

    slug: str
    code: bool = False  # submissions are notebooks, rerun on the hidden test set with the internet off
    rerun_hours: float = DEFAULT_RERUN_HOURS  # how long one rerun may take (code competitions)
    source: str = ""  # where the facts came from, for kit doctor

    @property
    def rerun_seconds(self) -> float:
        return self.rerun_hours * 3600


def read_cache(folder: Path) -> CompetitionInfo | None:
    """The cached facts in `folder`, or None when there are none (or they cannot be read: they are fetched again)."""
    try:
        data = json.loads((Path(folder) / CACHE_FILE).read_text(encoding="utf-8"))
        return CompetitionInfo(slug=str(data["slug"]), code=bool(data["code"]), rerun_hours=float(data["rerun_hours"]),
                               source=str(data.get("source", "")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_cache(folder: Path, info: CompetitionInfo) -> None:
    atomic_write_json(Path(folder) / CACHE_FILE, asdict(info))
