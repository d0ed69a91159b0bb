"""Issue 25: hostile or odd inputs are refused in one line, before anything is read, sent or built: a submission
that is a link out of the workspace, a kernel output that is one, competition slugs that are not Kaggle's, and
numbers no setting can mean."""

from __future__ import annotations

import json
import os
import re

import pytest

from tests.helpers import CONSTANT_TEMPLATE, install_template


def fault(scenario: str, sees: str):
    return pytest.mark.fault(number=13, scenario=scenario, sees=sees)


def _practice_submissions(workspace):
    path = workspace / ".kit" / "practice" / "practice-math" / "submissions.json"
    return json.loads(path.read_text())["submissions"] if path.exists() else []


@pytest.fixture
def finished_run(workspace, kit_cli):
    install_template(workspace, CONSTANT_TEMPLATE)
    assert kit_cli("push-kernel", "train", "--wait").exit_code == 0
    return workspace / "submissions" / "run-1"


@fault("submission.csv is a link to a valid file outside the workspace", "refused before it is read: nothing uploaded")
def test_a_submission_linked_from_outside_the_workspace_is_refused(workspace, kit_cli, finished_run, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere") / "submission.csv"
    outside.write_bytes((finished_run / "submission.csv").read_bytes())  # a file kit would otherwise accept
    (finished_run / "submission.csv").unlink()
    os.symlink(outside, finished_run / "submission.csv")
    result = kit_cli("submit", "run-1", "--yes")
    assert result.exit_code == 1 and "outside the workspace" in result.stderr and "nothing was submitted" in result.stderr
    assert _practice_submissions(workspace) == []
    assert "Traceback" not in result.stderr


@fault("submission.csv is a link to a secret file outside the workspace (as /etc/passwd)", "refused; no line of the file is printed")
def test_no_line_of_a_file_outside_the_workspace_is_printed(workspace, kit_cli, finished_run, tmp_path_factory):
    secret = tmp_path_factory.mktemp("etc") / "passwd"
    secret.write_text("root:x:0:0:the-secret-first-line:/root:/bin/bash\nuser:x:1000:1000::/home/user:/bin/sh\n")
    (finished_run / "submission.csv").unlink()
    os.symlink(secret, finished_run / "submission.csv")
    for args in (("submit", "run-1", "--yes"), ("submit", "run-1", "--yes", "--again")):
        result = kit_cli(*args)
        assert result.exit_code == 1
        assert "the-secret-first-line" not in result.stderr + result.stdout and "root:x" not in result.stderr + result.stdout
    assert _practice_submissions(workspace) == []


LINKING_TEMPLATE = CONSTANT_TEMPLATE.replace('''    print("done", flush=True)''', '''    import os
    (working_dir() / "submission.csv").unlink()
    os.symlink(os.environ["KIT_TEST_OUTSIDE"], working_dir() / "submission.csv")
    print("done", flush=True)''')


@fault("a local kernel writes submission.csv as a link to a file outside the workspace", "kit pull refuses to copy it, naming the file")
def test_a_kernel_output_linked_out_of_the_workspace_is_not_copied(workspace, kit_cli, monkeypatch, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere") / "private.csv"
    outside.write_text("ID,is_correct\nthe-private-line,True\n")
    monkeypatch.setenv("KIT_TEST_OUTSIDE", str(outside))
    install_template(workspace, LINKING_TEMPLATE)
    result = kit_cli("push-kernel", "train", "--wait")
    assert result.exit_code == 1 and "submission.csv is a link to a file outside the workspace" in result.stderr, result.stderr
    assert "the-private-line" not in result.stderr + result.stdout
    assert not (workspace / "submissions" / "run-1" / "submission.csv").exists()


BAD_SLUGS = {"backticks": '"`id`"', "shell": '"x; touch p #"', "parent folders": '"../../x"', "a slash": '"a/b"',
             "a number": "3", "upper case": '"Math-Grader"', "spaces": '"math grader"', "empty": '""'}


@pytest.mark.parametrize("case", sorted(BAD_SLUGS))
@fault("competition slugs in kit.toml: `id`, x; touch p #, ../../x, a/b, 3, upper case, spaces, empty", "one line naming kit.toml's line and the slug, with the fix; nothing built")
def test_a_competition_slug_not_like_kaggles_is_refused(workspace, kit_cli, case):
    toml = workspace / "kit.toml"
    toml.write_text(re.sub(r'(?m)^slug = .*$', f"slug = {BAD_SLUGS[case]}", toml.read_text()))
    result = kit_cli("build", "train", "-o", "out")
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 2 and "kit.toml:" in lines[0] and "not a Kaggle competition slug" in lines[0], result.stderr
    assert lines[1].startswith("hint: slug = ") and "kaggle.com/competitions/" in lines[1]
    assert not (workspace / "out").exists() and not (workspace / "p").exists()


def test_kit_init_refuses_a_slug_not_like_kaggles(tmp_path, kit_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = kit_cli("init", "--competition", "x; touch p #")
    assert result.exit_code == 1 and "not a Kaggle competition slug" in result.stderr
    assert not (tmp_path / "kit.toml").exists()


@pytest.mark.parametrize("setting", ["max_steps=1e99", "seed=99999999999999999999", "epochs=1e300"])
@fault("numbers no setting can mean: --set max_steps=1e99, a 20-digit seed, epochs=1e300", "one line: the setting and its bounds; nothing built")
def test_numeric_settings_are_bounded(workspace, kit_cli, setting):
    result = kit_cli("build", "train", "--set", setting, "-o", "out")
    assert result.exit_code == 1 and "must be" in result.stderr and "2147483647" in result.stderr, result.stderr
    assert not (workspace / "out").exists()
