"""Exactly once: a push or a submission is written down before it is sent, and after any doubt kit asks the
backend what happened before it acts on the run again.

A GPU session and a day's submission are what a Kaggle user has least of, so neither may happen twice nor be
credited to the wrong run. The run's record gets a `pending` Intent (kit/runs/store.py: the file's sha256 and size, the
time, the kernel version before a push) before the request goes out. When the answer is lost (a timeout, a 5xx,
a dropped connection, an empty reply: OutcomeUnknownError; Ctrl-C; a crash) the intent stays, and kit reconciles:

- a submission: the competition's submissions since the intent's time whose file name and size are the intent's,
  whose description starts with the run's tag (`kit run-3 1a2b3c4d`: the run and the file's hash, never the
  description alone) and whose ref no run has recorded yet;
- a push: the kernel's current version, against the version before the push.

What is found is recorded, never sent again. Kaggle may process a request long after the client gave up on it
(20-120 s later, issue 25), so what is not found yet is not sent again while it may still land: for the backend's
settle window after the lost answer (`settle_seconds`; 5 minutes on Kaggle) the intent stays `unresolved`, one
command looks for it for `look_seconds` at most, then says what it waits for and the command that looks again;
`kit submit --again` sends it anyway. Once the window has passed, what is still not found was not spent and may be
sent again. While the backend cannot be asked the intent stays `unresolved` too, `kit status` shows it with the
command that resolves it, and nothing is sent for that run until it is resolved.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, TypeVar

from kit.backends.base import Backend, SubmissionResult
from kit.errors import Interrupted, KitError, OutcomeUnknownError
from kit.leaderboard import sheet
from kit.runs import store
from kit.runs.store import Intent, KernelStatus, RunRecord, SubmissionRecord
from kit.workspace.layout import Workspace

T = TypeVar("T")
Say = Callable[[str], None]

# This machine's clock and the competition's may disagree; a submission this much older than the intent still
# counts as a candidate (the run's tag, the file's size and an uncredited ref still have to match).
CLOCK_SLACK = timedelta(minutes=10)
ATTEMPTS = 3  # sends of one request, each after a reconciliation found that the previous one did not happen


def submission_tag(run_id: str, sha256: str) -> str:
    """The start of every description kit sends for `run_id`'s file: it names the run and the file."""
    return f"kit {run_id} {sha256[:8]}"


def submission_description(run_id: str, sha256: str, message: str) -> str:
    """What the competition shows for the submission: the run's tag, then the user's message."""
    tag = submission_tag(run_id, sha256)
    return f"{tag}: {message}" if message else tag


def _parse_time(value: str) -> datetime | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)  # Kaggle's dates are UTC without a zone


KIT_TAG = re.compile(r"^kit (run-\d+) ([0-9a-f]{8})(:|$)")


def owns(run_id: str, sub: SubmissionRecord, result: SubmissionResult, instance: str) -> bool:
    """Whether `result` (a submission as the competition lists it now, in competition instance `instance`) is the
    submission `sub` of run `run_id` records. The ref must match, and so must the instance the record names. A
    record from before instances were kept is matched by what the submission says of itself: kit's tag (this run
    and this file) where it has one, else its date."""
    if sub.ref != result.ref:
        return False
    if sub.competition and instance:
        return sub.competition == instance
    tagged = KIT_TAG.match(result.description.strip())
    if tagged:
        return tagged.group(1) == run_id and tagged.group(2) == sub.file_sha256[:8]
    return not (sub.date and result.date) or _parse_time(sub.date) == _parse_time(result.date)


def credited_to(records: list[RunRecord], result: SubmissionResult, instance: str) -> str:
    """The run of `records` (store.all_runs: an unreadable record cannot credit anything) that has recorded `result`
    already, or ""."""
    for record in records:
        if any(owns(record.id, sub, result, instance) for sub in record.submissions):
            return record.id
    return ""


def matching_submissions(ws: Workspace, backend: Backend, intent: Intent, run_id: str) -> list[SubmissionResult]:
    """The competition's submissions that are this intent's (see the module docstring), oldest first."""
    since = (_parse_time(intent.at) or datetime.now(timezone.utc)) - CLOCK_SLACK
    tag = submission_tag(run_id, intent.sha256)
    instance = backend.competition_instance()
    if intent.competition and instance and intent.competition != instance:
        return []  # the competition it was sent to was replaced since: nothing of it can be found in this one
    runs = store.all_runs(ws)
    found = []
    for sub in backend.submissions():
        description = sub.description.strip()
        if not (description == tag or description.startswith(tag + ":")) or credited_to(runs, sub, instance):
            continue
        if sub.file_name and intent.file and sub.file_name != intent.file:
            continue
        if sub.size is not None and intent.size and sub.size != intent.size:
            continue
        when = _parse_time(sub.date)
        if when is None or when < since:
            continue
        found.append(sub)
    return sorted(found, key=lambda s: (_parse_time(s.date) or since, s.ref))


def pushed_version(backend: Backend, intent: Intent) -> int | None:
    """The kernel version the intent's push made, or None if the kernel is where it was before."""
    if not intent.target:
        raise OutcomeUnknownError(
            "the push's kernel is not known, so kit cannot ask whether it started",
            hint="look at your kernels on https://www.kaggle.com/code before pushing again",
        )
    version = backend.kernel_version(intent.target, seen=intent.version_before is not None)
    if version is None or (intent.version_before is not None and version <= intent.version_before):
        return None
    return version


def settled_at(backend: Backend, intent: Intent) -> datetime:
    """When the intent's request can no longer land: the settle window after its answer was lost, where that is
    known (the client's timeout can outlast the window), else after it was sent."""
    since = _parse_time(intent.lost_at) or _parse_time(intent.at) or datetime.now(timezone.utc)
    return since + timedelta(seconds=backend.settle_seconds)


def _clock(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%H:%M:%S UTC")


def _look(backend: Backend, intent: Intent, find: Callable[[], T | None], say: Say, patient: bool = True) -> T | None:
    """`find()`; while nothing is there and the request may still land (`settled_at`), look again every few
    seconds, for `backend.look_seconds` at most (`patient`; else once)."""
    found = find()
    if found or not patient:
        return found
    now = datetime.now(timezone.utc)
    until = min(settled_at(backend, intent), now + timedelta(seconds=backend.look_seconds))
    left = (until - now).total_seconds()
    if left <= 0:
        return found
    say(f"not there yet; looking again for up to {left:.0f}s, in case the request is still landing")
    every = min(10.0, max(0.1, backend.look_seconds / 6))
    while (left := (until - datetime.now(timezone.utc)).total_seconds()) > 0:
        time.sleep(min(every, left))
        found = find()
        if found:
            return found
    return found


def _waiting(ws: Workspace, backend: Backend, run_id: str, intent: Intent) -> KitError:
    """Leave the intent unresolved while its request may still land, and the one line that says what kit waits for."""
    what = "submission" if intent.action == "submit" else "push"
    until = settled_at(backend, intent)
    _unresolved(ws, run_id, intent, f"its answer was lost; waiting for {backend.name} to show it, until {_clock(until)}")
    again = "; kit submit --again sends it anyway" if intent.action == "submit" else ""
    return KitError(
        f"{run_id}: {backend.name} does not show the {what} yet and it may still land (until {_clock(until)}): "
        f"waiting for it; nothing is sent again before then",
        hint=f"{resolving_command(run_id, intent)} looks again and records it once it shows{again}",
    )


def _finder(ws: Workspace, backend: Backend, run_id: str, intent: Intent) -> Callable[[], Any]:
    if intent.action == "submit":
        return lambda: matching_submissions(ws, backend, intent, run_id)
    return lambda: pushed_version(backend, intent)


def _set_pending(ws: Workspace, run_id: str, intent: Intent | None) -> RunRecord:
    def change(record: RunRecord) -> None:
        record.pending = intent

    return store.update(ws, run_id, change)


def resolving_command(run_id: str, intent: Intent) -> str:
    """The command that resolves an unresolved intent (it asks the backend again first)."""
    return f"kit submit {run_id}" if intent.action == "submit" else f"kit status {run_id}"


def spend(ws: Workspace, backend: Backend, run_id: str, intent: Intent, act: Callable[[], T], say: Say) -> tuple[T | None, Any]:
    """Record `intent` on the run, then `act()` (the request that spends); after a lost answer, reconcile and
    send again only when nothing happened. Returns (act's answer, None) or (None, what reconciliation found:
    the submissions or the kernel version). The caller records the outcome and clears the intent.

    Ctrl-C leaves the intent pending and says which command resolves it; a definite refusal clears it.
    """
    _set_pending(ws, run_id, intent)
    what = "submission" if intent.action == "submit" else "push"
    try:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return act(), None
            except OutcomeUnknownError as exc:
                lost = exc
                intent.lost_at = datetime.now(timezone.utc).isoformat()
                _set_pending(ws, run_id, intent)  # the window runs from here, for a later command too
            except KitError:
                _set_pending(ws, run_id, None)  # a definite refusal: nothing was spent
                raise
            say(f"{run_id}: {lost.message}; asking {backend.name} whether the {what} went through")
            try:
                found = _look(backend, intent, _finder(ws, backend, run_id, intent), say)
            except KitError as failed:
                _unresolved(ws, run_id, intent, f"{lost.message}; then {failed.message}")
                raise KitError(
                    f"{run_id}: the {what} may have gone through, and {backend.name} cannot be asked now ({failed.message})",
                    hint=f"{resolving_command(run_id, intent)} asks again before sending anything",
                ) from None
            if found:
                return None, found
            if datetime.now(timezone.utc) < settled_at(backend, intent):
                raise _waiting(ws, backend, run_id, intent)
            if attempt == ATTEMPTS:
                _set_pending(ws, run_id, None)
                again = f"kit submit {run_id}" if intent.action == "submit" else "kit push-kernel"
                raise KitError(
                    f"{run_id}: the {what} failed {ATTEMPTS} times ({lost.message}); {backend.name} shows that none went through",
                    hint=f"nothing was spent; try again later: {again}",
                )
            say(f"{run_id}: it did not go through; sending it again ({attempt + 1} of {ATTEMPTS})")
    except KeyboardInterrupt:
        _unresolved(ws, run_id, intent, "interrupted (Ctrl-C) while it was being sent")
        raise Interrupted(
            f"interrupted: {run_id}'s {what} may or may not have gone through",
            hint=f"{resolving_command(run_id, intent)} asks {backend.name} first and records it if it did; it never sends it twice",
        ) from None
    raise AssertionError("unreachable")  # pragma: no cover


def _unresolved(ws: Workspace, run_id: str, intent: Intent, why: str) -> None:
    intent.unresolved = why
    _set_pending(ws, run_id, intent)


# -- a later command finds an intent -----------------------------------------------------------------------------


def record_found_submissions(ws: Workspace, run_id: str, intent: Intent, found: list[SubmissionResult]) -> RunRecord:
    """Credit `found` (the intent's submissions) to the run, once each, and clear the intent."""

    def change(record: RunRecord) -> None:
        for sub in found:
            if any(owns(run_id, s, sub, intent.competition) for s in record.submissions):
                continue
            record.submissions.append(
                SubmissionRecord(ref=sub.ref, date=sub.date or intent.at, message=intent.message, file_sha256=intent.sha256,
                                 status=sub.status, public_score=sub.public_score, private_score=sub.private_score, error=sub.error,
                                 kernel=intent.target,  # a code submission's kernel version
                                 competition=intent.competition)
            )
        record.pending = None

    return store.update(ws, run_id, change)


def resolve(ws: Workspace, backend: Backend, run_id: str, say: Say, send_anyway: bool = False, patient: bool = True) -> RunRecord:
    """If the run has a pending intent, ask the backend what happened and record it (the submission found, the
    kernel started), or clear it when nothing happened. Raises a KitError (the intent stays, marked unresolved)
    when the backend cannot be asked, or when nothing shows yet but the request may still land, unless
    `send_anyway` (the user's --again: the intent is cleared). Not `patient` (kit status, over every run): one look,
    no waiting for a request that may still land. Callers hold the run's action lock."""
    record = store.load(ws, run_id)
    intent = record.pending
    if intent is None:
        return record
    what = "submission" if intent.action == "submit" else "push"
    say(f"{run_id}: a {what} from {intent.at} was left unfinished ({intent.unresolved or 'kit stopped before its answer'}); asking {backend.name} what happened")
    try:
        found = _look(backend, intent, _finder(ws, backend, run_id, intent), say, patient)
    except KitError as exc:
        _unresolved(ws, run_id, intent, exc.message)
        raise KitError(
            f"{run_id}: cannot tell whether the {what} from {intent.at} went through: {exc.message}",
            hint=f"{resolving_command(run_id, intent)} asks again; nothing is sent for {run_id} until then",
        ) from None
    if not found and datetime.now(timezone.utc) < settled_at(backend, intent):
        if not send_anyway:
            raise _waiting(ws, backend, run_id, intent)
        say(f"{run_id}: --again: not waiting for the {what} from {intent.at} any longer; it may still land as well")
        return _set_pending(ws, run_id, None)
    if intent.action == "submit":
        if found:
            refs = ", ".join(s.ref for s in found)
            say(f"{run_id}: it went through as submission {refs}; recorded, not submitted again")
            record = record_found_submissions(ws, run_id, intent, found)
            sheet.sync(ws, [record])
            return record
        say(f"{run_id}: it never reached {backend.name}; nothing was spent")
        return _set_pending(ws, run_id, None)

    def change(record: RunRecord) -> None:
        record.pending = None
        if found:
            record.remote = intent.target
            record.message = ""
        elif not record.remote:
            record.status, record.finished = KernelStatus.ERROR, store.now()
            record.message = "push interrupted before the backend started it; nothing runs (push a new run)"

    if found:
        say(f"{run_id}: it did start {intent.target} (version {found}); recorded, not pushed again")
    else:
        say(f"{run_id}: it never started on {backend.name}; nothing runs")
    record = store.update(ws, run_id, change)
    sheet.sync(ws, [record])
    return record


def describe(run_id: str, intent: Intent) -> str:
    """One line for kit status: what is pending and the command that resolves it."""
    what = f"submission of {intent.file}" if intent.action == "submit" else f"push of {intent.target or 'the kernel'}"
    why = intent.unresolved or "in flight, or kit stopped before its answer"
    return f"unresolved {what} from {intent.at} ({why}): {resolving_command(run_id, intent)} resolves it"
