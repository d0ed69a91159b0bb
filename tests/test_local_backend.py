"""The local backend: kernels run as processes in an emulated Kaggle tree, with status, logs and outputs."""

from __future__ import annotations

import json
import shutil
import time

import pytest

from kit.runs import store
from kit.workspace import layout
from tests.helpers import CONSTANT_TEMPLATE, FAILING_TEMPLATE, install_template


def _wait_final(ws_root, run_id, kit_cli, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        out = json.loads(kit_cli("status", run_id, "--json").stdout)[0]
        if out["status"] in ("complete", "error", "cancelled"):
            return out
        time.sleep(0.3)
    raise AssertionError(f"{run_id} did not finish")


def test_push_wait_pulls_outputs_and_records_run(workspace, kit_cli):
    install_template(workspace, CONSTANT_TEMPLATE)
    result = kit_cli("push-kernel", "train", "--set", "r=8", "--wait")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "run-1"
    run_dir = workspace / "submissions" / "run-1"
    assert {"submission.csv", "metrics.json", "log.txt", "run.json"} <= {p.name for p in run_dir.iterdir()}
    assert not (run_dir / "adapter").exists()  # only the files a person reads, by default
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "complete" and record["kernel"] == "train" and record["backend"] == "local"
    assert record["config"]["r"] == 8 and record["config"]["model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert record["started"] and record["finished"]
    # the machine the kernel ran on: "cpu" here without nvidia-smi, else the GPU's name
    assert (record["gpu"] == "cpu") == (shutil.which("nvidia-smi") is None) and record["gpu"], record["gpu"]
    assert "submission.csv" in record["outputs"]
    assert "step 1 loss 0.69" in (run_dir / "log.txt").read_text()
    assert (run_dir / "kernel" / "kernel.py").is_file()  # the exact script that ran stays with the run
    assert kit_cli("pull", "run-1", "--all").exit_code == 0
    assert (run_dir / "adapter" / "weights.bin").is_file()


def test_run_ids_increase_and_are_never_reused(workspace, kit_cli):
    install_template(workspace, CONSTANT_TEMPLATE)
    ids = [kit_cli("push-kernel", "train", "--detach").stdout.strip() for _ in range(2)]
    assert ids == ["run-1", "run-2"]
    for run_id in ids:
        _wait_final(workspace, run_id, kit_cli)
    shutil.rmtree(workspace / "submissions" / "run-2")
    assert kit_cli("push-kernel", "train", "--detach").stdout.strip() == "run-3"
    _wait_final(workspace, "run-3", kit_cli)


def test_failing_kernel_ends_in_error_with_log_tail(workspace, kit_cli):
    install_template(workspace, FAILING_TEMPLATE)
    result = kit_cli("push-kernel", "train", "--wait")
    assert result.exit_code == 1
    assert "run-1 failed: RuntimeError: CUDA out of memory" in result.stderr
    status = kit_cli("status", "run-1")
    assert "error" in status.stdout and "RuntimeError: CUDA out of memory while loading the model" in status.stdout
    assert "loading model" in status.stdout  # the log's last lines
    assert json.loads((workspace / "submissions" / "run-1" / "run.json").read_text())["status"] == "error"


def test_cancel_a_running_kernel(workspace, kit_cli):
    install_template(workspace, CONSTANT_TEMPLATE)
    run_id = kit_cli("push-kernel", "train", "--set", "warmup_steps=300", "--detach").stdout.strip()
    deadline = time.time() + 20
    while json.loads(kit_cli("status", run_id, "--json").stdout)[0]["status"] != "running":
        assert time.time() < deadline
        time.sleep(0.2)
    assert kit_cli("cancel", run_id).exit_code == 0
    assert _wait_final(workspace, run_id, kit_cli)["status"] == "cancelled"


def test_logs_follow_prints_until_the_end(workspace, kit_cli):
    install_template(workspace, CONSTANT_TEMPLATE)
    run_id = kit_cli("push-kernel", "train", "--set", "warmup_steps=5", "--detach").stdout.strip()
    out = kit_cli("logs", run_id, "-f").stdout
    assert "step 1 loss 0.69" in out and "done" in out


def test_earlier_run_is_attached_as_source(workspace, kit_cli):
    install_template(workspace, CONSTANT_TEMPLATE)
    assert kit_cli("push-kernel", "train", "--wait").exit_code == 0
    run_id = kit_cli("push-kernel", "train", "--set", "resume_from=run-1", "--detach").stdout.strip()
    _wait_final(workspace, run_id, kit_cli)
    ws = layout.load(workspace)
    linked = ws.state_dir / "local" / run_id / "kaggle" / "input" / f"kit-practice-math-{ws.workspace_id}-run-1"
    assert (linked / "adapter" / "weights.bin").is_file()
    assert store.load(ws, run_id).config["resume_from"] == "run-1"


def test_source_must_be_a_complete_run(workspace, kit_cli):
    result = kit_cli("push-kernel", "train", "--set", "resume_from=run-9")
    assert result.exit_code == 1 and "no run run-9" in result.stderr
    assert not (workspace / "submissions" / "run-1").exists()


def test_real_train_kernel_with_a_tiny_model_end_to_end(workspace, kit_cli, tmp_path_factory):
    """The real kernels/train.py, built and run on the local backend with a tiny Llama, then submitted."""
    from tests.test_kernel_runtime import make_model, make_tokenizer

    model_dir = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = make_tokenizer()
    make_model(len(tokenizer)).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    result = kit_cli(
        "push-kernel", "train", "--wait",
        "--set", f"model={model_dir}", "--set", "train_rows=32", "--set", "val_rows=16",
        "--set", "max_seq_length=256", "--set", "batch_size=8",
    )
    assert result.exit_code == 0, result.stderr + kit_cli("logs", "run-1").stdout
    run_dir = workspace / "submissions" / "run-1"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["val_rows"] == 16 and 0.0 <= metrics["val_accuracy"] <= 1.0
    assert (run_dir / "submission.csv").read_text().startswith("ID,is_correct\n")
    assert json.loads((run_dir / "run.json").read_text())["gpu"]
    submitted = kit_cli("submit", "run-1", "--yes")
    assert submitted.exit_code == 0, submitted.stderr
    assert "public 0." in submitted.stdout or "public 1." in submitted.stdout


ENV_TEMPLATE = CONSTANT_TEMPLATE.replace('''    print("done", flush=True)''', '''    import os
    (working_dir() / "environment.json").write_text(json.dumps(dict(os.environ)))
    print("done", flush=True)''')

SECRETS = {"KAGGLE_USERNAME": "someone", "KAGGLE_KEY": "k" * 32, "KAGGLE_API_TOKEN": "KGAT_secret", "KAGGLE_CONFIG_DIR": "/home/me/.kaggle",
           "HF_TOKEN": "hf_secret", "HUGGING_FACE_HUB_TOKEN": "hf_secret", "OPENAI_API_KEY": "sk-secret", "AWS_SECRET_ACCESS_KEY": "aws",
           "DB_PASSWORD": "pw", "MY_SERVICE_SECRET": "s", "GITHUB_TOKEN": "ghp"}


@pytest.mark.fault(number=12, scenario="a local kernel reads its environment (KAGGLE_*, HF_TOKEN, *_API_KEY, *SECRET*, *PASSWORD*, *TOKEN* set)",
                   sees="none of them; PATH, HOME and the rest as they were")
def test_a_local_kernel_gets_no_credentials(workspace, kit_cli, monkeypatch):
    for name, value in {**SECRETS, "KIT_TEST_PLAIN": "kept"}.items():
        monkeypatch.setenv(name, value)
    install_template(workspace, ENV_TEMPLATE)
    assert kit_cli("push-kernel", "train", "--wait").exit_code == 0
    assert kit_cli("pull", "run-1", "--all").exit_code == 0
    seen = json.loads((workspace / "submissions" / "run-1" / "environment.json").read_text())
    assert not set(SECRETS) & set(seen), sorted(set(SECRETS) & set(seen))
    assert not any(value in seen.values() for value in SECRETS.values())
    assert seen["KIT_TEST_PLAIN"] == "kept" and seen["PATH"] and seen["HOME"]
