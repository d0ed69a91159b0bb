"""Every command kit's messages and hints name exists, with the options they give it (issue 14, class 8)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import click
import pytest

from kit.cli import cli

KIT = Path(__file__).parents[1] / "kit"
# Words that follow "kit " in prose rather than name a command ("kit checks whether it happened").
PROSE = {"asks", "checks", "looks", "keeps", "writes", "reads", "records", "never", "uses", "sends", "does", "has",
         "can", "will", "cannot", "is", "owns", "computes", "knows", "stops", "run", "runs", "kernel", "kernels",
         "to", "and", "or", "the", "itself", "was", "would", "first", "only", "may", "took", "made", "needs",
         "checked", "command", "reconciles", "stopped", "columns", "starts", "could", "workspace", "in"}
MENTION = re.compile(r"\bkit ([a-z](?:[a-z-]*[a-z])?)([^,;:()'\"\n|`]*)")


SHOWN = ("_err", "echo_err", "echo", "say", "print", "write", "note", "done", "fail")


def _strings(node: ast.AST) -> list[str]:
    """The string literals under `node`; an f-string's fields read as the word RUN."""
    found = []
    for child in ast.walk(node):
        if isinstance(child, ast.JoinedStr):
            found.append("".join(v.value if isinstance(v, ast.Constant) else "RUN" for v in child.values))
        elif isinstance(child, ast.Constant) and isinstance(child.value, str):
            found.append(child.value)
    return found


def texts(tree: ast.AST) -> list[str]:
    """What a user reads: hints, error messages, and lines printed to stderr (docstrings and comments are not)."""
    found = []
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        name = getattr(call.func, "attr", None) or getattr(call.func, "id", "")
        for keyword in call.keywords:
            if keyword.arg == "hint":
                found += _strings(keyword.value)
        if (name.endswith("Error") or name in ("Interrupted", *SHOWN)) and call.args:
            found += _strings(call.args[0])
    return found


def mentions() -> list[tuple[str, str, str]]:
    """(file, verb, the rest of the command) for every "kit VERB ..." in kit's source strings."""
    out = []
    for path in sorted(KIT.rglob("*.py")):
        for text in texts(ast.parse(path.read_text(encoding="utf-8"))):
            for verb, rest in MENTION.findall(text):
                out.append((str(path.relative_to(KIT.parent)), verb, rest))
    return out


def resolve(verb: str, rest: str) -> tuple[click.Command | None, list[str]]:
    command = cli.commands.get(verb)
    words = rest.split()
    if isinstance(command, click.Group) and words and words[0] in command.commands:
        command = command.commands[words[0]]
        words = words[1:]
    elif isinstance(command, click.Group) and "run" in command.commands:  # `kit sweep SPEC` runs `kit sweep run SPEC`
        command = command.commands["run"]
    return command, [w.split("=")[0].rstrip(".`") for w in words if w.startswith("--") and w.rstrip(".`") != "--help"]


@pytest.mark.fault(number=8, scenario="every command and option named in a hint, an error or a progress line exists",
                   sees="no hint names `kit push`, `kit submit --dry-run` or `kit validate`")
def test_every_named_command_and_option_exists():
    bad = []
    for where, verb, rest in mentions():
        if verb in PROSE and verb not in cli.commands:
            continue
        command, flags = resolve(verb, rest)
        if command is None:
            bad.append(f"{where}: kit {verb}{rest}")
            continue
        options = {opt for param in command.params for opt in getattr(param, "opts", []) + getattr(param, "secondary_opts", [])}
        bad += [f"{where}: kit {verb}{rest} ({flag} is not an option)" for flag in flags if flag not in options]
    assert bad == []


@pytest.mark.parametrize("wrong", ["kit push", "kit submit RUN --dry-run", "kit validate FILE"])
def test_the_checker_catches_the_hints_issue_14_found(wrong):
    tree = ast.parse(f"raise BackendError('failed', hint=f'{wrong}')")
    (verb, rest), = MENTION.findall(texts(tree)[0])
    command, flags = resolve(verb, rest)
    options = {opt for param in (command.params if command else []) for opt in getattr(param, "opts", [])}
    assert command is None or any(flag not in options for flag in flags)
