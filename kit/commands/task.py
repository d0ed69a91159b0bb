"""The competition's task: `kit task show` (the [task] kit follows) and `kit task propose` (one proposed from the
competition's files, with what kit guessed and what to check)."""

from __future__ import annotations

from pathlib import Path

import click

from kit.commands.common import echo_err as _err, load_workspace as _ws
from kit.errors import KitError


def print_proposal(proposal) -> None:
    _err("guessed:")
    for line in proposal.guesses:
        _err(f"  {line}")
    _err("check:")
    for line in proposal.checks:
        _err(f"  {line}")


@click.group()
def task() -> None:
    """The competition's task ([task] in kit.toml): `kit task show`, `kit task propose --write`."""


@task.command("show")
def task_show() -> None:
    """The task kit follows, as a [task] table (without one in kit.toml: the binary is_correct task): `kit task show`."""
    from kit.workspace.task_config import task_toml

    ws = _ws()
    click.echo(task_toml(ws.task.to_dict()).strip("\n"))
    if ws.task_table is None:
        _err("kit.toml has no [task]: this is the binary is_correct task (kit task propose proposes one from the competition's files)")


@task.command("propose")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="the competition's files (default: data/COMPETITION, else the backend's train, test and sample_submission, downloaded there)")
@click.option("--write", is_flag=True, help="add the proposed [task] to kit.toml")
def task_propose(data_dir: Path | None, write: bool) -> None:
    """Propose the [task] from the competition's files and say what to check: `kit task propose --write`.

    It reads train's and test's columns and sample_submission's header and values (data/COMPETITION, else the
    backend's files, downloaded there)."""
    from kit.workspace.task_proposal import propose_task, write_task

    ws = _ws()
    proposal, note = propose_task(ws.root, data_dir, download=True)
    if proposal is None:
        raise KitError(f"no task to propose: {note}", hint="kit data (the competition's files), or kit task propose --data FOLDER")
    click.echo(proposal.toml().strip("\n"))
    _err(f"proposed from {note}")
    print_proposal(proposal)
    if write:
        path = write_task(ws.root, proposal)
        _err(f"written to {path}")
    else:
        _err("kit task propose --write adds it to kit.toml")


COMMANDS = [task]
