"""What every command module shares: the workspace and backend, loaded lazily, and stderr output."""

from __future__ import annotations

import click


def load_workspace():
    """The workspace around the current folder (kit.toml found upwards)."""
    from kit.workspace import layout

    return layout.load()


def backend_for(ws):
    """The workspace's backend, constructed only when a command needs it."""
    from kit.backends.registry import get_backend

    return get_backend(ws)


def echo_err(message: str) -> None:
    """Progress, hints and notes go to stderr; data goes to stdout."""
    click.echo(message, err=True)


def warn_damaged(ws) -> None:
    """Name each run whose record is damaged (left out of what a command did), with its fix, on stderr."""
    from kit.runs import store

    for damaged in store.scan(ws)[1]:
        echo_err(f"warning: {damaged.run_id} left out: {damaged.message}")
        echo_err(f"hint: {damaged.hint}")
