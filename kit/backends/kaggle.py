"""The Kaggle backend: the one module that talks to Kaggle, through the official `kaggle` client.

`kaggle` and `kagglesdk` are imported lazily, inside functions: importing `kaggle` authenticates and prints, so it
happens only when a command really talks to Kaggle, with its output captured and its `SystemExit` turned into an
AuthError. Every call gets a timeout (the client sets none), 429 and 5xx answers are retried with a backoff that
honours Retry-After, and the client's failures (HTTPError, ValueError, SystemExit, soft `error` fields, HTML where
JSON was expected) become kit's errors. Nothing here ever writes a credential anywhere.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import io
import json
import os
import sys
import time
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from operator import attrgetter
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from kit.backends.base import DEFAULT_OUTPUTS, Backend, BoardEntry, DataFile, KernelState, Quota, SubmissionResult
from kit.build.script import TITLE_MAX
from kit.workspace.competition import DEFAULT_RERUN_HOURS, CompetitionInfo, read_cache, write_cache
from kit.errors import AuthError, BackendError, ConfigError, OutcomeUnknownError, SessionLimitError, SubmissionError
from kit.fileio import atomic_write_json, atomic_write_text
from kit.runs.store import KernelStatus, RunRecord
from kit.workspace.layout import Workspace

T = TypeVar("T")

METADATA_FILE = "kernel-metadata.json"
# Owners the builder writes when it does not know the Kaggle username yet.
PLACEHOLDER_OWNERS = frozenset({"", "USERNAME", "INSERT_USERNAME", "{username}", "<username>"})
LOG_FILE = "kernel.log"
RETIRED_SHAPES = {"NvidiaTeslaP100": "the P100 cannot run the current Kaggle image (its CUDA dropped sm_60); use NvidiaTeslaT4"}
AUTH_HINT = (
    "put your API token in ~/.kaggle/kaggle.json (kaggle.com > Settings > API > Create New Token) "
    "or set KAGGLE_API_TOKEN"
)
GPU_SESSION_LIMIT = "Maximum batch GPU session count"


@dataclass(frozen=True)
class RetryPolicy:
    """How long one call may take and how often a throttled or failed call is tried again."""

    timeout: float = 60.0  # seconds per HTTP request; the client itself waits forever
    attempts: int = 5  # tries per call, the first included
    backoff: float = 2.0  # first wait in seconds, doubled each retry, unless Retry-After says otherwise
    max_wait: float = 120.0  # no single wait is longer, whatever Retry-After asks
    settle: float = 10.0  # after a lost answer to a push or submission, how long it may take to show on Kaggle

    @classmethod
    def from_env(cls) -> "RetryPolicy":
        """The defaults, overridden by KIT_KAGGLE_TIMEOUT, _ATTEMPTS, _BACKOFF, _MAX_WAIT and _SETTLE."""
        values: dict[str, Any] = {}
        for name, key, kind in (
            ("KIT_KAGGLE_TIMEOUT", "timeout", float),
            ("KIT_KAGGLE_ATTEMPTS", "attempts", int),
            ("KIT_KAGGLE_BACKOFF", "backoff", float),
            ("KIT_KAGGLE_MAX_WAIT", "max_wait", float),
            ("KIT_KAGGLE_SETTLE", "settle", float),
        ):
            raw = os.environ.get(name)
            if raw:
                try:
                    values[key] = kind(raw)
                except ValueError:
                    raise ConfigError(f"{name}={raw!r} is not a number", hint=f"unset {name} or give it a number") from None
        return cls(**values)


@dataclass(frozen=True)
class Check:
    """One line of `kit doctor`: what was checked, whether it passed, and the fix if not."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


# ---------------------------------------------------------------------------------------------------------------
# Credentials and the client



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

def config_dir() -> Path:
    """Where the client looks for kaggle.json: KAGGLE_CONFIG_DIR, else ~/.kaggle, else the XDG folder (Linux)."""
    env = os.environ.get("KAGGLE_CONFIG_DIR")
    if env:
        return Path(env)
    home = Path(os.path.expanduser("~")) / ".kaggle"
    if sys.platform.startswith("linux") and not home.exists():
        xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
        return Path(xdg) / "kaggle"
    return home


def credential_source() -> str | None:
    """Which credentials the client will use, in Kaggle's own order, named without their secret; None if none."""
    token = os.environ.get("KAGGLE_API_TOKEN")
    if token:
        return f"KAGGLE_API_TOKEN (file {token})" if os.path.isfile(token) else "KAGGLE_API_TOKEN"
    for name in ("access_token", "access_token.txt"):
        path = Path(os.path.expanduser("~")) / ".kaggle" / name
        if path.is_file() and path.read_text().strip():
            return str(path)
    file_values: dict[str, Any] = {}
    path = config_dir() / "kaggle.json"
    if path.is_file():
        with contextlib.suppress(OSError, ValueError):
            file_values = json.loads(path.read_text()) or {}
    user = os.environ.get("KAGGLE_USERNAME") or file_values.get("username")
    key = os.environ.get("KAGGLE_KEY") or file_values.get("key")
    if user and key:
        env = "KAGGLE_USERNAME" in os.environ or "KAGGLE_KEY" in os.environ
        return "KAGGLE_USERNAME/KAGGLE_KEY" if env and not path.is_file() else f"{path} (user {user})"
    oauth = Path(os.path.expanduser("~")) / ".kaggle" / "credentials.json"
    if oauth.is_file():
        return f"{oauth} (kaggle auth login)"
    return None


# The client sets no timeout on its requests; kit gives every request made inside `_timeout` one. The client builds
# a fresh requests.Session for each call and for each blob upload, so the only single place to add a default is the
# transport adapter. The default applies only inside kit's Kaggle calls and only where the caller gave none.
_REQUEST_TIMEOUT: contextvars.ContextVar[float | None] = contextvars.ContextVar("kit_kaggle_timeout", default=None)


def _install_default_timeout() -> None:
    from requests.adapters import HTTPAdapter

    if getattr(HTTPAdapter.send, "_kit_default_timeout", False):
        return
    original = HTTPAdapter.send

    def send(self, request, stream=False, timeout=None, *args, **kwargs):  # type: ignore[no-untyped-def]
        if timeout is None:
            timeout = _REQUEST_TIMEOUT.get()
        return original(self, request, stream, timeout, *args, **kwargs)

    send._kit_default_timeout = True  # type: ignore[attr-defined]
    HTTPAdapter.send = send  # type: ignore[method-assign]


@contextlib.contextmanager
def _client_io(timeout: float) -> Iterator[io.StringIO]:
    """Capture what the client prints (it prints from library code) and give its requests a timeout."""
    _install_default_timeout()
    captured = io.StringIO()
    token = _REQUEST_TIMEOUT.set(timeout)
    try:
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            yield captured
    finally:
        _REQUEST_TIMEOUT.reset(token)


def _import_client(timeout: float) -> Any:
    """The KaggleApi class. Importing `kaggle` authenticates and prints; both are captured and ignored here."""
    try:
        with _client_io(timeout):
            from kaggle.api.kaggle_api_extended import KaggleApi
    except SystemExit:  # kaggle/__init__ catches its own exit; older clients did not
        raise AuthError("no Kaggle credentials found", hint=AUTH_HINT) from None
    except ImportError as exc:
        raise BackendError(f"the kaggle client is not installed ({exc})", hint="pip install 'kit[kaggle]'") from None
    return KaggleApi


# ---------------------------------------------------------------------------------------------------------------
# Turning the client's failures into kit's errors


NOTICE_SECONDS = 3.0  # a wait at least this long is announced on stderr


def _never_sent(exc: BaseException) -> bool:
    """Whether a network failure happened before the request left (so it cannot have been acted on)."""
    import requests

    if isinstance(exc, requests.ConnectTimeout):
        return True
    text = repr(exc)
    return isinstance(exc, requests.ConnectionError) and ("NewConnectionError" in text or "Connection refused" in text)


@contextlib.contextmanager
def _slow_answer_notice(what: str, timeout: float, enabled: bool = True) -> Iterator[None]:
    """While a request waits more than a few seconds for its answer, say so on stderr every few seconds (the
    client's own output is captured meanwhile, so this writes to the stderr of before the capture)."""
    import threading

    if not enabled:
        yield
        return

    stream = sys.stderr
    done = threading.Event()
    started = time.monotonic()

    def watch() -> None:
        interval = NOTICE_SECONDS
        while not done.wait(interval):
            waited = time.monotonic() - started
            print(f"{what}: waiting for Kaggle's answer ({waited:.0f}s of at most {timeout:.0f}s)", file=stream, flush=True)
            interval = min(interval * 2, 30.0)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()


class _NothingDone(Exception):
    """A call that failed before it changed anything on Kaggle, so trying again is safe."""


def _status_code(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    value = response.headers.get("Retry-After") if response is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    with contextlib.suppress(TypeError, ValueError):
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds())
    return None


def _is_html(exc: BaseException) -> bool:
    response = getattr(exc, "response", None)
    if response is None:
        return False
    kind = response.headers.get("Content-Type", "")
    with contextlib.suppress(Exception):
        return "html" in kind or response.text.lstrip()[:1] == "<"
    return False


def _competition_url(slug: str) -> str:
    return f"https://www.kaggle.com/competitions/{slug}"


class KaggleSession:
    """An authenticated client plus the retry, timeout and error translation every call goes through."""

    def __init__(self, policy: RetryPolicy | None = None, sleep: Callable[[float], None] = time.sleep):
        self.policy = policy or RetryPolicy.from_env()
        self.sleep = sleep
        self._api: Any = None
        self.client_output: list[str] = []  # what the client printed, for debugging; never shown by default

    @property
    def api(self) -> Any:
        """The authenticated KaggleApi; credentials are resolved on first use, in Kaggle's order."""
        if self._api is None:
            self._api = self._authenticate()
        return self._api

    @property
    def username(self) -> str:
        """The Kaggle user the credentials belong to."""
        return str(self.api.config_values.get("username") or "")

    def _authenticate(self) -> Any:
        api_class = _import_client(self.policy.timeout)
        api = api_class()
        # KaggleApi reads these from the environment once, when `kaggle` is first imported; read them per session so
        # that KAGGLE_CONFIG_DIR and KAGGLE_API_ENVIRONMENT set later (or changed between tests) are honoured.
        folder = config_dir()
        api.config_dir = str(folder)
        api.config = str(folder / "kaggle.json")
        api.args = ["--local"] if os.environ.get("KAGGLE_API_ENVIRONMENT") == "LOCALHOST" else []

        def authenticate() -> Any:
            try:
                api.authenticate()
            except SystemExit:
                raise AuthError("no Kaggle credentials found", hint=AUTH_HINT) from None
            return api

        return self.call("authenticate", authenticate)

    def call(
        self,
        what: str,
        fn: Callable[[], T],
        *,
        competition: str = "",
        safe: bool = True,
        on_ambiguous: Callable[[], T | None] | None = None,
        notice: bool = True,
    ) -> T:
        """Run `fn` (one client call) with a timeout, retries and kit's errors. `what` names it in messages.

        `safe` calls are retried on 429, 5xx and network failures. Unsafe ones (they spend something: a push, a
        submission) are retried only where Kaggle cannot have acted: a 429, which it answers before doing anything,
        and a connection that was never made. After a 5xx, a timeout, a dropped connection or an answer that is not
        JSON they raise OutcomeUnknownError, for the caller to reconcile (kit/runs/intent.py) before anything is sent
        again; `on_ambiguous`, if given, is asked first whether the call took effect (its result is returned).
        Waits longer than a few seconds (retries, Retry-After, a slow answer) are shown on stderr.
        """
        import requests

        attempts = max(1, self.policy.attempts)
        for attempt in range(1, attempts + 1):
            last = attempt == attempts
            try:
                with _slow_answer_notice(what, self.policy.timeout, notice), _client_io(self.policy.timeout) as captured:
                    try:
                        return fn()
                    finally:
                        if captured.getvalue():
                            self.client_output.append(captured.getvalue())
            except requests.HTTPError as exc:
                code = _status_code(exc)
                retryable = code == 429 or (code is not None and code >= 500)
                if retryable and code != 429 and not safe:
                    done = on_ambiguous() if on_ambiguous is not None else None
                    if done is not None:
                        return done
                    raise OutcomeUnknownError(
                        f"{what}: Kaggle answered HTTP {code}", hint="Kaggle is having trouble; kit checks whether it happened before trying again"
                    ) from None
                if not retryable or last:
                    raise self._translate(exc, what, competition) from None
                self._wait(attempt, _retry_after(exc), what, f"HTTP {code}")
            except (requests.Timeout, requests.ConnectionError) as exc:
                kind = "timed out" if isinstance(exc, requests.Timeout) else "could not connect"
                if not safe and not _never_sent(exc):
                    done = on_ambiguous() if on_ambiguous is not None else None
                    if done is not None:
                        return done
                    lost = f"no answer within {self.policy.timeout:.0f}s" if isinstance(exc, requests.Timeout) else "the connection dropped"
                    raise OutcomeUnknownError(f"{what}: {lost}", hint="check your network; kit checks whether it happened before trying again") from None
                if last:
                    raise BackendError(
                        f"{what}: Kaggle {kind} after {attempts} tries ({exc.__class__.__name__})",
                        hint="check your network, or raise KIT_KAGGLE_TIMEOUT; https://www.kaggle.com shows outages",
                    ) from None
                self._wait(attempt, None, what, kind)
            except _NothingDone as exc:
                if last:
                    raise BackendError(f"{what}: {exc} ({attempts} tries)", hint="try again later") from None
                self._wait(attempt, None, what, str(exc))
            except json.JSONDecodeError:
                if not safe:
                    raise OutcomeUnknownError(
                        f"{what}: Kaggle's answer was empty or not JSON", hint="kit checks whether it happened before trying again"
                    ) from None
                raise BackendError(
                    f"{what}: Kaggle answered with a page that is not JSON (an HTML error or login page)",
                    hint="Kaggle may be down, or a proxy is answering instead of it: check https://www.kaggle.com and HTTP(S)_PROXY",
                ) from None
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                # The client validates input with ValueError/TypeError and crashes on malformed answers with
                # KeyError/AttributeError; both are worth one clear line.
                raise BackendError(f"{what}: {exc}", hint="run again with KIT_DEBUG=1 for details") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _wait(self, attempt: int, retry_after: float | None, what: str = "", why: str = "") -> None:
        asked = retry_after if retry_after is not None else self.policy.backoff * 2 ** (attempt - 1)
        wait = min(asked, self.policy.max_wait)
        if wait >= NOTICE_SECONDS:
            said = f"Kaggle asked to wait {asked:.0f}s (Retry-After); waiting {wait:.0f}s" if retry_after is not None else f"waiting {wait:.0f}s"
            print(f"{what}: {why}; {said} before try {attempt + 1} of {self.policy.attempts}", file=sys.stderr, flush=True)
        self.sleep(wait)

    def _translate(self, exc: BaseException, what: str, competition: str) -> BackendError:
        error = self._translate_code(exc, what, competition)
        error.http_status = _status_code(exc)  # type: ignore[attr-defined]
        return error

    def _translate_code(self, exc: BaseException, what: str, competition: str) -> BackendError:
        code = _status_code(exc)
        detail = str(exc).splitlines()[0][:200] if str(exc) else ""
        if _is_html(exc):
            detail = "an HTML page instead of JSON"
        if code == 401:
            return AuthError(f"{what}: Kaggle rejected the credentials (HTTP 401)", hint=AUTH_HINT)
        if code == 403 and competition:
            return AuthError(
                f"{what}: Kaggle refused access to competition {competition!r} (HTTP 403); its rules are not accepted yet",
                hint=f"accept the rules at {_competition_url(competition)}/rules, then try again",
            )
        if code == 403:
            return AuthError(f"{what}: Kaggle refused access (HTTP 403): {detail}", hint="check that your credentials own what you asked for")
        if code == 404:
            return BackendError(f"{what}: not found on Kaggle (HTTP 404): {detail}", hint="check the slug; kit status lists runs and their kernels")
        if code == 429:
            return BackendError(f"{what}: Kaggle is rate-limiting (HTTP 429) after {self.policy.attempts} tries", hint="wait a few minutes and try again")
        if code is not None and code >= 500:
            return BackendError(f"{what}: Kaggle failed (HTTP {code}) after {self.policy.attempts} tries: {detail}", hint="Kaggle is having trouble; try again later")
        return BackendError(f"{what}: Kaggle answered HTTP {code}: {detail}", hint="run again with KIT_DEBUG=1 for details")

    def client(self) -> Any:
        """A kagglesdk client for the typed calls KaggleApi does not wrap the way kit needs (paging, raw errors)."""
        return self.api.build_kaggle_client()

    def send(self, what: str, request: Any, service: str, method: str, *, competition: str = "") -> Any:
        """One typed kagglesdk call, `client.<service>.<method>(request)`, through `call` (retries, kit's errors)."""

        def fn() -> Any:
            with self.client() as client:
                return getattr(attrgetter(service)(client), method)(request)

        return self.call(what, fn, competition=competition)


# ---------------------------------------------------------------------------------------------------------------
# The backend


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


def _split_ref(ref: str) -> tuple[str, str]:
    owner, _, slug = ref.partition("/")
    if not owner or not slug:
        raise BackendError(f"{ref!r} is not a Kaggle kernel reference (owner/slug)", hint="check the id in the kernel's kernel-metadata.json, or kit status for the runs' kernels")
    return owner, slug


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
        owner, slug = _split_ref(str(meta.get("id", "")))
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
            owner, slug = _split_ref(str(meta.get("id", "")))
        except (OSError, ValueError, BackendError):
            return ""  # push() reports the bad metadata
        if owner in PLACEHOLDER_OWNERS:
            owner = self.ws.kaggle_username or self.session.username
        return f"{owner}/{slug}" if owner else ""

    def kernel_version(self, remote: str) -> int | None:
        """The kernel's current version number (GetKernel), or None if Kaggle has no such kernel."""
        from kagglesdk.kernels.types.kernels_api_service import ApiGetKernelRequest

        request = ApiGetKernelRequest()
        request.user_name, request.kernel_slug = _split_ref(remote)
        try:
            response = self.session.send(f"kernel {remote}", request, "kernels.kernels_api_client", "get_kernel")
        except BackendError as exc:
            if getattr(exc, "http_status", None) == 404:
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
            if getattr(exc, "http_status", None) == 404:
                return ""
            raise  # unknown whether it runs: pushing again could start a second paid session
        return remote

    @property
    def settle_seconds(self) -> float:  # type: ignore[override]
        return self.session.policy.settle

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
        request.user_name, request.kernel_slug = _split_ref(remote)
        return self.session.send(f"status of {remote}", request, "kernels.kernels_api_client", "get_kernel_session_status")

    def kernel_image(self, run: RunRecord) -> str:
        """The image Kaggle ran the kernel on (GetKernel's metadata.dockerImage, as `kaggle kernels pull -m` writes it)."""
        from kagglesdk.kernels.types.kernels_api_service import ApiGetKernelRequest

        request = ApiGetKernelRequest()
        request.user_name, request.kernel_slug = _split_ref(self._remote(run))
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
        request.user_name, request.kernel_slug = _split_ref(remote)
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
            raise BackendError(f"{self.competition} has no sample_submission.csv", hint=f"see the data tab at {_competition_url(self.competition)}/data")
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
                raise _NothingDone(f"the upload of {file.name} failed, nothing was submitted")
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
            hint=f"check the slug under [competition] in kit.toml against {_competition_url(self.competition)}",
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

    # The board and the data files live in kaggle_competition.py; these keep the Backend contract.

    def board(self, team: str = "") -> list[BoardEntry]:
        from kit.backends import kaggle_competition

        return kaggle_competition.board(self, team)

    def data_files(self) -> list[DataFile]:
        from kit.backends import kaggle_competition

        return kaggle_competition.data_files(self)

    def download_data(self, name: str, dest: Path, on_bytes: Callable[[int], None] = lambda n: None) -> Path:
        from kit.backends import kaggle_competition

        return kaggle_competition.download_data(self, name, dest, on_bytes)


# ---------------------------------------------------------------------------------------------------------------
# kit doctor and kit quota


def build_checks(ws: Workspace) -> list[Check]:
    """Whether each of the workspace's kernels builds for Kaggle (into a temporary folder; nothing is kept)."""
    import tempfile

    from kit.errors import KitError
    from kit.runs.lifecycle import build_for_workspace, resolve_config

    checks = []
    with tempfile.TemporaryDirectory(prefix="kit-doctor-") as tmp:
        for kernel in ("train", "infer"):
            try:
                config = resolve_config(ws, kernel, {}, "kaggle")
                built = build_for_workspace(ws, kernel, config, Path(tmp) / kernel)
                checks.append(Check(f"{kernel} kernel builds", True, f"{built.script.stat().st_size // 1024} KiB script"))
            except KitError as exc:
                checks.append(Check(f"{kernel} kernel builds", False, exc.message, exc.hint or ""))
    return checks


def doctor(ws: Workspace, backend: KaggleBackend | None = None) -> list[Check]:
    """The workspace's kernels build, credentials are found and accepted, the competition's rules are accepted,
    GPU quota is left; one Check per line, stopping at the first network check that fails."""
    backend = backend or KaggleBackend(ws)
    source = credential_source()
    checks = build_checks(ws)
    checks.append(Check("credentials found", source is not None, source or "none", "" if source else AUTH_HINT))
    if source is None:
        return checks
    try:
        user = backend.session.username
        checks.append(Check("credentials accepted", True, f"user {user}"))
    except BackendError as exc:
        checks.append(Check("credentials accepted", False, exc.message, exc.hint or AUTH_HINT))
        return checks
    try:
        left = backend.submissions_left_today()
        checks.append(Check("competition rules accepted", True, f"{ws.competition}: {left} submissions left today"))
    except AuthError as exc:
        checks.append(Check("competition rules accepted", False, exc.message, exc.hint or ""))
    except BackendError as exc:
        checks.append(Check("competition reachable", False, exc.message, exc.hint or ""))
    if checks[-1].ok:
        try:
            info = backend.competition_info()
            kind = (f"a code competition: submissions are kernels, rerun on the hidden test set with the internet off "
                    f"(limit {info.rerun_hours:g} h)") if info.code else "submissions are files (submission.csv)"
            checks.append(Check("competition kind", True, kind))
        except BackendError as exc:
            checks.append(Check("competition kind", False, exc.message, exc.hint or ""))
    try:
        quota = backend.quota() if checks[-1].ok else None  # the quota call needs the rules accepted too
        if quota is not None:
            checks.append(
                Check(
                    "GPU quota left",
                    quota.gpu_hours_left > 0,
                    f"{quota.gpu_hours_left:.1f} of {quota.gpu_hours_total:.1f} h left this week",
                    "" if quota.gpu_hours_left > 0 else f"wait for the weekly reset ({quota.refresh})",
                )
            )
    except BackendError as exc:
        checks.append(Check("GPU quota left", False, exc.message, exc.hint or ""))
    return checks

