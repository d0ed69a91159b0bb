"""The Backend contract: a handful of methods that local processes and Kaggle both implement."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path

from kit.runs import KernelStatus, RunRecord


# What `kit pull` fetches by default on every backend: what a person reads or submits (plus the log);
# the adapter and checkpoints only with --all.
DEFAULT_OUTPUTS = frozenset({"submission.csv", "test_probs.csv", "val_predictions.csv", "metrics.json", "config.json"})


@dataclass(frozen=True)
class KernelState:
    """A kernel's state as the backend reports it."""

    status: KernelStatus
    message: str = ""  # the failure message on error
    gpu: str = ""


@dataclass(frozen=True)
class SubmissionResult:
    """A submission as the competition reports it."""

    ref: str
    status: str  # pending | complete | error
    public_score: float | None = None
    private_score: float | None = None
    date: str = ""
    description: str = ""
    error: str = ""


class Backend(abc.ABC):
    """Where kernels run and where submissions go."""

    name: str = ""
    # How long `wait` may sleep between polls at most, and whether reading the log is cheap enough to show
    # its last line while waiting.
    max_poll_seconds: float = 30.0
    live_logs: bool = False
    # Things the user should know that did not stop a call (the CLI prints them after each command).
    warnings: list[str]

    @abc.abstractmethod
    def push(self, run: RunRecord, kernel_dir: Path) -> str:
        """Start the built kernel in `kernel_dir` for `run`; return its remote reference. Returns as soon as
        the kernel is queued; never waits for it to finish."""

    @abc.abstractmethod
    def status(self, run: RunRecord) -> KernelState:
        """The kernel's current state; cheap enough to poll."""

    @abc.abstractmethod
    def logs(self, run: RunRecord) -> str:
        """The kernel's log so far (stdout and stderr); empty if none yet."""

    @abc.abstractmethod
    def download(self, run: RunRecord, dest: Path, all_files: bool = False) -> list[str]:
        """Copy the kernel's outputs into `dest` and return their names (relative paths). By default only the
        files a user needs (submission, probabilities, metrics, config, log); all of them with `all_files`."""

    @abc.abstractmethod
    def cancel(self, run: RunRecord) -> None:
        """Stop the kernel; return silently if it has already ended."""

    @abc.abstractmethod
    def sample_submission(self) -> Path:
        """A local copy of the competition's sample_submission.csv (fetched once and cached where remote)."""

    @abc.abstractmethod
    def submit(self, file: Path, message: str) -> SubmissionResult:
        """Submit a validated file to the competition; return the submission as first reported."""

    @abc.abstractmethod
    def submissions(self) -> list[SubmissionResult]:
        """Every submission of this competition by this user, with current scores."""

    @abc.abstractmethod
    def submissions_left_today(self) -> int | None:
        """Submissions still allowed today, or None if the backend cannot tell."""
