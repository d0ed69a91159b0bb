"""kit's one error hierarchy: every expected failure is a KitError, printed as one line plus a hint."""

from __future__ import annotations


class KitError(Exception):
    """A failure the user can fix; `hint` names the command or change that fixes it."""

    exit_code = 1  # what the CLI exits with
    label = "error: "  # how the CLI starts its line

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(KitError):
    """A bad kit.toml, run setting or kernel template."""


class WorkspaceError(KitError):
    """No workspace, or a workspace file that cannot be read."""


class RunNotFoundError(KitError):
    """A run id that has no record under submissions/."""


class SubmissionError(KitError):
    """A submission file that the competition would refuse, or a refused submission."""


class SubmissionLimitError(SubmissionError):
    """The day's submissions are used up."""


class BackendError(KitError):
    """The backend (local processes or Kaggle) failed to do what was asked."""


class AuthError(BackendError):
    """Missing or rejected credentials."""


class SessionLimitError(BackendError):
    """The backend refused to start a kernel because the account's concurrent sessions are in use; retry later."""


class OutcomeUnknownError(BackendError):
    """A request that spends something (a push, a submission) got no clear answer: a timeout, a 5xx, a dropped
    connection or an empty reply. It may have taken effect; kit asks the backend before it acts again."""


class Interrupted(KitError):
    """Ctrl-C (or a kill) stopped a command; the hint says how what was in flight gets resolved."""

    exit_code = 130


class StoppedFollowing(Interrupted):
    """Ctrl-C stopped kit following something that goes on without it (a run, a pending score, a sweep's runs):
    nothing failed, so the CLI prints it without "error:", with the command that follows it again."""

    label = ""


def missing_package(package: str, extra: str, needed_for: str) -> KitError:
    """A package of one of kit's optional extras that is not installed, as one line naming the extra to install."""
    return KitError(f"{needed_for} needs {package}, which is not installed (it comes with kit's [{extra}] extra)",
                    hint=f"pip install -e '.[{extra}]' in kit's folder (or pip install {package})")
