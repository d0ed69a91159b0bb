"""One schema for kit.toml, sweep specs and run settings: every bad key or value is one line naming the file, the
line, the key and the fix, before anything runs; never a traceback."""

from __future__ import annotations

import pytest

from kit.errors import ConfigError
from kit.workspace.schema import Key, coerce


def _edit(workspace, old: str, new: str) -> None:
    toml = workspace / "kit.toml"
    text = toml.read_text()
    assert old in text
    toml.write_text(text.replace(old, new, 1))


def _line_of(workspace, needle: str) -> int:
    return next(i for i, line in enumerate((workspace / "kit.toml").read_text().splitlines(), 1) if needle in line)


def _one_error(result) -> tuple[str, str]:
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 2 and lines[1].startswith("hint: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0], lines[1]


@pytest.mark.parametrize("old, new, needle, says, fix", [
    ('name = "local"', 'nmae = "kaggle"', "nmae", "[backend] unknown key 'nmae' (did you mean 'name'?)", "allowed keys in [backend]: name"),
    ("public_rows = 0", "public_row = 500", "public_row ", "unknown key 'public_row' (did you mean 'public_rows'?)", "public_rows"),
    ("final_picks = 3", 'final_picks = "three"', "final_picks", "bad value 'three' for 'final_picks': expected an integer", "final_picks = 3"),
    ("public_rows = 0", 'public_rows = "x"', "public_rows", "bad value 'x' for 'public_rows': expected an integer", "public_rows = 0"),
    ("public_rows = 0", "public_rows = -5", "public_rows", "must be at least 0", "public_rows = 0"),
    ("public_rows = 0", "public_rows = true", "public_rows", "expected an integer", "public_rows = 0"),
    ('name = "local"', 'name = "gcp"', "gcp", "bad value 'gcp' for 'name': expected one of local, kaggle", 'name = "local"'),
    ("\n[infer]\n", "\n[pick]\nn = 2\n[infer]\n", "[pick]", "unknown table [pick]", "allowed tables"),
    ("\n[train]\n", "\n[train]\nlearning_rate = nan\n", "nan", "bad value nan for 'learning_rate': expected a finite number", "learning_rate = 0.0002"),
    ("\n[train]\n", "\n[train]\nthreshold = 2\n", "threshold", "bad value 2 for 'threshold': expected a number in (0, 1) or 'tune'", 'threshold = "0.5"'),
    ("\n[train]\n", '\n[train]\nresume_from = "last"\n', "resume_from", "expected a run id such as run-3", "resume_from"),
    ("\n[train]\n", "\n[train]\nwarmup = 5\n", "warmup", "[train] unknown setting 'warmup' (did you mean 'warmup_steps'?)", "warmup_steps"),
    ("\n[infer]\n", "\n[sweep]\nconcurrency = 0.5\n[infer]\n", "concurrency", "bad value 0.5 for 'concurrency': expected an integer", "concurrency = 0"),
])
def test_bad_kit_toml_is_one_line_with_file_line_key_and_fix(workspace, kit_cli, old, new, needle, says, fix):
    _edit(workspace, old, new)
    error, hint = _one_error(kit_cli("status"))
    assert error.startswith(f"error: {workspace / 'kit.toml'}:{_line_of(workspace, needle)}: ")
    assert says in error and fix in hint


def test_a_table_written_as_a_bare_string_says_how_to_write_the_table(workspace, kit_cli):
    text = (workspace / "kit.toml").read_text().replace("[backend]\n", "").replace('name = "local"\n', "")
    (workspace / "kit.toml").write_text('backend = "kaggle"\n' + text)
    error, hint = _one_error(kit_cli("status"))
    assert error == f'error: {workspace / "kit.toml"}:1: backend = "kaggle" is not a table'
    assert hint == 'hint: write it as a table: a line [backend], then name = "kaggle" under it'


def test_a_missing_slug_names_its_table(workspace, kit_cli):
    _edit(workspace, 'slug = "practice-math"\n', "")
    error, hint = _one_error(kit_cli("status"))
    assert "[competition] slug is missing" in error and 'slug = "..."' in hint


@pytest.mark.parametrize("data, says", [
    (b"[competition]\nslug = \"caf\xe9\"\n", "kit.toml:2: byte 0xe9 is not UTF-8 text"),
    ("[competition]\nslug = 'x'\n".encode("utf-16"), "is UTF-16 text, not UTF-8"),
    (b"[competition\nslug = 1\n", "fix the TOML syntax"),
])
def test_unreadable_kit_toml_is_one_line(workspace, kit_cli, data, says):
    (workspace / "kit.toml").write_bytes(data)
    error, hint = _one_error(kit_cli("status"))
    assert says in error + hint


def test_kit_toml_values_reach_the_workspace_typed(workspace):
    from kit.workspace import layout

    _edit(workspace, "public_rows = 0", "public_rows = 1e3")  # an integral float is an integer
    _edit(workspace, "\n[infer]\n", "\n[sweep]\nconcurrency = 2\n[infer]\n")
    ws = layout.load(workspace)
    assert ws.public_rows == 1000 and isinstance(ws.public_rows, int) and ws.value("sweep", "concurrency") == 2
    assert ws.value("kaggle", "username") == "" and ws.final_picks == 3


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN", "1e999"])
def test_non_finite_settings_are_refused_at_build(workspace, kit_cli, value):
    error, hint = _one_error(kit_cli("build", "train", "--set", f"learning_rate={value}"))
    assert f"bad value '{value}' for 'learning_rate': expected a finite number (not nan or inf)" in error
    assert not (workspace / "build").exists()


def test_non_finite_float_in_a_sweep_spec_is_refused(tmp_path):
    from kit.runs.sweep.spec import load_spec

    spec = tmp_path / "s.toml"
    spec.write_text('name = "x"\n[grid]\nlearning_rate = [1e-4, inf]\n')
    with pytest.raises(ConfigError) as info:
        load_spec(spec)
    assert info.value.message.startswith(f"{spec}:3: [grid] bad value inf for 'learning_rate': expected a finite number")


@pytest.mark.parametrize("text, says", [
    ('name = "x"\nkernel = "trian"\n', ":2: bad value 'trian' for 'kernel': expected one of infer, train"),
    ('name = "x"\n[grid]\nlearning_rat = [1e-4]\n', ":3: [grid] unknown setting 'learning_rat' (did you mean 'learning_rate'?)"),
    ('name = "x"\n[random]\ncount = "many"\nr = [8]\n', ":3: [random] bad value 'many' for 'count'"),
    ('name = "x"\ngpu_hours_per_run = 0\n', ":2: bad value 0 for 'gpu_hours_per_run': must be above 0"),
    ('name = "x"\n[base]\nprompt = 3.5\nr = "r"\n', ":4: [base] bad value 'r' for 'r': expected an integer"),
])
def test_sweep_specs_name_file_and_line(tmp_path, text, says):
    from kit.runs.sweep.spec import load_spec

    spec = tmp_path / "s.toml"
    spec.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_spec(spec)
    assert info.value.message.startswith(str(spec)) and says in info.value.message and info.value.hint


# Issue 30: `--set lr=1e-4` suggested 'r'; the names other tools give a setting point to kit's name for it.
@pytest.mark.parametrize("alias, name", [
    ("lr", "learning_rate"), ("rank", "r"), ("bs", "batch_size"), ("num_train_epochs", "epochs"), ("lora_r", "r"),
    ("gradient_accumulation_steps", "grad_accum"), ("LR", "learning_rate"),
])
def test_set_with_another_tools_name_suggests_kits_name(workspace, kit_cli, alias, name):
    error, hint = _one_error(kit_cli("build", "train", "--set", f"{alias}=8"))
    assert f"unknown setting {alias!r} of the train kernel (did you mean {name!r}? that is kit's name for {alias})" in error
    assert name in hint and not (workspace / "build").exists()


def test_an_alias_in_kit_toml_or_a_sweep_spec_points_to_kits_name(workspace, kit_cli, tmp_path):
    _edit(workspace, "\n[train]\n", "\n[train]\nlr = 1e-4\n")
    error, _ = _one_error(kit_cli("status"))
    assert f"{workspace / 'kit.toml'}:{_line_of(workspace, 'lr = 1e-4')}: [train] unknown setting 'lr' (did you mean 'learning_rate'?" in error
    from kit.runs.sweep.spec import load_spec

    for table in ("grid", "random"):
        spec = tmp_path / f"{table}.toml"
        spec.write_text(f'name = "x"\n[{table}]\nrank = [8, 16]\n')
        with pytest.raises(ConfigError) as info:
            load_spec(spec)
        assert f"[{table}] unknown setting 'rank' (did you mean 'r'? that is kit's name for rank)" in info.value.message


def test_prompt_names_are_a_closed_set_checked_at_build(workspace, kit_cli):
    error, hint = _one_error(kit_cli("build", "train", "--set", "prompt=gradr"))
    assert "bad value 'gradr' for 'prompt': unknown prompt (did you mean 'grader'?)" in error
    assert "--set prompt=grader" in hint and not (workspace / "build").exists()
    assert kit_cli("build", "train", "--set", "prompt=midterm").exit_code == 0


def test_a_prompt_added_to_the_workspace_kernels_is_known(workspace, kit_cli):
    prompts = workspace / "kernels" / "runtime" / "prompts.py"
    text = prompts.read_text()
    prompts.write_text(text.replace("PROMPTS: dict", 'MINE = PromptTemplate(name="mine", text="{question} {answer} {solution}")\n\nPROMPTS: dict')
                       .replace("(GRADER,", "(MINE, GRADER,"))
    assert kit_cli("build", "train", "--set", "prompt=mine").exit_code == 0


def test_a_bad_prompt_in_a_sweep_fails_before_any_push(workspace, kit_cli):
    (workspace / "s.toml").write_text('name = "p"\n[grid]\nprompt = ["grader", "gradr"]\n')
    result = kit_cli("sweep", "s.toml", "--yes")
    assert result.exit_code == 1 and "unknown prompt (did you mean 'grader'?)" in result.stderr
    assert not list((workspace / "submissions").glob("run-*"))


@pytest.mark.parametrize("key, value, out", [
    (Key(int, 0), "12", 12), (Key(int, 0), 3.0, 3), (Key(float, 0.0), "1e-4", 1e-4), (Key(bool, False), "off", False),
    (Key(list, []), "a, b", ["a", "b"]), (Key(str, ""), 0.5, "0.5"),
])
def test_coerce_accepts_each_type(key, value, out):
    assert coerce("k", key, value) == out


@pytest.mark.parametrize("key, value", [
    (Key(int, 0), True), (Key(int, 0), "1.5"), (Key(int, 0), "nan"), (Key(float, 0.0), False), (Key(float, 0.0), "inf"),
    (Key(bool, False), "maybe"), (Key(str, ""), True), (Key(str, "", choices=("a",)), "b"), (Key(list, []), [True]),
    (Key(int, 0, min=1, max=2), 3), (Key(str, "", check=lambda v: "no" if v == "x" else ""), "x"),
])
def test_coerce_refuses_wrong_types_and_values(key, value):
    with pytest.raises(ConfigError, match="bad value"):
        coerce("k", key, value)


@pytest.mark.parametrize("write, says", [
    (lambda p: p.write_bytes(b'name = "caf\xe9"\n'), ":1: byte 0xe9 is not UTF-8 text"),
    (lambda p: p.write_bytes('name = "x"\n'.encode("utf-16")), "is UTF-16 text, not UTF-8"),
    (lambda p: p.mkdir(), "is a folder, not a sweep spec"),
])
def test_unreadable_sweep_specs_are_one_line(tmp_path, write, says):
    from kit.runs.sweep.spec import load_spec

    spec = tmp_path / "s.toml"
    write(spec)
    with pytest.raises(ConfigError) as info:
        load_spec(spec)
    assert says in info.value.message and info.value.hint
