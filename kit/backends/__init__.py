"""Backends run kernels and talk to the competition: `local` (this machine) and `kaggle`."""

from __future__ import annotations

from kit.backends.base import Backend, KernelState, SubmissionResult
from kit.errors import ConfigError
from kit.workspace.layout import Workspace

__all__ = ["Backend", "KernelState", "SubmissionResult", "get_backend"]


def get_backend(ws: Workspace, name: str | None = None) -> Backend:
    """The backend named in kit.toml (or `name`), constructed lazily so the CLI stays light."""
    name = name or ws.backend
    if name == "local":
        from kit.backends.local import LocalBackend

        return LocalBackend(ws)
    if name == "kaggle":
        from kit.backends.kaggle import KaggleBackend

        return KaggleBackend(ws)
    raise ConfigError(f"unknown backend {name!r}; allowed: local, kaggle", hint='set name = "local" under [backend] in kit.toml')
