"""Which backend a workspace uses: `local` (this machine) or `kaggle`, as kit.toml's [backend] names it."""

from __future__ import annotations

from kit.backends.base import Backend
from kit.errors import ConfigError
from kit.workspace.layout import Workspace


def get_backend(ws: Workspace, name: str | None = None) -> Backend:
    """The backend named in kit.toml (or `name`), constructed lazily so the CLI stays light."""
    name = name or ws.backend
    if name == "local":
        from kit.backends.local import LocalBackend

        return LocalBackend(ws)
    if name == "kaggle":
        from kit.backends.kaggle.backend import KaggleBackend

        return KaggleBackend(ws)
    raise ConfigError(f"unknown backend {name!r}; allowed: local, kaggle", hint='set name = "local" under [backend] in kit.toml')
