"""The Backend contract: a handful of methods that local processes and Kaggle both implement."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from kit.workspace.competition import CompetitionInfo
from kit.errors import BackendError
from kit.runs.store import KernelStatus, RunRecord


# What `kit pull` fetches by default on every backend: what a person reads or submits (plus the log);
# the adapter and checkpoints only with --all.
DEFAULT_OUTPUTS = frozenset({"submission.csv", "test_probs.csv", "val_predictions.csv", "metrics.json", "config.json", "plan.json",
                             "submission.parquet"})  # the gateway's file, where an inference server's local gateway wrote it


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
    file_name: str = ""  # the uploaded file's name as the competition lists it ("" where it does not say)
    size: int | None = None  # its size in bytes (None where the competition does not say)


@dataclass(frozen=True)
class Quota:
    """This week's GPU hours and today's submissions, on a backend that meters GPU time."""

    gpu_hours_used: float
    gpu_hours_total: float
    refresh: str  # when the weekly GPU quota resets, ISO-8601, or ""
    submissions_left_today: int | None

    @property
    def gpu_hours_left(self) -> float:
        return max(0.0, self.gpu_hours_total - self.gpu_hours_used)


@dataclass(frozen=True)
class BoardEntry:
    """One team on the competition's public board (Kaggle's, or the practice competition's)."""

    rank: int
    team: str
    score: float | None
    date: str = ""
    you: bool = False


@dataclass(frozen=True)
class DataFile:
    """One file of the competition's data, as the competition lists it."""

    name: str
    size: int  # bytes; 0 where the competition does not say
    created: str = ""


@dataclass(frozen=True)
class Check:
    """One line of `kit doctor`: what was checked, whether it passed, and the fix if not."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


class Backend(abc.ABC):
    """Where kernels run and where submissions go.

    The abstract methods are what every backend does. The attributes and the methods with a body below them are
    optional capabilities: their defaults say "not supported" (or give the cautious value), a backend that has one
    overrides it, and code that needs to know what a backend can do asks them, never the backend's name.
    """

    name: str = ""
    # How long `wait` may sleep between polls at most, and whether reading the log is cheap enough to show
    # its last line while waiting.
    max_poll_seconds: float = 30.0
    live_logs: bool = False
    # After a lost answer to a push or a submission, how long the request may still land on the backend: until
    # then kit never sends it again (it looks for its effect; kit/runs/intent.py). `look_seconds`: how long one
    # command keeps looking before it leaves the request unresolved and says what it waits for.
    settle_seconds: float = 0.0
    look_seconds: float = 0.0
    # How many kernels one account may run at once: a sweep keeps this many going unless told otherwise.
    max_concurrent_kernels: int = 1
    # How often a loop following many kernels (a sweep) asks each for its state; each ask is a call to the backend.
    sweep_poll_seconds: float = 30.0
    # Whether the backend meters GPU time, so that `quota()` can say how much is left (a sweep checks its
    # estimate against it before spending any).
    has_quota: bool = False
    # Whether kernels run on this machine (so that what they import can be checked here before they start).
    runs_here: bool = False
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
    def download(self, run: RunRecord, dest: Path, all_files: bool = False, on_bytes: Callable[[int], None] | None = None) -> list[str]:
        """Copy the kernel's outputs into `dest` and return their names (relative paths). By default only the
        files a user needs (submission, probabilities, metrics, config, log); all of them with `all_files`.
        `on_bytes(n)` is told of each chunk written (for a progress bar)."""

    @abc.abstractmethod
    def cancel(self, run: RunRecord) -> None:
        """Stop the kernel; return silently if it has already ended."""

    @abc.abstractmethod
    def sample_submission(self) -> Path:
        """A local copy of the competition's sample_submission.csv (fetched once and cached where remote)."""

    @abc.abstractmethod
    def submit(self, file: Path, message: str) -> SubmissionResult:
        """Submit a validated file to the competition; return the submission as first reported."""

    def competition_info(self) -> CompetitionInfo:
        """Whether the competition is a code competition (and its rerun time limit); a file competition unless the
        backend knows better."""
        return CompetitionInfo(slug="")

    def submit_code(self, run: RunRecord, file_name: str, message: str) -> SubmissionResult:
        """Submit the run's kernel (its pushed version) to a code competition, which reruns it on the hidden test
        set and scores the `file_name` it writes; return the submission as first reported (usually pending)."""
        raise BackendError(f"the {self.name} backend cannot make code submissions", hint="use the kaggle or local backend")

    @abc.abstractmethod
    def submissions(self) -> list[SubmissionResult]:
        """Every submission of this competition by this user, with current scores."""

    def competition_instance(self) -> str:
        """The competition that `submissions()` refs belong to: a ref names one submission only within it (a
        practice competition made again starts its refs at 1). Each recorded submission keeps it, and a record takes
        scores only from its own instance. "" where the backend cannot tell instances apart."""
        return ""

    def gateway_modules(self) -> list[str] | None:
        """The inference-server modules of the competition's kaggle_evaluation package (aimo_3_inference_server, ...):
        [] where its files ship none, None where the backend cannot tell."""
        return None

    def doctor(self) -> list[Check]:
        """What `kit doctor` checks that only this backend knows (credentials, the competition, quota), one Check a
        line; only what the backend needs (the local backend needs no Kaggle credentials)."""
        return []

    def kernel_image(self, run: RunRecord) -> str:
        """The image the run's kernel ran on, where the backend knows one ("" otherwise)."""
        return ""

    @abc.abstractmethod
    def submissions_left_today(self) -> int | None:
        """Submissions still allowed today, or None if the backend cannot tell."""

    # The competition's board and data: not abstract, so a backend without them says so in one line.

    def board(self, team: str = "") -> list[BoardEntry]:
        """The competition's public board, best first, with this user's team marked `you`."""
        raise BackendError(f"the {self.name} backend has no public board", hint="kit submissions lists your own scores")

    def data_files(self) -> list[DataFile]:
        """The competition's data files."""
        raise BackendError(f"the {self.name} backend cannot list the competition's data", hint="see the competition's data page")

    def download_data(self, name: str, dest: Path, on_bytes: Callable[[int], None] = lambda n: None) -> Path:
        """Download one data file into folder `dest` (never half a file under its name); `on_bytes(n)` is told of
        each chunk written (n < 0 when a retry starts the file again). Returns the file's path."""
        raise BackendError(f"the {self.name} backend cannot download the competition's data", hint="see the competition's data page")
    # Reconciling a push whose answer was lost (kit/runs/intent.py): where it goes, and what is there now.

    def push_target(self, run: RunRecord, kernel_dir: Path) -> str:
        """The remote reference a push of `kernel_dir` for `run` creates or updates; "" where it cannot be known
        before the push (then a lost push cannot be reconciled and is reported as unresolved)."""
        return ""

    def kernel_version(self, remote: str, seen: bool = False) -> int | None:
        """The current version of the kernel at `remote`, or None if there is no such kernel. `seen`: the kernel had
        a version when kit last looked (so not finding it now is a failure, not news)."""
        return None

    def pushed_remote(self, run: RunRecord, kernel_dir: Path) -> str:
        """The remote of `run` if a push of `kernel_dir` reached the backend although the run's record does not say
        so (kit stopped mid-push, before it saved the answer), else "". Raises BackendError when the backend cannot
        tell: pushing again could then start a second session. By default, the push's target (`push_target`) if
        the backend has a kernel there (`kernel_version`): "" where the target cannot be known."""
        target = self.push_target(run, kernel_dir)
        return target if target and self.kernel_version(target) is not None else ""

    # GPU quota: only where `has_quota`.

    def quota(self) -> Quota:
        """GPU hours used and allowed this week, and today's submissions left."""
        raise BackendError(f"the {self.name} backend has no GPU quota", hint="kit quota shows the submissions left today")
