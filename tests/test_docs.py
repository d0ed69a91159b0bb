"""The documentation: a strict mkdocs build (no broken link, no page left out), reference pages generated from the
code, and a README that stays short, points into docs/ and holds the commands CI runs."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def build(root: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(root / "mkdocs.yml"), "-d", str(site)],
                          capture_output=True, text=True, env=ENV, cwd=root)


def gen():
    spec = importlib.util.spec_from_file_location("docs_gen", ROOT / "docs" / "gen.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_site_builds_strictly_with_the_generated_reference(tmp_path):
    done = build(ROOT, tmp_path / "site")
    assert done.returncode == 0, done.stderr
    commands = (tmp_path / "site" / "reference" / "commands" / "index.html").read_text(encoding="utf-8")
    settings = (tmp_path / "site" / "reference" / "settings" / "index.html").read_text(encoding="utf-8")
    assert "kit push-kernel" in commands and "--where" in commands
    assert "learning_rate" in settings and "workspace_id" in settings


def test_a_broken_link_fails_the_strict_build(tmp_path):
    """The check CI runs can fail: a link to a page that does not exist stops the build, naming the page."""
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "docs", copy / "docs")
    shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    page = copy / "docs" / "concepts.md"
    page.write_text(page.read_text(encoding="utf-8") + "\nSee [the missing page](guides/no-such-page.md).\n", encoding="utf-8")
    done = build(copy, tmp_path / "site")
    assert done.returncode != 0 and "no-such-page.md" in done.stderr


def _every_command(group: click.Group, ctx: click.Context, prefix: str):
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        sub = click.Context(command, info_name=name, parent=ctx)
        yield f"{prefix} {name}", command, sub
        if isinstance(command, click.Group):
            yield from _every_command(command, sub, f"{prefix} {name}")


def test_the_command_reference_has_every_command_and_option():
    from kit.cli import cli

    page = gen().commands_page()
    found = list(_every_command(cli, click.Context(cli, info_name="kit"), "kit"))
    assert len(found) > 20
    for full, command, ctx in found:
        assert f"\n## {full} " in page, full
        section = page[page.index(f"\n## {full} "):]
        section = section[: section.find("\n## ", 5)] if "\n## " in section[5:] else section
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert all(opt in section for opt in param.opts), (full, param.opts)


def test_the_settings_reference_has_every_key_of_the_schema():
    from kit.workspace import kernel_config
    from kit.workspace.layout import KIT_TOML
    from kit.workspace.schema import Table

    module = gen()
    page = module.settings_page()
    tables = list(KIT_TOML.items())
    while tables:
        table, spec = tables.pop()
        assert f"[{table}]" in page
        if spec.word != "setting":
            for key, value in spec.key_map().items():
                if isinstance(value, Table):  # a table inside a table: [task.target]
                    tables.append((f"{table}.{key}", value))
                else:
                    assert f"| `{key}` |" in page, (table, key)
    for kernel, cls in kernel_config.KERNEL_CONFIGS.items():
        section = page[page.index(f"### {kernel} settings"):]
        for name, key in kernel_config.setting_keys(cls).items():
            assert re.search(rf"^\| `{name}` \| .*\| {re.escape(module._cell(key.help)[:30])}", section, re.M), (kernel, name)


def test_gen_writes_the_pages_without_mkdocs(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "docs" / "gen.py"), str(tmp_path)], capture_output=True, text=True, env=ENV)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "reference" / "commands.md").read_text(encoding="utf-8") == gen().commands_page()


def _readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def _bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)\n```", text, re.S)


def test_the_readme_is_short_and_every_link_into_docs_exists():
    text = _readme()
    assert len(text.splitlines()) <= 80
    links = re.findall(r"\]\((docs/[^)#]+)", text)
    assert links and all((ROOT / link).is_file() for link in links), [link for link in links if not (ROOT / link).is_file()]


def test_ci_runs_the_readme_test_command_and_the_docs_show_the_readme_commands():
    """.ci/run runs the README's command (2) word for word; getting started shows the same two commands."""
    first, second = _bash_blocks(_readme())[:2]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert second.strip() in ci.splitlines()
    started = (ROOT / "docs" / "getting-started.md").read_text(encoding="utf-8")
    assert first.strip() in _bash_blocks(started) and second.strip() in _bash_blocks(started)


@pytest.mark.parametrize("extra", ["mkdocs", "mkdocs-material"])
def test_the_docs_tools_are_in_the_test_extra(extra):
    import tomllib

    test = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]["test"]
    assert any(re.match(rf"{re.escape(extra)}\b(?!-)", r) for r in test)
