"""Kernel names by Kaggle's rules: titles of at most 50 characters that slugify to the id, one kernel per run and
per workspace, and pushed runs keep the kernel they were pushed as. Checked on the wire with the real client."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from slugify import slugify  # python-slugify: what the kaggle client checks a title against

from kit.build.script import TITLE_MAX, kernel_slug, kernel_title
from kit.errors import ConfigError
from kit.runs import store
from kit.runs.store import KernelStatus
from kit.workspace import layout
from tests.conftest import run_kit
from tests.helpers import CONSTANT_TEMPLATE, install_template

# The longest slugs of recent competitions, the reference competition, and the practice one.
COMPETITIONS = [
    "ai-mathematical-olympiad-progress-prize-2",
    "eedi-mining-misconceptions-in-mathematics",
    "llm-detect-ai-generated-text",
    "lmsys-chatbot-arena",
    "nyu-dl-fall-24-competition",
    "practice-math",
    "NYU_DL_Fall_24",  # not a real slug's spelling, but it must still make a valid name
]


@pytest.mark.parametrize("competition", COMPETITIONS)
@pytest.mark.parametrize("run_id", ["run-0", "run-1", "run-10", "run-999", "run-10000", "run-1234567"])
def test_titles_fit_and_slugify_to_the_id(competition, run_id):
    slug = kernel_slug(competition, run_id, "k3x9q2")
    title = kernel_title(slug)
    assert len(title) <= TITLE_MAX
    assert slugify(title) == slug  # Kaggle files the kernel under the title's slug: they must agree
    assert "--" not in slug and not slug.startswith("-") and not slug.endswith("-")
    assert slug.startswith("kit-") and slug.endswith(f"-k3x9q2-{run_id}")


def test_every_run_of_a_workspace_shows_the_same_competition_part():
    parts = {kernel_slug("ai-mathematical-olympiad-progress-prize-2", f"run-{n}", "k3x9q2").rsplit("-k3x9q2-", 1)[0]
             for n in (1, 10, 999, 10000, 999999)}
    assert parts == {"kit-ai-mathematical-olympiad"}  # cut at a word, and the same for every run


def test_a_slug_without_letters_or_digits_is_refused():
    with pytest.raises(ConfigError, match="cannot make a Kaggle kernel title") as info:
        kernel_slug("---", "run-1", "k3x9q2")
    assert "[competition]" in (info.value.hint or "")


def _workspace(tmp_path: Path, monkeypatch, name: str, competition: str) -> Path:
    root = tmp_path / name
    root.mkdir()
    monkeypatch.chdir(root)
    result = run_kit("init", "--backend", "kaggle", "--competition", competition)
    assert result.exit_code == 0, result.stderr
    return root


def _workspace_id(root: Path) -> str:
    return tomllib.loads((root / "kit.toml").read_text())["kaggle"]["workspace_id"]


def test_two_workspaces_of_one_competition_never_share_a_kernel(kaggle_env, standin, tmp_path, monkeypatch):
    competition = "ai-mathematical-olympiad-progress-prize-2"
    first = _workspace(tmp_path, monkeypatch, "a", competition)
    assert run_kit("push-kernel", "train", cwd=first).exit_code == 0
    second = _workspace(tmp_path, monkeypatch, "b", competition)
    assert run_kit("push-kernel", "train", cwd=second).exit_code == 0
    a, b = (call.json for call in standin.calls("SaveKernel"))
    assert _workspace_id(first) != _workspace_id(second)
    assert a["slug"] != b["slug"]
    for body, root in ((a, first), (b, second)):
        assert body["slug"] == f"testuser/kit-ai-mathematical-olympiad-{_workspace_id(root)}-run-1"
        assert len(body["newTitle"]) <= TITLE_MAX and slugify(body["newTitle"]) == body["slug"].split("/")[1]
        assert store.load(layout.load(root), "run-1").remote == body["slug"]


def test_run_10000_gets_a_valid_name_on_the_wire(kaggle_env, standin, tmp_path, monkeypatch):
    root = _workspace(tmp_path, monkeypatch, "ws", "llm-detect-ai-generated-text")
    (root / "submissions" / ".last-run").write_text("9999\n")
    pushed = run_kit("push-kernel", "train", cwd=root)
    assert pushed.exit_code == 0, pushed.stderr
    assert pushed.stdout.strip() == "run-10000"
    body = standin.calls("SaveKernel")[0].json
    assert body["slug"] == f"testuser/kit-llm-detect-ai-generated-text-{_workspace_id(root)}-run-10000"
    assert len(body["newTitle"]) <= TITLE_MAX and slugify(body["newTitle"]) == body["slug"].split("/")[1]


def test_a_workspace_without_an_id_gets_one_recorded_once(kaggle_env, standin, tmp_path, monkeypatch):
    root = _workspace(tmp_path, monkeypatch, "old", "math-grader")
    toml = root / "kit.toml"
    # a workspace made before kernel names had an id, with a person's own comment in [kaggle]
    text = "\n".join(line for line in toml.read_text().splitlines() if not line.startswith("workspace_id"))
    toml.write_text(text.replace('username = ""', 'username = ""  # my account'))
    assert run_kit("push-kernel", "train", cwd=root).exit_code == 0
    made = _workspace_id(root)
    assert len(made) == 6 and "# my account" in toml.read_text()
    assert run_kit("push-kernel", "train", cwd=root).exit_code == 0
    assert _workspace_id(root) == made
    slugs = [c.json["slug"] for c in standin.calls("SaveKernel")]
    assert slugs == [f"testuser/kit-math-grader-{made}-run-1", f"testuser/kit-math-grader-{made}-run-2"]


def test_pushed_runs_keep_their_kernel_as_sources(kaggle_env, standin, tmp_path, monkeypatch):
    root = _workspace(tmp_path, monkeypatch, "ws", "math-grader")
    ws = layout.load(root)
    # run-1 was pushed before kernel names carried the workspace id: its record names its kernel
    old = store.allocate(ws, "train", "kaggle", {})
    old.remote, old.status = "testuser/kit-math-grader-run-1", KernelStatus.COMPLETE
    store.save(ws, old)
    pushed = run_kit("push-kernel", "train", "--set", "resume_from=run-1", cwd=root)
    assert pushed.exit_code == 0, pushed.stderr
    body = standin.calls("SaveKernel")[0].json
    assert body["kernelDataSources"] == ["testuser/kit-math-grader-run-1"]
    assert body["slug"] == f"testuser/kit-math-grader-{ws.workspace_id}-run-2"


def test_a_competition_that_cannot_make_a_title_fails_in_one_line(tmp_path, monkeypatch):
    # Such a slug is not Kaggle's (issue 25): kit init refuses it, and kit.toml edited to it fails the build, each
    # in one line naming the slug, with the fix.
    monkeypatch.chdir(tmp_path)
    init = run_kit("init", "--backend", "kaggle", "--competition", "___")
    assert init.exit_code == 1 and "'___'" in init.stderr and "not a Kaggle competition slug" in init.stderr
    assert not (tmp_path / "kit.toml").exists()
    root = _workspace(tmp_path, monkeypatch, "ws", "math-grader")
    toml = root / "kit.toml"
    toml.write_text(toml.read_text().replace('slug = "math-grader"', 'slug = "___"'))
    result = run_kit("build", "train", cwd=root)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: ") and "'___'" in lines[0] and "not a Kaggle competition slug" in lines[0]
    assert lines[1].startswith("hint: slug = ") and "under [competition] in kit.toml" in lines[1]
    assert not (root / "build").exists()


def test_a_bad_workspace_id_fails_in_one_line(tmp_path, monkeypatch):
    root = _workspace(tmp_path, monkeypatch, "ws", "math-grader")
    toml = root / "kit.toml"
    toml.write_text(toml.read_text().replace(f'workspace_id = "{_workspace_id(root)}"', 'workspace_id = "My WS"'))
    result = run_kit("build", "train", cwd=root)
    assert result.exit_code == 1 and "bad value 'My WS' for 'workspace_id'" in result.stderr and "hint: delete the line" in result.stderr


def test_local_runs_are_named_like_kaggle_ones(workspace, kit_cli):
    install_template(workspace, CONSTANT_TEMPLATE)
    assert kit_cli("push-kernel", "train", "--wait").exit_code == 0
    meta = json.loads((workspace / "submissions" / "run-1" / "kernel" / "kernel-metadata.json").read_text())
    wsid = layout.load(workspace).workspace_id
    assert meta["id"] == f"USERNAME/kit-practice-math-{wsid}-run-1" and meta["title"] == f"kit practice math {wsid} run 1"
