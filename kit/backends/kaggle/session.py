"""The session to Kaggle: credentials, the official `kaggle` client, and the retry, timeout and error translation
every call goes through.

`kaggle` and `kagglesdk` are imported lazily, inside functions: importing `kaggle` authenticates and prints, so it
happens only when a command really talks to Kaggle, with its output captured and its `SystemExit` turned into an
AuthError. Every call gets a timeout (the client sets none), 429 and 5xx answers are retried with a backoff that
honours Retry-After, and the client's failures (HTTPError, ValueError, SystemExit, soft `error` fields, HTML where
JSON was expected) become kit's errors. Nothing here ever writes a credential anywhere.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from operator import attrgetter
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from kit.errors import AuthError, BackendError, ConfigError, OutcomeUnknownError

T = TypeVar("T")

AUTH_HINT = (
    "put your API token in ~/.kaggle/kaggle.json (kaggle.com > Settings > API > Create New Token) "
    "or set KAGGLE_API_TOKEN"
)


@dataclass(frozen=True)
class RetryPolicy:
    """How long one call may take and how often a throttled or failed call is tried again."""

    timeout: float = 60.0  # seconds per HTTP request; the client itself waits forever
    attempts: int = 5  # tries per call, the first included
    backoff: float = 2.0  # first wait in seconds, doubled each retry, unless Retry-After says otherwise
    max_wait: float = 120.0  # no single wait is longer, whatever Retry-After asks
    # After a lost answer to a push or submission, how long the request may still land on Kaggle: nothing is sent
    # again before then unless Kaggle shows it never came (kit/runs/intent.py). Kaggle has processed requests
    # 20-120 s after the client gave up (issue 25); 5 minutes leaves room.
    settle: float = 300.0
    look: float = 30.0  # how long one command keeps looking for it before leaving it unresolved

    @classmethod
    def from_env(cls) -> "RetryPolicy":
        """The defaults, overridden by KIT_KAGGLE_TIMEOUT, _ATTEMPTS, _BACKOFF, _MAX_WAIT, _SETTLE and _LOOK.

        KIT_KAGGLE_TIME_SCALE multiplies every default duration (a test runs Kaggle's minutes in seconds against a
        stand-in whose clock is scaled alike, with kit's own logic unchanged); the settings named above still win."""
        scale = _number("KIT_KAGGLE_TIME_SCALE", float, 1.0)
        defaults = cls()
        values: dict[str, Any] = {key: getattr(defaults, key) * scale for key in ("timeout", "backoff", "max_wait", "settle", "look")}
        for name, key, kind in (
            ("KIT_KAGGLE_TIMEOUT", "timeout", float),
            ("KIT_KAGGLE_ATTEMPTS", "attempts", int),
            ("KIT_KAGGLE_BACKOFF", "backoff", float),
            ("KIT_KAGGLE_MAX_WAIT", "max_wait", float),
            ("KIT_KAGGLE_SETTLE", "settle", float),
            ("KIT_KAGGLE_LOOK", "look", float),
        ):
            values[key] = _number(name, kind, values.get(key, getattr(defaults, key)))
        return cls(**values)


def _number(name: str, kind: type, default: Any) -> Any:
    """The environment variable `name` as a finite number >= 0 (`kind`), or `default` when it is not set."""
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number", hint=f"unset {name} or give it a number") from None
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name}={raw!r} is not a finite number of at least 0", hint=f"unset {name} or give it a number such as 60")
    return value


# ---------------------------------------------------------------------------------------------------------------
# Credentials and the client


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
        return _as_labelled(original(self, request, stream, timeout, *args, **kwargs))

    send._kit_default_timeout = True  # type: ignore[attr-defined]
    HTTPAdapter.send = send  # type: ignore[method-assign]


def _as_labelled(response: Any) -> Any:
    """An error answer whose body is a web page although its label says JSON (a proxy's or load balancer's page in
    front of Kaggle) relabelled as the page it is: the client then raises the HTTP error, and a 5xx is retried like
    any other rather than failing as 'not JSON'. Only error answers inside kit's Kaggle calls are looked at."""
    if _REQUEST_TIMEOUT.get() is None or getattr(response, "status_code", 200) < 400:
        return response
    if "json" in response.headers.get("Content-Type", "") and response.content.lstrip()[:1] not in (b"{", b"["):
        response.headers["Content-Type"] = "text/html"
    return response


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


def import_client(timeout: float) -> Any:
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


class NothingDone(Exception):
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


def competition_url(slug: str) -> str:
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
        api_class = import_client(self.policy.timeout)
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
            except NothingDone as exc:
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
                hint=f"accept the rules at {competition_url(competition)}/rules, then try again",
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


def split_ref(ref: str) -> tuple[str, str]:
    """`owner/slug` (a kernel's or a dataset's reference on Kaggle) as (owner, slug)."""
    owner, _, slug = ref.partition("/")
    if not owner or not slug:
        raise BackendError(f"{ref!r} is not a Kaggle kernel reference (owner/slug)", hint="check the id in the kernel's kernel-metadata.json, or kit status for the runs' kernels")
    return owner, slug
