"""A TaskError (kernels/runtime/task.py's ValueError, raised inside any command) reaches the user as one line with
its fix and exit code 1, not a traceback."""

from __future__ import annotations

import click

from tests.conftest import run_kit


def test_a_task_error_escaping_a_command_is_one_line_with_its_fix(monkeypatch):
    from kit import cli
    from kit.task import TaskError

    @click.command("raise-task-error")
    def raising():
        raise TaskError("metric map@3 cannot score a probability", "set [task.submission] output = \"top_k\"")

    monkeypatch.setitem(cli.cli.commands, "raise-task-error", raising)
    result = run_kit("raise-task-error")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == ["error: metric map@3 cannot score a probability",
                                          'hint: set [task.submission] output = "top_k"']
    assert "Traceback" not in result.stderr


def test_other_value_errors_keep_their_traceback(monkeypatch):
    from kit import cli

    @click.command("raise-value-error")
    def raising():
        raise ValueError("a bug")

    monkeypatch.setitem(cli.cli.commands, "raise-value-error", raising)
    try:
        run_kit("raise-value-error")
    except ValueError as exc:
        assert str(exc) == "a bug"
    else:
        raise AssertionError("a plain ValueError is a bug and must not be turned into one line")
