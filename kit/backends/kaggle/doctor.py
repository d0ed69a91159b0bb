"""`kit doctor` on Kaggle: whether kit can work with the competition from here, one check per line with its fix.

Only what needs Kaggle is checked here; whether the workspace's kernels build is the command's part (it needs the
run lifecycle, which the backends never import).
"""

from __future__ import annotations

from typing import Any

from kit.backends.base import Check
from kit.backends.kaggle.session import AUTH_HINT, credential_source
from kit.errors import AuthError, BackendError
from kit.workspace.layout import Workspace


__all__ = ["Check", "doctor"]


def doctor(ws: Workspace, backend: Any) -> list[Check]:
    """Credentials are found and accepted, the competition's rules are accepted, its kind is known, GPU quota is
    left; one Check per line, stopping at the first check that fails where the next ones need it. `backend` is the
    workspace's KaggleBackend (KaggleBackend.doctor; this module does not import it, which imports this one)."""
    source = credential_source()
    checks = [Check("credentials found", source is not None, source or "none", "" if source else AUTH_HINT)]
    if source is None:
        return checks
    try:
        user = backend.session.username
        # Reading the credentials proves nothing (a legacy key is only checked when used): a call that needs them does.
        api = backend.session.api
        backend.session.call("credentials check", api.quota_view)
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
