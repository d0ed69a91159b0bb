"""What every command module shares: the workspace and backend, loaded lazily, and stderr output."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import click

# --json's one rule, in every command: numbers are numbers, blanks (an empty cell, an unset field) are null, and
# identifiers stay text even when they are digits (a submission ref, an ID).
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
INTEGER = re.compile(r"[+-]?\d+")
IDENTIFIERS = frozenset({"run", "ref", "submission_ref", "id", "ID"})


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


def json_cell(text: str) -> Any:
    """A table cell (leaderboard.csv holds text) as --json gives it: a number where it spells one, null where blank."""
    stripped = text.strip()
    if not stripped:
        return None
    if not NUMBER.fullmatch(stripped):
        return text
    return int(stripped) if INTEGER.fullmatch(stripped) else float(stripped)


def table_json(rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Rows of a text table with each cell as json_cell reads it (identifier columns stay text)."""
    return [{k: (v if k in IDENTIFIERS or not isinstance(v, str) else json_cell(v)) for k, v in row.items()} for row in rows]


def plain_json(data: Any) -> Any:
    """`data` with blanks ("") and numbers JSON cannot hold (nan, inf) as null, tuples as lists, at any depth."""
    if isinstance(data, dict):
        return {k: plain_json(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [plain_json(v) for v in data]
    if isinstance(data, str) and not data.strip():
        return None
    if isinstance(data, float) and not math.isfinite(data):
        return None
    return data


def echo_json(data: Any) -> None:
    """Print --json output on stdout, under the one rule (plain_json)."""
    click.echo(json.dumps(plain_json(data), indent=2))
