"""Submit a run's submission.csv: validate, check the day's limit and duplicates, submit, record the score."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from kit import code_submission, leaderboard, runs
from kit.backends import Backend, SubmissionResult
from kit.competition import CompetitionInfo
from kit.errors import KitError, SubmissionError, SubmissionLimitError
from kit.push import pull
from kit.runs import KernelStatus, RunRecord, SubmissionRecord
from kit.submission import ValidSubmission, validate_submission
from kit.workspace import Workspace

SUBMISSION_FILE = "submission.csv"


@dataclass(frozen=True)
class SubmitPlan:
    """What is about to be submitted, shown to the user before the daily submission is spent."""

    record: RunRecord
    valid: ValidSubmission
    left_today: int | None
    code: CompetitionInfo | None = None  # a code competition: the run's kernel is submitted, not the file
    note: str = ""  # what the user should read before confirming (code competitions: what will be rerun)


def prepare(ws: Workspace, backend: Backend, run_id: str, allow_resubmit: bool = False) -> SubmitPlan:
    """Validate the run's file and check it may be submitted; nothing is sent."""
    record = runs.load(ws, run_id)
    info = backend.competition_info()
    code = info if info.code else None
    if code:
        code_submission.check_kernel(ws, record, code)  # before the outputs are fetched or anything is spent
    path = runs.run_dir(ws, record.id) / SUBMISSION_FILE
    if not path.is_file() and record.status is KernelStatus.COMPLETE:
        pull(ws, backend, record)
    if not path.is_file():
        raise SubmissionError(f"{record.id} has no {SUBMISSION_FILE} ({record.status.value})", hint=f"kit pull {record.id}, or kit status {record.id}")
    # The file kit uploads is its own normalized copy (the sample's spelling, no blank lines); the run's file stays.
    # A code competition scores what the kernel writes on its rerun, so there the file must need no normalizing.
    upload_dir = None if code else ws.state_dir / "uploads" / record.id
    valid = validate_submission(path, backend.sample_submission(), upload_dir=upload_dir)
    leaderboard.check(ws)  # the write after the submission must not be the first to find leaderboard.csv unreadable
    note = ""
    if code:
        note = code_submission.describe(record, code, code_submission.check_time(ws, record, code), path)
    earlier = [s for s in record.submissions if s.file_sha256 == valid.sha256 and s.status != "error"]
    if earlier and not allow_resubmit:
        raise SubmissionError(
            f"{record.id}'s {SUBMISSION_FILE} was already submitted as {earlier[-1].ref} on {earlier[-1].date}",
            hint="pass --again to spend another submission on the same file, or kit scores to refresh its score",
        )
    left = backend.submissions_left_today()
    if left is not None and left <= 0:
        raise SubmissionLimitError("no submissions left today", hint="try again after 00:00 UTC; kit leaderboard shows what is scored")
    return SubmitPlan(record, valid, left, code=code, note=note)


def submit(ws: Workspace, backend: Backend, plan: SubmitPlan, message: str) -> SubmissionRecord:
    """Submit the planned file and record the submission in the run record and leaderboard.csv."""
    record = runs.load(ws, plan.record.id)  # re-read: another kit may have written it since prepare()
    # The default description is unique per file, so a lost answer can be matched to its submission.
    description = message or f"kit {record.id} {plan.valid.sha256[:8]}"
    if plan.code:
        # A code competition reruns the run's kernel on the hidden test set and scores the file it writes there.
        result = backend.submit_code(record, SUBMISSION_FILE, description)
    else:
        result = backend.submit(plan.valid.path, description)
    sub = SubmissionRecord(
        ref=result.ref,
        date=result.date or runs.now(),
        message=message,
        file_sha256=plan.valid.sha256,
        status=result.status,
        public_score=result.public_score,
        private_score=result.private_score,
        error=result.error,
        kernel=code_submission.kernel_ref(record) if plan.code else "",
    )
    record.submissions.append(sub)
    runs.save(ws, record)
    leaderboard.sync(ws, [record])
    return sub


def refresh_scores(ws: Workspace, backend: Backend) -> list[RunRecord]:
    """Update every run's submissions (status, public and private score) from the competition."""
    by_ref: dict[str, SubmissionResult] = {s.ref: s for s in backend.submissions()}
    changed: list[RunRecord] = []
    for record in runs.all_runs(ws):
        dirty = False
        for sub in record.submissions:
            fresh = by_ref.get(sub.ref)
            if fresh is None:
                continue
            new = (fresh.status, fresh.public_score, fresh.private_score, fresh.error or sub.error)
            if new != (sub.status, sub.public_score, sub.private_score, sub.error):
                sub.status, sub.public_score, sub.private_score, sub.error = new
                dirty = True
        if dirty:
            runs.save(ws, record)
            changed.append(record)
    leaderboard.sync(ws)
    return changed


def wait_for_score(
    ws: Workspace, backend: Backend, run_id: str, ref: str, timeout: float = 600, poll: float = 5.0, sleep: Callable[[float], None] = time.sleep
) -> SubmissionRecord:
    """Poll until submission `ref` of `run_id` is scored (or failed)."""
    deadline = time.monotonic() + timeout
    while True:
        refresh_scores(ws, backend)
        sub = next(s for s in runs.load(ws, run_id).submissions if s.ref == ref)
        if sub.status in ("complete", "error"):
            return sub
        if time.monotonic() > deadline:
            raise KitError(f"submission {ref} not scored after {timeout:.0f}s", hint="kit scores refreshes it later")
        sleep(poll)
