"""The Kaggle backend: kernels pushed, polled and pulled, submissions sent and listed, through a KaggleSession
(session.py), the one way kit talks to Kaggle. The competition's board and data are in competition.py."""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from kit.backends.base import DEFAULT_OUTPUTS, Backend, BoardEntry, DataFile, KernelState, Quota, SubmissionResult
from kit.backends.kaggle import competition as kaggle_competition
from kit.backends.kaggle.session import KaggleSession, NothingDone, competition_url, split_ref
from kit.build.script import TITLE_MAX
from kit.errors import AuthError, BackendError, ConfigError, OutcomeUnknownError, SessionLimitError, SubmissionError
from kit.fileio import atomic_write_json, atomic_write_text
from kit.runs.store import KernelStatus, RunRecord
from kit.workspace.competition import DEFAULT_RERUN_HOURS, CompetitionInfo, read_cache, write_cache
from kit.workspace.layout import Workspace

METADATA_FILE = "kernel-metadata.json"
# Owners the builder writes when it does not know the Kaggle username yet.
PLACEHOLDER_OWNERS = frozenset({"", "USERNAME", "INSERT_USERNAME", "{username}", "<username>"})
LOG_FILE = "kernel.log"
RETIRED_SHAPES = {"NvidiaTeslaP100": "the P100 cannot run the current Kaggle image (its CUDA dropped sm_60); use NvidiaTeslaT4"}
GPU_SESSION_LIMIT = "Maximum batch GPU session count"
# How Kaggle answers a read of a kernel that does not exist: 403 (it hides whether a name exists), or 404.
NOT_FOUND = (403, 404)

# What each machine shape runs on (Kaggle's status answer names no GPU).
SHAPE_GPUS = {
    "NvidiaTeslaT4": "Tesla T4 x2",
    "NvidiaTeslaP100": "Tesla P100",
    "NvidiaL4": "L4 x4",
    "NvidiaL4X1": "L4",
    "NvidiaTeslaA100": "A100",
    "NvidiaH100": "H100",
    "None": "cpu",
}


def kernel_status(value: Any) -> KernelStatus:
    """kit's KernelStatus for one of Kaggle's KernelWorkerStatus names."""
    name = getattr(value, "name", str(value)).upper()
    return {
        "QUEUED": KernelStatus.QUEUED,
        "NEW_SCRIPT": KernelStatus.QUEUED,
        "RUNNING": KernelStatus.RUNNING,
        "COMPLETE": KernelStatus.COMPLETE,
        "ERROR": KernelStatus.ERROR,
        "CANCEL_REQUESTED": KernelStatus.CANCELLED,
        "CANCEL_ACKNOWLEDGED": KernelStatus.CANCELLED,
    }.get(name, KernelStatus.RUNNING)


def log_text(raw: str) -> str:
    """A Kaggle kernel log (a JSON array of {stream_name, time, data}) as plain text; other text as it is."""
    if not raw.lstrip().startswith("["):
        return raw
    try:
        entries = json.loads(raw)
    except json.JSONDecodeError:
        return raw
    return "".join(str(e.get("data", "")) for e in entries if isinstance(e, dict))


def _score(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _submission(sub: Any) -> SubmissionResult:
    status = getattr(sub.status, "name", str(sub.status)).lower()
    date = sub.date.isoformat() if getattr(sub, "date", None) else ""
    return SubmissionResult(
        ref=str(sub.ref),
        status=status,
        public_score=_score(sub.public_score),
        private_score=_score(sub.private_score),
        date=date,
        description=sub.description or "",
        error=sub.error_description or "",
        file_name=getattr(sub, "file_name", "") or "",
        size=int(sub.total_bytes) if getattr(sub, "total_bytes", None) else None,
    )


def _slugify(title: str) -> str:
    from slugify import slugify  # python-slugify, a dependency of the kaggle client; the client checks with it

    return slugify(title)


class KaggleBackend(Backend):
    """Kernels run on Kaggle's GPUs; submissions go to the workspace's competition."""

    name = "kaggle"
    max_concurrent_kernels = 2  # Kaggle runs two GPU sessions at once per account
    sweep_poll_seconds = 30.0  # every poll is a call to Kaggle's API for each running kernel
    has_quota = True  # GPU hours a week

    def __init__(self, ws: Workspace, session: KaggleSession | None = None):
        self.ws = ws
        self.competition = ws.competition
        self.session = session or KaggleSession()
        self.warnings: list[str] = []  # things the user should know that did not stop the call (the CLI prints them)

    # -- kernels ------------------------------------------------------------------------------------------------

    def push(self, run: RunRecord, kernel_dir: Path) -> str:
        """Push the built kernel folder (script + kernel-metadata.json) as a new kernel; return `owner/slug`."""
        if run.remote:
            raise BackendError(
                f"{run.id} was already pushed as {run.remote}; pushing again would start a second paid session",
                hint=f"kit status {run.id}  (or push a new run)",
            )
        kernel_dir = Path(kernel_dir)
        meta_path = kernel_dir / METADATA_FILE
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{meta_path}: cannot read kernel metadata ({exc})", hint="kit build the kernel again") from None
        owner, slug = split_ref(str(meta.get("id", "")))
        user = owner
        if owner in PLACEHOLDER_OWNERS:
            user = self.ws.kaggle_username or self.session.username
            meta = self._fill_owner(meta, owner, user)
            atomic_write_json(meta_path, meta)
        if any(s.count("/") == 3 for s in meta.get("model_sources") or []):
            meta = dict(meta, model_sources=[self._with_version(s) for s in meta["model_sources"]])
            atomic_write_json(meta_path, meta)  # the run's record of its kernel says which version it got
        title = meta.get("title") or slug.replace("-", " ")
        if len(title) > TITLE_MAX:  # Kaggle answers a longer title with HTTP 500
            raise ConfigError(f"{meta_path}: title {title!r} is longer than Kaggle's {TITLE_MAX} characters", hint="kit build the kernel again")
        if _slugify(title) != slug:
            raise ConfigError(
                f"{meta_path}: title {title!r} does not slugify to {slug!r}; Kaggle would create a different kernel",
                hint="set the title to the slug's words, e.g. " + repr(slug.replace("-", " ")),
            )
        shape = meta.get("machine_shape") or ""
        if shape in RETIRED_SHAPES:
            self.warnings.append(f"machine_shape {shape}: {RETIRED_SHAPES[shape]}")
        timeout = meta.get("session_timeout_seconds")
        remote = f"{user}/{slug}"
        api = self.session.api

        # SaveKernel starts a paid session: it is never retried blindly. A lost answer raises OutcomeUnknownError
        # and the caller (kit/runs/intent.py) looks at the kernel's versions before anything is pushed again.
        response = self.session.call(
            f"push {remote}",
            lambda: api.kernels_push(str(kernel_dir), timeout=str(int(timeout)) if timeout else None),
            safe=False,
        )
        if not response.error and not response.ref and not getattr(response, "version_number", None):
            raise OutcomeUnknownError(f"push {remote}: Kaggle's answer was empty (no kernel, no version, no error)",
                                      hint="kit checks the kernel's versions before pushing again")
        if response.error:
            if GPU_SESSION_LIMIT in response.error:
                raise SessionLimitError(
                    f"Kaggle refused the push of {remote}: {response.error}",
                    hint="two GPU kernels are already running: wait for one (kit status) or stop it on kaggle.com/code",
                )
            raise BackendError(f"Kaggle refused the push of {remote}: {response.error}", hint="check the kernel metadata and sources; run kit doctor")
        invalid = {
            "dataset": response.invalid_dataset_sources,
            "competition": response.invalid_competition_sources,
            "kernel": response.invalid_kernel_sources,
            "model": response.invalid_model_sources,
        }
        bad = {k: list(v) for k, v in invalid.items() if v}
        if bad:
            names = "; ".join(f"{k} sources {', '.join(v)}" for k, v in bad.items())
            raise BackendError(
                f"Kaggle pushed {remote} but refused its {names}; the kernel will not find them",
                hint=f"check those sources exist and are yours or public, then push a new run (stop this one at {self.kernel_url(remote)})",
            )
        if response.ref and "/" in response.ref.strip("/"):
            ref = response.ref.strip("/").split("/")
            remote = f"{ref[-2]}/{ref[-1]}" if len(ref) >= 2 else remote
        # The version this push created: a code submission names it (start_run saves the record right after).
        run.remote_version = int(getattr(response, "version_number", 0) or 0)
        return remote

    def _with_version(self, handle: str) -> str:
        """`handle` with the version Kaggle mounts for it: its own, or the latest one (the client needs a version)."""
        if handle.count("/") != 3:
            return handle
        api = self.session.api
        url = f"https://www.kaggle.com/models/{'/'.join(handle.split('/')[:2])}"
        try:
            instance = self.session.call(f"model {handle}", lambda: api.model_instance_get(handle))
        except BackendError as exc:
            if "HTTP 404" not in exc.message:
                raise
            raise ConfigError(f"model {handle!r} is not on Kaggle (or not visible to you)", hint=f"check the handle on {url}") from None
        if not instance.version_number:
            raise ConfigError(f"model {handle!r} has no version on Kaggle yet", hint=f"check the handle on {url}")
        return f"{handle}/{instance.version_number}"

    def push_target(self, run: RunRecord, kernel_dir: Path) -> str:
        """The kernel (owner/slug) a push of `kernel_dir` creates, from its metadata, the owner filled in."""
        try:
            meta = json.loads((Path(kernel_dir) / METADATA_FILE).read_text(encoding="utf-8"))
            owner, slug = split_ref(str(meta.get("id", "")))
        except (OSError, ValueError, BackendError):
            return ""  # push() reports the bad metadata
        if owner in PLACEHOLDER_OWNERS:
            owner = self.ws.kaggle_username or self.session.username
        return f"{owner}/{slug}" if owner else ""

    def kernel_version(self, remote: str, seen: bool = False) -> int | None:
        """The kernel's current version number (GetKernel), or None if Kaggle has no such kernel.

        Kaggle hides whether a kernel exists: for one that does not it answers 403 ("Permission 'kernels.get' was
        denied"), as for one the credentials may not read (a private kernel without versions has answered 404;
        Kaggle/kaggle-cli#548, #538). So both mean "none yet" for a kernel kit has not `seen`; for one it has (it had
        a version), a 403 stays an access error with the credentials' hint."""
        from kagglesdk.kernels.types.kernels_api_service import ApiGetKernelRequest

        request = ApiGetKernelRequest()
        request.user_name, request.kernel_slug = split_ref(remote)
        try:
            response = self.session.send(f"kernel {remote}", request, "kernels.kernels_api_client", "get_kernel")
        except BackendError as exc:
            if getattr(exc, "http_status", None) in ((404,) if seen else NOT_FOUND):
                return None
            raise
        metadata = response.metadata
        return int(metadata.current_version_number or 0) if metadata is not None else None

    def pushed_remote(self, run: RunRecord, kernel_dir: Path) -> str:
        """The kernel its metadata names, if Kaggle has a session of it. An owner still a placeholder means the
        push never went out (push() fills it in before it sends anything); a 404 means Kaggle has no such kernel."""
        try:
            meta = json.loads((Path(kernel_dir) / METADATA_FILE).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return ""  # never built completely, so never pushed
        remote = str(meta.get("id", ""))
        if remote.partition("/")[0] in PLACEHOLDER_OWNERS:
            return ""
        try:
            self.status(dataclasses.replace(run, remote=remote))
        except BackendError as exc:
            if getattr(exc, "http_status", None) in NOT_FOUND:  # never recorded as pushed: a 403 is "none" too
                return ""
            raise  # unknown whether it runs: pushing again could start a second paid session
        return remote

    def doctor(self) -> list:
        """Credentials found and accepted, the competition's rules, its kind, GPU quota (kit/backends/kaggle/doctor.py)."""
        from kit.backends.kaggle.doctor import doctor

        return doctor(self.ws, self)

    @property
    def settle_seconds(self) -> float:  # type: ignore[override]
        return self.session.policy.settle

    @property
    def look_seconds(self) -> float:  # type: ignore[override]
        return self.session.policy.look

    @staticmethod
    def _fill_owner(meta: dict[str, Any], placeholder: str, user: str) -> dict[str, Any]:
        if not user:
            raise AuthError("no Kaggle username to own the kernel", hint="set username under [kaggle] in kit.toml")
        meta = dict(meta)
        meta["id"] = f"{user}/{meta['id'].partition('/')[2]}"
        for key in ("kernel_sources", "dataset_sources", "model_sources"):
            meta[key] = [
                f"{user}/{s.partition('/')[2]}" if s.partition("/")[0] == placeholder else s for s in meta.get(key) or []
            ]
        return meta

    @staticmethod
    def kernel_url(remote: str) -> str:
        """The kernel's page on kaggle.com."""
        return f"https://www.kaggle.com/code/{remote}"

    def _status_response(self, remote: str) -> Any:
        from kagglesdk.kernels.types.kernels_api_service import ApiGetKernelSessionStatusRequest

        request = ApiGetKernelSessionStatusRequest()
        request.user_name, request.kernel_slug = split_ref(remote)
        return self.session.send(f"status of {remote}", request, "kernels.kernels_api_client", "get_kernel_session_status")

    def kernel_image(self, run: RunRecord) -> str:
        """The image Kaggle ran the kernel on (GetKernel's metadata.dockerImage, as `kaggle kernels pull -m` writes it)."""
        from kagglesdk.kernels.types.kernels_api_service import ApiGetKernelRequest

        request = ApiGetKernelRequest()
        request.user_name, request.kernel_slug = split_ref(self._remote(run))
        response = self.session.send(f"kernel {run.remote}", request, "kernels.kernels_api_client", "get_kernel")
        return str(getattr(response.metadata, "docker_image", "") or "") if response.metadata is not None else ""

    def status(self, run: RunRecord) -> KernelState:
        """The kernel's state from GetKernelSessionStatus, with Kaggle's failure message on error."""
        response = self._status_response(self._remote(run))
        status = kernel_status(response.status)
        message = response.failure_message or "" if status is KernelStatus.ERROR else ""
        return KernelState(status=status, message=message, gpu=run.gpu or SHAPE_GPUS.get(run.config.get("machine_shape", ""), ""))

    def _remote(self, run: RunRecord) -> str:
        if not run.remote:
            raise BackendError(f"{run.id} has no Kaggle kernel yet", hint=f"kit status {run.id} says why; kit push-kernel {run.kernel} starts a new run")
        return run.remote

    def _output_page(self, remote: str, page_token: str, page_size: int) -> Any:
        from kagglesdk.kernels.types.kernels_api_service import ApiListKernelSessionOutputRequest

        request = ApiListKernelSessionOutputRequest()
        request.user_name, request.kernel_slug = split_ref(remote)
        request.page_size = page_size
        request.page_token = page_token
        return self.session.send(f"outputs of {remote}", request, "kernels.kernels_api_client", "list_kernel_session_output")

    def logs(self, run: RunRecord) -> str:
        """The kernel's log so far, as plain text."""
        return log_text(self._output_page(self._remote(run), "", 1).log or "")

    def output_files(self, run: RunRecord, page_size: int = 100) -> tuple[list[tuple[str, str]], str]:
        """Every output file of the kernel as (name, url), following all pages, and the log text."""
        remote = self._remote(run)
        files: list[tuple[str, str]] = []
        token, seen, log = "", set(), None
        while True:
            page = self._output_page(remote, token, page_size)
            if log is None:
                log = page.log or ""
            files += [(f.file_name, f.url) for f in page.files or [] if f.file_name and f.url]
            token = page.next_page_token or ""
            if not token:
                return files, log_text(log)
            if token in seen:
                raise BackendError(f"outputs of {remote}: Kaggle repeated page token {token!r}", hint="try again later")
            seen.add(token)

    def download(self, run: RunRecord, dest: Path, all_files: bool = False, on_bytes: Callable[[int], None] | None = None) -> list[str]:
        """Download the kernel's outputs into `dest`; files already there are kept, partial ones resumed."""
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        files, log = self.output_files(run)
        names: list[str] = []
        for name, url in files:
            wanted = all_files or Path(name).name in DEFAULT_OUTPUTS or name.endswith(".log")
            if not wanted:
                continue
            target = (dest / name).resolve()
            if dest.resolve() not in target.parents:
                raise BackendError(f"Kaggle listed an output outside the folder: {name!r}", hint="download it by hand from the kernel's page")
            if not target.exists():
                self._fetch(url, target, name, on_bytes)
            names.append(name)
        if log:
            atomic_write_text(dest / LOG_FILE, log)
            names.append(LOG_FILE)
        return names

    def _fetch(self, url: str, target: Path, name: str, on_bytes: Callable[[int], None] | None = None) -> None:
        """Stream one output file into `target`, through `<target>.part` so an interruption leaves no half file
        under the real name; a later call resumes the part with a Range request where the server allows it."""
        import requests

        part = target.with_name(target.name + ".part")
        target.parent.mkdir(parents=True, exist_ok=True)

        def fetch() -> None:
            have = part.stat().st_size if part.exists() else 0
            headers = {"Range": f"bytes={have}-"} if have else {}
            with requests.get(url, headers=headers, stream=True, timeout=self.session.policy.timeout) as response:
                if response.status_code == 416:  # the part is already whole
                    return
                response.raise_for_status()
                mode = "ab" if have and response.status_code == 206 else "wb"
                with open(part, mode) as out:
                    try:
                        for chunk in response.iter_content(1 << 16):
                            out.write(chunk)
                            if on_bytes is not None:
                                on_bytes(len(chunk))
                    except requests.exceptions.ChunkedEncodingError as exc:  # the connection broke mid-file
                        raise requests.ConnectionError(f"{name}: {exc}") from None
            expected = response.headers.get("Content-Range", "").rpartition("/")[2] or response.headers.get("Content-Length")
            if expected and expected.isdigit() and part.stat().st_size != int(expected):
                raise requests.ConnectionError(f"{name}: got {part.stat().st_size} of {expected} bytes")

        self.session.call(f"download {name}", fetch, notice=False)
        os.replace(part, target)

    def cancel(self, run: RunRecord) -> None:
        """Kaggle's public API cannot stop a session started by a push (it needs a session id it never returns)."""
        if not run.remote:
            return
        if self.status(run).status.final:
            return
        raise BackendError(
            f"Kaggle's API cannot stop {run.remote}; it keeps using GPU time until it ends or times out",
            hint=f"stop it by hand: open {self.kernel_url(run.remote)}, then Edit > Cancel run (or Stop session)",
        )

    # -- competition ------------------------------------------------------------------------------------------------

    def sample_submission(self) -> Path:
        """The competition's sample_submission.csv, downloaded once into .kit/kaggle/<competition>/. Parallel
        commands take turns (a lock), and the file appears whole or not at all (downloaded aside, then renamed)."""
        import tempfile

        from kit.fileio import locked

        folder = self.ws.state_dir / "kaggle" / self.competition
        path = folder / "sample_submission.csv"
        if path.is_file():
            return path
        folder.mkdir(parents=True, exist_ok=True)
        with locked(path):
            if path.is_file():  # another kit fetched it while this one waited
                return path
            api = self.session.api
            with tempfile.TemporaryDirectory(prefix=".sample-", dir=folder) as tmp:
                self.session.call(
                    f"sample submission of {self.competition}",
                    lambda: api.competition_download_file(self.competition, "sample_submission.csv", path=tmp, force=True, quiet=True),
                    competition=self.competition,
                )
                got, zipped = Path(tmp) / "sample_submission.csv", Path(tmp) / "sample_submission.csv.zip"
                if not got.is_file() and zipped.is_file():
                    with zipfile.ZipFile(zipped) as archive:
                        archive.extract("sample_submission.csv", tmp)
                if got.is_file():
                    os.replace(got, path)
        if not path.is_file():
            raise BackendError(f"{self.competition} has no sample_submission.csv", hint=f"see the data tab at {competition_url(self.competition)}/data")
        return path

    def submit(self, file: Path, message: str) -> SubmissionResult:
        """Upload `file` in the client's three steps and create the submission. Never sent twice here: a lost
        answer raises OutcomeUnknownError, and the caller (kit/runs/intent.py) looks for it before sending it again."""
        file = Path(file)
        api = self.session.api

        def submit_once() -> Any:
            response = api.competition_submit(str(file), message, self.competition, quiet=True)
            if response.message == api.COMPETITION_SUBMIT_UPLOAD_FAILED_MESSAGE:
                # The blob upload failed, so nothing was created: a 503 lets `call` retry it.
                raise NothingDone(f"the upload of {file.name} failed, nothing was submitted")
            return response

        response = self.session.call(f"submit {file.name} to {self.competition}", submit_once, competition=self.competition, safe=False)
        if not response.ref:
            if not response.message:
                raise OutcomeUnknownError(f"submit {file.name}: Kaggle's answer was empty (no submission ref)",
                                          hint="kit looks for the submission before sending it again")
            raise SubmissionError(f"Kaggle did not accept {file.name}: {response.message}", hint="kit checked its format against the sample submission; Kaggle's message says what else it wants")
        return SubmissionResult(
            ref=str(response.ref),
            status="pending",
            date=datetime.now(timezone.utc).isoformat(),
            description=message,
            file_name=file.name,
            size=file.stat().st_size,
        )

    def competition_instance(self) -> str:
        """The competition's slug: Kaggle's submission refs are unique across competitions, never reused."""
        return self.competition

    def competition_info(self) -> CompetitionInfo:
        """Whether the competition is a code competition: Kaggle's `isKernelsSubmissionsOnly` in its ListCompetitions
        record, asked once and cached in .kit/kaggle/<competition>/; kit.toml's rerun_hours sets the rerun limit."""
        folder = self.ws.state_dir / "kaggle" / self.competition
        info = read_cache(folder)
        if info is None:
            info = CompetitionInfo(self.competition, code=self._is_code_competition(), rerun_hours=DEFAULT_RERUN_HOURS,
                                   source="Kaggle (isKernelsSubmissionsOnly)")
            write_cache(folder, info)
        if self.ws.rerun_hours:
            info = CompetitionInfo(info.slug, info.code, self.ws.rerun_hours, info.source)
        return info

    def _is_code_competition(self) -> bool:
        api = self.session.api
        response = self.session.call(
            f"competition {self.competition}",
            lambda: api.competitions_list(search=self.competition, category="all", page_size=100),
            competition=self.competition,
        )
        for comp in getattr(response, "competitions", None) or []:
            # `ref` is the slug, or the competition's URL on newer servers.
            if (comp.ref or "").rstrip("/").rpartition("/")[2] == self.competition:
                return bool(comp.is_kernels_submissions_only)
        raise BackendError(
            f"Kaggle lists no competition {self.competition!r}",
            hint=f"check the slug under [competition] in kit.toml against {competition_url(self.competition)}",
        )

    def submit_code(self, run: RunRecord, file_name: str, message: str) -> SubmissionResult:
        """Submit the run's kernel version to the code competition (CreateCodeSubmission): Kaggle reruns it on the
        hidden test set and scores the `file_name` it writes. Never creates the submission twice."""
        remote = self._remote(run)
        api = self.session.api
        # As for a file, never sent twice here: a lost answer raises OutcomeUnknownError and kit/runs/intent.py looks
        # for the submission (the run's tag, the output's name, the time) before sending it again.
        response = self.session.call(
            f"submit {remote} to {self.competition}",
            # Without a recorded version (runs pushed by an older kit) Kaggle takes the kernel's latest version,
            # which is the run's own: every run has its own kernel.
            lambda: api.competition_submit_code(file_name, message, self.competition, kernel=remote,
                                                kernel_version=run.remote_version or None, quiet=True),
            competition=self.competition,
            safe=False,
        )
        if not response.ref:
            if not response.message:
                raise OutcomeUnknownError(f"submit {remote}: Kaggle's answer was empty (no submission ref)",
                                          hint="kit looks for the submission before sending it again")
            raise SubmissionError(f"Kaggle did not accept {remote} as a code submission: {response.message}",
                                  hint=f"open {self.kernel_url(remote)} and check that its version ran and wrote {file_name}")
        return SubmissionResult(
            ref=str(response.ref),
            status="pending",
            date=datetime.now(timezone.utc).isoformat(),
            description=message,
            file_name=file_name,
        )

    def submissions(self, page_size: int = 100) -> list[SubmissionResult]:
        """Every submission of this user to the competition, all pages, newest first."""
        from kagglesdk.competitions.types.competition_api_service import ApiListSubmissionsRequest

        results: list[SubmissionResult] = []
        token, seen = "", set()
        while True:
            request = ApiListSubmissionsRequest()
            request.competition_name = self.competition
            request.page_size = page_size
            request.page_token = token
            page = self.session.send(f"submissions of {self.competition}", request, "competitions.competition_api_client",
                                     "list_submissions", competition=self.competition)
            results += [_submission(s) for s in page.submissions or []]
            token = page.next_page_token or ""
            if not token or token in seen:
                return results
            seen.add(token)

    def submission(self, ref: str) -> SubmissionResult:
        """One submission's current status and scores."""
        from kagglesdk.competitions.types.competition_api_service import ApiGetSubmissionRequest

        request = ApiGetSubmissionRequest()
        request.ref = int(ref)
        return _submission(self.session.send(f"submission {ref}", request, "competitions.competition_api_client", "get_submission",
                                             competition=self.competition))

    def submissions_left_today(self) -> int | None:
        """Submissions still allowed today (GetSubmissionLimits)."""
        api = self.session.api
        limits = self.session.call(
            f"submission limits of {self.competition}",
            lambda: api.competition_get_submission_limits(self.competition),
            competition=self.competition,
        )
        return int(limits.num_allowed_now)

    def quota(self) -> Quota:
        """GPU hours used and allowed this week, and today's submissions left."""
        api = self.session.api
        stats = self.session.call("GPU quota", api.quota_view)
        gpu = stats.gpu_quota
        used = gpu.time_used.total_seconds() / 3600 if gpu is not None and gpu.time_used else 0.0
        total = gpu.total_time_allowed.total_seconds() / 3600 if gpu is not None and gpu.total_time_allowed else 0.0
        refresh = stats.quota_refresh_time.isoformat() if stats.quota_refresh_time else ""
        return Quota(gpu_hours_used=used, gpu_hours_total=total, refresh=refresh, submissions_left_today=self.submissions_left_today())

    # The board and the data files live in competition.py; these keep the Backend contract.

    def board(self, team: str = "") -> list[BoardEntry]:
        """The public board, best first; your team is `team`, else kit.toml's [kaggle] username, else the session's."""
        return kaggle_competition.board(self.session, self.competition, team or self.ws.kaggle_username or self.session.username)

    def data_files(self) -> list[DataFile]:
        return kaggle_competition.data_files(self.session, self.competition)

    def gateway_modules(self) -> list[str] | None:
        """The *_inference_server modules under kaggle_evaluation/ in the competition's file list (one call to Kaggle)."""
        return sorted(Path(f.name).stem for f in self.data_files()
                      if Path(f.name).parts[:1] == ("kaggle_evaluation",) and f.name.endswith("_inference_server.py"))

    def download_data(self, name: str, dest: Path, on_bytes: Callable[[int], None] = lambda n: None) -> Path:
        return kaggle_competition.download_data(self.session, self.competition, name, dest, on_bytes)
