"""A bad setting's fix names the command that was run (kit push-kernel, not kit build), messages name kernels as a
person does (no internal class names), and a local model path with nothing there is refused before anything is
pushed, in one line."""

from __future__ import annotations

import json

import pytest


def _lines(result) -> list[str]:
    return result.stderr.strip().splitlines()


def _nothing_pushed(workspace) -> None:
    assert not (workspace / "submissions").exists() or not list((workspace / "submissions").glob("run-*"))
    assert not (workspace / ".kit" / "local").exists()


@pytest.mark.parametrize("verb", ["push-kernel", "build"])
def test_a_bad_value_names_the_command_that_was_run(workspace, kit_cli, verb):
    result = kit_cli(verb, "train", "--set", "learning_rate=fast")
    assert result.exit_code == 1
    assert _lines(result) == ["error: bad value 'fast' for 'learning_rate': expected a number",
                              f"hint: kit {verb} train --set learning_rate=VALUE"]
    _nothing_pushed(workspace)


def test_push_kernel_hints_name_push_kernel(workspace, kit_cli):
    unknown = kit_cli("push-kernel", "train", "--set", "lr_sheduler=cosine")
    assert unknown.exit_code == 1
    assert _lines(unknown)[0] == "error: unknown setting 'lr_sheduler' of the train kernel (did you mean 'lr_scheduler'?)"
    assert "TrainConfig" not in unknown.stderr and "kernel config" not in unknown.stderr
    malformed = kit_cli("push-kernel", "train", "--set", "learning_rate")
    assert _lines(malformed) == ["error: bad --set 'learning_rate': expected KEY=VALUE", "hint: kit push-kernel train --set learning_rate=1e-4"]
    no_kernel = kit_cli("push-kernel", "trian")
    assert _lines(no_kernel)[-1] == "hint: kit push-kernel train  |  kit push-kernel infer"
    assert "kit build" not in unknown.stderr + malformed.stderr + no_kernel.stderr
    _nothing_pushed(workspace)


@pytest.mark.parametrize("verb", ["push-kernel", "build"])
def test_a_local_model_path_with_nothing_there_is_refused_before_pushing(workspace, kit_cli, verb):
    result = kit_cli(verb, "train", "--set", "model=./nothere")
    assert result.exit_code == 1
    error, hint = _lines(result)
    assert error == f"error: model './nothere' is a path on this machine with nothing there ({workspace.resolve() / 'nothere'})"
    assert hint.startswith(f"hint: kit {verb} train --set model=PATH with the folder of a model")
    _nothing_pushed(workspace)


def test_a_relative_model_path_reaches_the_kernel_from_the_workspace(workspace, kit_cli):
    folder = workspace / "models" / "mine"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (workspace / "sub").mkdir()
    built = kit_cli("build", "train", "--set", "model=../models/mine", "-o", "out", cwd=workspace / "sub")
    assert built.exit_code == 1 and "nothing there" in built.stderr  # relative to the workspace, not the shell's folder
    built = kit_cli("build", "train", "--set", "model=./models/mine", "-o", "out")
    assert built.exit_code == 0, built.stderr
    assert f"'model': {json.dumps(str(folder.resolve()))}".replace('"', "'") in (workspace / "out" / "kernel.py").read_text()


WARMUP = "warning: warm-up (10 steps) is not shorter than the run (4 steps): the learning rate never reaches learning_rate="


def test_build_and_push_say_when_the_warm_up_outlasts_the_run(workspace, kit_cli):
    from tests.helpers import CONSTANT_TEMPLATE, install_template

    built = kit_cli("build", "train", "--set", "max_steps=4", "--set", "warmup_steps=10")
    assert built.exit_code == 0 and WARMUP in built.stderr
    explained = kit_cli("build", "train", "--set", "max_steps=4", "--set", "warmup_steps=10", "--explain", "--gpu", "cpu")
    assert "warmup_steps=10 of the run's 4 steps" in explained.stdout and WARMUP in explained.stderr
    assert WARMUP not in kit_cli("build", "train", "--set", "max_steps=40", "--set", "warmup_steps=10").stderr
    install_template(workspace, CONSTANT_TEMPLATE)
    pushed = kit_cli("push-kernel", "train", "--set", "max_steps=4", "--set", "warmup_steps=10", "--wait")
    assert pushed.exit_code == 0 and WARMUP in pushed.stderr
