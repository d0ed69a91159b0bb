"""`kit build --explain`: the plan a config gets on a named GPU, through the CLI, equal to what the kernel writes;
the leaderboard's plan columns."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from tests.test_plan import LLAMA_8B


@pytest.fixture
def llama_8b(tmp_path):
    """A model folder holding only Llama-3.1-8B's config.json: what the plan's memory figures read."""
    folder = tmp_path / "llama-8b"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(LLAMA_8B))
    return folder


def explained(kit_cli, *args: str) -> dict:
    result = kit_cli("build", *args, "--explain", "--json")
    assert result.exit_code == 0, result.stderr
    return {name: d["value"] for name, d in json.loads(result.stdout)["decisions"].items()}


@pytest.mark.parametrize("gpu, expected", [
    ("t4x2", {"dtype": "fp16", "engine": "unsloth", "packing": False, "checkpointing": True, "scoring_engines": ["unsloth", "hf"]}),
    ("l4", {"dtype": "bf16", "engine": "unsloth", "packing": False, "dequantize_base": False}),
    ("a100", {"dtype": "bf16", "engine": "unsloth", "packing": False, "dequantize_base": False}),
    ("h100", {"dtype": "bf16", "engine": "hf", "compile": True, "packing": True, "attention": "flash varlen", "dequantize_base": True}),
])
def test_explain_gives_each_profile_its_plan(workspace, kit_cli, llama_8b, gpu, expected):
    got = explained(kit_cli, "train", "--set", f"model={llama_8b}", "--gpu", gpu)
    assert {k: got[k] for k in expected} == expected
    table = kit_cli("build", "train", "--set", f"model={llama_8b}", "--explain", "--gpu", gpu)
    assert table.stdout.startswith("plan (train kernel) on ") and "8.03B parameters" in table.stdout
    assert not (workspace / "build").exists()  # nothing built


def test_explain_plans_the_infer_kernel_and_refuses_an_unknown_profile_in_one_line(workspace, kit_cli, llama_8b):
    got = explained(kit_cli, "infer", "--set", f"model={llama_8b}", "--gpu", "t4x2")
    assert got["engine"] == "unsloth" and got["scoring_gpus"] == 2 and "checkpointing" not in got
    bad = kit_cli("build", "train", "--explain", "--gpu", "t5")
    assert bad.exit_code == 1 and "unknown GPU profile 't5'; profiles: cpu, t4, t4x2" in bad.stderr
    assert "Traceback" not in bad.stderr
    local = kit_cli("build", "train", "--explain")
    assert local.exit_code == 1 and "needs --gpu on the local backend" in local.stderr


def test_explain_says_how_many_processes_train_on_two_t4s_and_why(workspace, kit_cli, llama_8b):
    table = kit_cli("build", "train", "--set", f"model={llama_8b}", "--set", "train_processes=0", "--explain", "--gpu", "t4x2")
    assert table.exit_code == 0, table.stderr
    line = next(line for line in table.stdout.splitlines() if line.split()[:1] == ["train_processes"])
    assert line.split()[1] == "2" and "one per GPU" in line and "rows split between them" in line and "the same updates as one process" in line
    default = explained(kit_cli, "train", "--set", f"model={llama_8b}", "--gpu", "t4x2")
    assert default["train_processes"] == 1
    warned = kit_cli("build", "train", "--set", f"model={llama_8b}", "--set", "train_processes=4", "--explain", "--gpu", "t4x2")
    assert "warning: train_processes=4 but this machine has 2 GPU(s); training in 2, one per GPU" in warned.stdout + warned.stderr


# kit's real entry point in a fresh interpreter: its exit code and whether torch got imported on the way.
PROBE = """
import json, sys
from kit.cli import main
code = 0
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print("PROBE=" + json.dumps({"exit_code": code, "torch": "torch" in sys.modules}))
"""


def _probe(cwd, *args: str, before: str = "") -> dict:
    done = subprocess.run([sys.executable, "-c", before + PROBE, *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    line = next((l for l in done.stdout.splitlines() if l.startswith("PROBE=")), None)
    assert line is not None, done.stderr
    return json.loads(line.removeprefix("PROBE="))


def test_explain_on_a_gpu_profile_imports_no_torch(tmp_path, kit_cli, llama_8b):
    """The plan for an H100 is made without torch (installed here): explain stays a quick look before spending GPU time."""
    pytest.importorskip("torch")  # without torch installed the check below could not fail
    assert kit_cli("init", cwd=tmp_path).exit_code == 0
    args = ("build", "train", "--explain", "--gpu", "h100", "--set", f"model={llama_8b}")  # a local config.json: no network
    assert _probe(tmp_path, *args) == {"exit_code": 0, "torch": False}
    assert _probe(tmp_path, *args, before="import torch\n") == {"exit_code": 0, "torch": True}  # the probe does see torch


@pytest.mark.parametrize("flags, named", [(["--gpu", "h100"], "--gpu needs --explain"), (["--json"], "--json needs --explain"),
                                          (["--gpu", "t4x2", "--json"], "--gpu and --json need --explain")])
def test_gpu_or_json_without_explain_is_refused_in_one_line(workspace, kit_cli, flags, named):
    result = kit_cli("build", "train", *flags)
    assert result.exit_code == 1 and result.stdout == ""
    error, hint = result.stderr.splitlines()
    assert error.startswith(f"error: {named}") and hint == f"hint: kit build train --explain {' '.join(flags)}"
    assert not (workspace / "build").exists()  # nothing built instead


def test_explain_equals_the_plan_the_real_kernel_writes_and_the_leaderboard_shows_it(workspace, kit_cli, tmp_path_factory):
    pytest.importorskip("torch")
    from tests.test_kernel_runtime import make_model, make_tokenizer

    model_dir = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = make_tokenizer()
    make_model(len(tokenizer)).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    settings = [a for s in (f"model={model_dir}", "train_rows=16", "val_rows=8", "test_rows=4", "max_seq_length=128", "batch_size=8",
                            "r=4", "lora_alpha=8", "optim=adamw_torch") for a in ("--set", s)]
    result = kit_cli("push-kernel", "train", "--wait", *settings)
    assert result.exit_code == 0, result.stderr + kit_cli("logs", "run-1").stdout
    written = json.loads((workspace / "submissions" / "run-1" / "plan.json").read_text())  # pulled by default
    preview = kit_cli("build", "train", *settings, "--explain", "--gpu", "cpu", "--json")
    assert preview.exit_code == 0, preview.stderr
    assert json.loads(preview.stdout) == written

    board = workspace / "leaderboard.csv"
    rows = list(csv.DictReader(board.open()))
    assert (rows[0]["plan_engine"], rows[0]["plan_dtype"], rows[0]["plan_packing"], rows[0]["plan_compile"]) == ("hf", "fp32", "off", "off")
    # a person's column survives kit's next rewrite of the row
    text = board.read_text().splitlines()
    board.write_text("\n".join([text[0] + ",my_note"] + [line + ",keep me" for line in text[1:]]) + "\n")
    assert kit_cli("pull", "run-1").exit_code == 0
    rows = list(csv.DictReader(board.open()))
    assert rows[0]["my_note"] == "keep me" and rows[0]["plan_engine"] == "hf"
