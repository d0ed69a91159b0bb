"""Run configs: unknown keys and bad values fail with the key's name and the allowed values."""

from __future__ import annotations

import pytest

from kit.errors import ConfigError
from kit.workspace.kernel_config import make_config, parse_assignments


def test_defaults_and_overrides_are_typed():
    config = make_config("train", {"competition": "c"}, parse_assignments(["learning_rate=1e-4", "r=64", "balance=false"]))
    assert config.learning_rate == 1e-4 and config.r == 64 and config.balance is False


def test_unknown_key_names_key_and_suggests():
    with pytest.raises(ConfigError) as exc:
        make_config("train", {"learnig_rate": "1e-4"})
    assert "'learnig_rate'" in exc.value.message and "learning_rate" in exc.value.message
    assert "learning_rate" in exc.value.hint


@pytest.mark.parametrize(
    "key,value,expected",
    [
        ("lr_scheduler", "cosin", "one of linear, cosine"),
        ("r", "big", "an integer"),
        ("r", "0", "between 1 and 1024"),
        ("balance", "maybe", "true or false"),
        ("lora_dropout", "1.5", "between 0.0 and 1.0"),
        ("threshold", "2", "'tune'"),
        ("resume_from", "last", "run id"),
    ],
)
def test_bad_value_names_key_and_allowed(key, value, expected):
    with pytest.raises(ConfigError) as exc:
        make_config("train", {key: value})
    assert repr(key) in exc.value.message and expected in exc.value.message


def test_unknown_kernel():
    with pytest.raises(ConfigError, match="known kernels: infer, train"):
        make_config("predict")


def test_bad_assignment_syntax():
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_assignments(["learning_rate"])


def test_cli_reports_bad_setting_in_one_line(workspace, kit_cli):
    result = kit_cli("build", "train", "--set", "optim=sgdd")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: bad value 'sgdd' for 'optim'") and "adamw_8bit" in lines[0]
    assert lines[1].startswith("hint:") and len(lines) == 2


def test_bad_kit_toml_setting_is_reported(workspace, kit_cli):
    toml = workspace / "kit.toml"
    toml.write_text(toml.read_text().replace("[train]\n", "[train]\nwarmup = 5\n"))
    result = kit_cli("status")
    assert result.exit_code == 1 and "unknown setting 'warmup'" in result.stderr


def test_workspace_found_from_subfolder(workspace, kit_cli, monkeypatch):
    sub = workspace / "submissions" / "deep"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    assert kit_cli("status").exit_code == 0


def test_no_workspace_error(tmp_path, kit_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = kit_cli("status")
    assert result.exit_code == 1 and "no kit.toml" in result.stderr and "kit init" in result.stderr


def test_practice_competition_belongs_to_the_local_backend(tmp_path, kit_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert kit_cli("init", "--backend", "kaggle", "--competition", "nyu-dl-fall-24-competition").exit_code == 0
    result = kit_cli("practice", "init")
    assert result.exit_code == 1 and "local backend" in result.stderr
    assert not (tmp_path / ".kit" / "practice").exists()
