"""Submit a run's submission.csv: validate, check the day's limit and duplicates, submit, record the score."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Callable

from kit.backends.base import Backend, SubmissionResult
from kit.errors import KitError, StoppedFollowing, SubmissionError, SubmissionLimitError
from kit.fileio import within
from kit.leaderboard import sheet
from kit.runs import intent, store
from kit.runs.lifecycle import pull
from kit.runs.store import Intent, KernelStatus, RunRecord, SubmissionRecord
from kit.submissions import code_checks
from kit.submissions.validate import ValidSubmission, validate_gateway_output, validate_submission, values_for
from kit.workspace.competition import CompetitionInfo
from kit.workspace.layout import Workspace

SUBMISSION_FILE = "submission.csv"


@dataclass(frozen=True)
class SubmitPlan:
    """What is about to be submitted, shown to the user before the daily submission is spent."""

    record: RunRecord
    valid: ValidSubmission
    left_today: int | None
    code: CompetitionInfo | None = None  # a code competition: the run's kernel is submitted, not the file
    note: str = ""  # what the user should read before confirming (code competitions: what will be rerun)
    file_name: str = SUBMISSION_FILE  # the file scored: the task's, or its gateway's in server mode


def prepare(ws: Workspace, backend: Backend, run_id: str, allow_resubmit: bool = False) -> SubmitPlan:
    """Validate the run's file and check it may be submitted; nothing is sent."""
    record = store.load(ws, run_id)
    info = backend.competition_info()
    code = info if info.code else None
    if code:
        code_checks.check_kernel(ws, record, code)  # before the outputs are fetched or anything is spent
    task = ws.task
    name = task.submitted_file  # the task's file (submission.csv unless [task] names another), or its gateway's
    if task.served:
        code_checks.check_served(ws, record, info)
    path = store.run_dir(ws, record.id) / name
    if not path.is_file() and record.status is KernelStatus.COMPLETE:
        pull(ws, backend, record)
    if not path.is_file():
        raise SubmissionError(f"{record.id} has no {name} ({record.status.value})", hint=f"kit pull {record.id}, or kit status {record.id}")
    if not within(path, ws.root):  # refused before it is read: nothing of a file outside the workspace is shown
        raise SubmissionError(f"{path} is a link to a file outside the workspace; kit reads and uploads only files inside it",
                              hint=f"copy the file into {path.parent} in its place; nothing was submitted")
    if task.served:
        # The run's own local-gateway output, checked like any submission (the rerun's is written by the gateway).
        valid = validate_gateway_output(path, backend.sample_submission(), task)
    else:
        # The file kit uploads is its own normalized copy (the sample's spelling, no blank lines); the run's file stays.
        # A code competition scores what the kernel writes on its rerun, so there the file must need no normalizing.
        upload_dir = None if code else ws.state_dir / "uploads" / record.id
        values = None if ws.task_table is None else values_for(run_task(ws, record))
        valid = validate_submission(path, backend.sample_submission(), upload_dir=upload_dir, values=values)
    sheet.check(ws)  # the write after the submission must not be the first to find leaderboard.csv unreadable
    note = ""
    if code:
        note = code_checks.describe(record, code, code_checks.check_time(ws, record, code), path)
    earlier = _earlier(record, valid.sha256, backend.competition_instance())
    if earlier and not allow_resubmit:
        raise SubmissionError(
            f"{record.id}'s {name} was already submitted as {earlier[-1].ref} on {earlier[-1].date}",
            hint="pass --again to spend another submission on the same file, or kit scores to refresh its score",
        )
    left = backend.submissions_left_today()
    if left is not None and left <= 0:
        raise SubmissionLimitError("no submissions left today", hint="try again after 00:00 UTC; kit runs shows what is scored")
    return SubmitPlan(record, valid, left, code=code, note=note, file_name=name)


def run_task(ws: Workspace, record: RunRecord):
    """The workspace's task with its labels known: as [task] lists them, else the classes the run's metrics.json
    says it learned (labels = "from_train")."""
    from kit.leaderboard.sheet import read_metrics
    from kit.task import TaskError

    task = ws.task
    if task.labels is not None:
        return task
    classes = read_metrics(ws, record.id).get("classes")
    if not classes:
        raise SubmissionError(f"{record.id}'s metrics.json does not say the task's classes (labels = \"from_train\")",
                              hint=f"kit pull {record.id}, or list them: labels = [...] under [task.target] in kit.toml")
    try:
        return task.with_labels(classes)
    except TaskError as exc:
        raise SubmissionError(exc.problem, hint=exc.fix) from None


def _earlier(record: RunRecord, sha256: str, instance: str) -> list[SubmissionRecord]:
    """The run's submissions of this very file to this competition (one replaced by `kit practice init --force` does
    not count; a record that does not say which counts), that did not fail."""
    return [s for s in record.submissions if s.file_sha256 == sha256 and s.status != "error" and s.competition in ("", instance)]


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def submit(ws: Workspace, backend: Backend, plan: SubmitPlan, message: str, allow_resubmit: bool = False,
           say: Callable[[str], None] = _say) -> SubmissionRecord:
    """Submit the planned file exactly once and record it in the run record and leaderboard.csv.

    Under the run's action lock (a second `kit submit` of the run waits, then sees this one's submission): an
    earlier submission left unfinished is reconciled first, the duplicate check is made again, and the intent is
    recorded before anything is sent (kit/runs/intent.py)."""
    run_id = plan.record.id
    valid = plan.valid
    with store.action(ws, run_id, "submit"):
        left = store.load(ws, run_id).pending
        before = {(s.ref, s.competition) for s in store.load(ws, run_id).submissions}
        record = intent.resolve(ws, backend, run_id, say, send_anyway=allow_resubmit)
        instance = backend.competition_instance()  # the refs it answers with are this instance's
        if left is not None and left.action == "submit" and left.sha256 == valid.sha256:
            landed = [s for s in record.submissions if (s.ref, s.competition) not in before and s.file_sha256 == valid.sha256]
            if landed:  # the interrupted submission of this very file went through: that was the one asked for
                return landed[-1]
        earlier = _earlier(record, valid.sha256, instance)
        if earlier and not allow_resubmit:
            raise SubmissionError(
                f"{record.id}'s {plan.file_name} was already submitted as {earlier[-1].ref} on {earlier[-1].date}",
                hint="pass --again to spend another submission on the same file, or kit scores to refresh its score",
            )
        description = intent.submission_description(record.id, valid.sha256, message)
        if plan.code:
            # A code competition reruns the run's kernel on the hidden test set and scores the file it writes there;
            # the submission lists that output's name, not a size kit knows.
            planned = Intent(action="submit", at=store.now(), file=plan.file_name, sha256=valid.sha256, description=description,
                             message=message, target=code_checks.kernel_ref(record), competition=instance)

            def act() -> SubmissionResult:
                return backend.submit_code(record, plan.file_name, description)
        else:
            planned = Intent(action="submit", at=store.now(), file=valid.path.name, sha256=valid.sha256,
                             size=valid.path.stat().st_size, description=description, message=message, competition=instance)

            def act() -> SubmissionResult:
                return backend.submit(valid.path, description)

        answer, found = intent.spend(ws, backend, record.id, planned, act, say)
        results: list[SubmissionResult] = [answer] if answer is not None else list(found)
        record = intent.record_found_submissions(ws, record.id, planned, results)
    sheet.sync(ws, [record])
    return next(s for s in reversed(record.submissions) if s.ref == results[-1].ref)


def refresh_scores(ws: Workspace, backend: Backend) -> list[RunRecord]:
    """Update every run's submissions (status, public and private score) from the competition.

    A record takes the scores of its own submission only: the ref in the competition instance it was made in
    (intent.owns). After `kit practice init --force` the new competition's refs start at 1 again, and the old runs
    keep the scores they had. Each run is re-read and written under its record's lock, so a submission recorded
    meanwhile by a parallel `kit submit` is kept."""
    by_ref: dict[str, SubmissionResult] = {s.ref: s for s in backend.submissions()}
    instance = backend.competition_instance()
    changed: list[RunRecord] = []

    def apply(record: RunRecord) -> bool:
        dirty = False
        for sub in record.submissions:
            fresh = by_ref.get(sub.ref)
            if fresh is None or not intent.owns(record.id, sub, fresh, instance):
                continue
            if not sub.competition and instance:  # an older record, matched by its tag or date: it names its instance now
                sub.competition, dirty = instance, True
            new = (fresh.status, fresh.public_score, fresh.private_score, fresh.error or sub.error)
            if new != (sub.status, sub.public_score, sub.private_score, sub.error):
                sub.status, sub.public_score, sub.private_score, sub.error = new
                dirty = True
        return dirty

    for record in store.all_runs(ws):
        if apply(record):  # a copy: only runs with news are re-read and written under the lock
            changed.append(store.update(ws, record.id, apply))
    sheet.sync(ws)
    return changed


def wait_for_score(
    ws: Workspace, backend: Backend, run_id: str, ref: str, timeout: float = 600, poll: float = 5.0, sleep: Callable[[float], None] = time.sleep
) -> SubmissionRecord:
    """Poll until submission `ref` of `run_id` is scored (or failed), showing the wait on stderr."""
    from kit import progress

    deadline = time.monotonic() + timeout
    with progress.waiting(f"{run_id} submission {ref}") as shown:
        if not progress.bars_enabled():
            shown.write(f"{run_id} submission {ref}: waiting for its score (up to {progress.clock(timeout)}; Ctrl-C stops waiting, kit scores fetches it later)")
        try:
            return _poll_score(ws, backend, run_id, ref, deadline, poll, sleep, shown)
        except KeyboardInterrupt:
            shown.stop()
            raise StoppedFollowing(
                f"{run_id} submission {ref}: kit stopped waiting for its score after {progress.clock(shown.elapsed)}; "
                "the submission was made and is scored without kit", hint="kit scores fetches its score; kit status lists it as pending until then",
            ) from None


def _poll_score(ws: Workspace, backend: Backend, run_id: str, ref: str, deadline: float, poll: float, sleep: Callable[[float], None],
                shown) -> SubmissionRecord:
    """Refresh the scores until submission `ref` of `run_id` is scored or failed, or the deadline passes."""
    from kit import progress

    while True:
        refresh_scores(ws, backend)
        sub = next(s for s in reversed(store.load(ws, run_id).submissions) if s.ref == ref)
        if sub.status in ("complete", "error"):
            score = "" if sub.public_score is None else f", public {sub.public_score:.5f}"
            shown.done(f"{run_id} submission {ref}: {sub.status}{score} after {progress.clock(shown.elapsed)}")
            return sub
        if time.monotonic() > deadline:
            shown.fail("not scored yet")
            raise KitError(f"submission {ref} not scored after {shown.elapsed:.0f}s (--timeout)", hint="kit scores refreshes it later; --timeout SECONDS waits longer")
        shown.note(f"{sub.status}, scored in a few minutes usually")
        sleep(max(0.0, min(poll, deadline - time.monotonic())) + 0.01)  # the last look at the deadline, not past it
