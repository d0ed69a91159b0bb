"""The kernels' pinned installs (kernels/runtime/install.py) with real pip, from wheel folders, in throwaway layers.

Each test makes a venv layered over this one (its path continues into this venv's packages, pip installs into the
layer only), puts small wheels in a folder laid as an attached wheel dataset, and runs the runtime's install there
in a subprocess, reading what it logged and what ended up installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from runtime.install import pip_failure, split_pin
from runtime.plan import package_set
from runtime.pins import PINNED_IMAGE, PINNED_PACKAGES, WHEELS_MANIFEST

REPO = Path(__file__).resolve().parents[1]


def wheel(folder: Path, name: str, version: str, requires: tuple[str, ...] = (), tag: str = "py3-none-any") -> Path:
    """A small valid wheel with dependencies."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{version}-{tag}.whl"
    dist = f"{name}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(f"Requires-Dist: {r}\n" for r in requires)
    with zipfile.ZipFile(path, "w") as whl:
        whl.writestr(f"{name}/__init__.py", f"VERSION = {version!r}\n")
        whl.writestr(f"{dist}/METADATA", meta)
        whl.writestr(f"{dist}/WHEEL", f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: {tag}\n")
        whl.writestr(f"{dist}/RECORD", "")
    return path


@pytest.fixture
def layer(tmp_path):
    """A venv over this one: `run(code)` runs Python there with the repo importable."""
    venv = tmp_path / "layer"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    # Every site folder this interpreter sees, not only its own: under bench/image_check.py it is itself a layer
    # (a .pth is not followed into the folders it adds), and pip lives in the image's venv below it.
    bases = [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages")] or [sysconfig.get_paths()["purelib"]]
    (site / "zz-base.pth").write_text("\n".join([*bases, str(REPO), str(REPO / "kernels")]) + "\n")
    python = venv / "bin" / "python"

    def run(code: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "KIT_KAGGLE_ROOT": str(tmp_path / "kaggle"), "PIP_CONFIG_FILE": "/dev/null",
               "PIP_NO_INDEX": "1", **(env_extra or {})}
        return subprocess.run([str(python), "-c", code], capture_output=True, text=True, env=env, timeout=300)

    run.python = python
    return run


def install(layer, pins: tuple[str, ...], wheels_root: Path) -> subprocess.CompletedProcess:
    code = ("import json, sys; from runtime.install import install_set, installed_versions; "
            f"missing = install_set('test', {pins!r}, wheels_root=__import__('pathlib').Path({str(wheels_root)!r})); "
            "print('RESULT', json.dumps({'missing': missing, 'versions': installed_versions()}))")
    return layer(code)


def result(done: subprocess.CompletedProcess) -> dict:
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def test_installs_the_pins_from_the_wheel_dataset_and_holds_the_rest(layer, tmp_path):
    wheels = tmp_path / "kaggle" / "input" / "kit-offline-wheels"
    wheel(wheels, "kitholda", "0.1")
    wheel(wheels, "kitholda", "0.2")
    wheel(wheels, "kitpinb", "0.1")
    wheel(wheels, "kitpinb", "0.2")
    wheel(wheels, "kitpina", "1.0", requires=("kitpinb>=0.2", "kitholda"))
    first = install(layer, ("kitholda==0.1", "kitpinb==0.1"), wheels.parent)
    assert result(first)["missing"] == [], first.stdout + first.stderr
    # kitholda is installed and not in this set: it stays at 0.1 though 0.2 is in the folder; kitpinb moves as pinned
    done = install(layer, ("kitpina==1.0", "kitpinb==0.2"), wheels.parent)
    out = result(done)
    assert out["missing"] == [], done.stdout + done.stderr
    assert out["versions"]["kitpina"] == "1.0" and out["versions"]["kitpinb"] == "0.2" and out["versions"]["kitholda"] == "0.1"
    assert f"installing the pinned test set from the wheels in {wheels}: 2 of 2 packages" in done.stdout
    assert "  kitpina 1.0 (was absent)" in done.stdout and "  kitpinb 0.2 (was 0.1)" in done.stdout
    again = install(layer, ("kitpina==1.0", "kitpinb==0.2"), wheels.parent)
    assert "packages: the pinned test set is installed (2 packages)" in again.stdout and "installing" not in again.stdout


def test_a_pin_that_would_move_a_held_package_fails_in_one_line_naming_it(layer, tmp_path):
    wheels = tmp_path / "kaggle" / "input" / "wheels"
    wheel(wheels, "kitholda", "0.1")
    wheel(wheels, "kitholda", "0.2")
    wheel(wheels, "kitpinc", "1.0", requires=("kitholda>=0.2",))
    assert result(install(layer, ("kitholda==0.1",), wheels.parent))["missing"] == []
    done = install(layer, ("kitpinc==1.0",), wheels.parent)
    out = result(done)
    assert out["missing"] == ["kitpinc==1.0"] and out["versions"]["kitholda"] == "0.1"
    errors = [line for line in done.stdout.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: installing kitpinc==1.0 failed: ")
    assert "kitholda" in errors[0] and "fix: rebuild the wheel dataset for this image with `kit deps push`" in errors[0]


def test_a_wheel_dataset_for_another_image_says_so(layer, tmp_path):
    wheels = tmp_path / "kaggle" / "input" / "old-wheels"
    wheel(wheels, "kitpind", "0.1")
    (wheels / WHEELS_MANIFEST).write_text(json.dumps({"image": {"image": "kaggle-gpu 2025", "python": "3.9", "torch": "2.0.0"}}))
    done = install(layer, ("kitpind==0.1",), wheels.parent)
    assert result(done)["missing"] == []
    warnings = [line for line in done.stdout.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1
    assert f"was made for kaggle-gpu 2025: python 3.9 (this session: {sys.version_info.major}.{sys.version_info.minor})" in warnings[0]
    assert "rebuild it for this image with `kit deps push`" in warnings[0]


def test_offline_without_wheels_names_the_package_and_the_fix(layer, tmp_path):
    code = ("import socket; socket.create_connection = lambda *a, **k: (_ for _ in ()).throw(OSError('network is off')); "
            "from runtime.install import install_set; print('RESULT', install_set('test', ('kitnothere==1.0',)))")
    done = layer(code)
    assert "RESULT ['kitnothere==1.0']" in done.stdout
    assert ("error: cannot install kitnothere==1.0: the internet is off and no wheel dataset is attached; "
            "fix: attach the one `kit deps push` builds (wheels_dataset in kit.toml) or turn enable_internet on") in done.stdout


def test_outside_kaggle_nothing_is_installed(layer):
    done = layer("from runtime.install import install_pinned; print('RESULT', install_pinned('auto', gpu=True))",
                 {"KAGGLE_KERNEL_RUN_TYPE": "Batch"})  # KIT_KAGGLE_ROOT is set: the local backend's emulation
    assert done.stdout.strip() == "RESULT []"


def test_the_set_follows_the_engine_and_the_gpu():
    assert package_set("auto", gpu=True) == "unsloth" and package_set("unsloth", gpu=True) == "unsloth"
    assert package_set("hf", gpu=True) == "hf" and package_set("auto", gpu=False) == "hf"
    hf = {split_pin(p)[0] for p in PINNED_PACKAGES["hf"]}
    assert hf <= {split_pin(p)[0] for p in PINNED_PACKAGES["unsloth"]}
    # unsloth 2026.10.9 refuses the image's transformers 5.0.0 and datasets 4.0.*; trl must stay <= 1.15.0
    pins = dict(split_pin(p) for p in PINNED_PACKAGES["unsloth"])
    assert pins["transformers"] != PINNED_IMAGE["transformers"] and not pins["datasets"].startswith("4.0.")
    assert tuple(int(x) for x in pins["trl"].split(".")) <= (1, 15, 0)
    assert "torch" not in pins and "torchvision" not in pins and "triton" not in pins


def test_pip_failure_names_the_pinned_package():
    output = ("ERROR: Could not find a version that satisfies the requirement xformers==0.0.35 (from versions: none)\n"
              "ERROR: No matching distribution found for xformers==0.0.35\n")
    assert pip_failure(output, ("bitsandbytes==0.50.2", "xformers==0.0.35")) == (
        "xformers==0.0.35", "Could not find a version that satisfies the requirement xformers==0.0.35 (from versions: none)")


LOAD = ("import sys; {quiet}from runtime.modeling import load_base_model; "
        "load_base_model(sys.argv[1], engine='hf', dtype=__import__('torch').float32, quantize=False, max_seq_length=64)")


@pytest.mark.parametrize("quiet", [True, False])
def test_a_model_load_puts_one_line_in_a_log_that_is_not_a_terminal(tmp_path, quiet):
    """transformers draws a 'Loading weights' bar; into a pipe (a kernel's log) every redraw would be a line."""
    pytest.importorskip("torch")
    from transformers import LlamaConfig, LlamaForCausalLM

    LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                                 num_key_value_heads=1)).save_pretrained(tmp_path / "model")
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"a": 0, "</s>": 1}, unk_token="a")), eos_token="</s>").save_pretrained(tmp_path / "model")
    code = LOAD.format(quiet="from runtime.environment import quiet_progress_bars; quiet_progress_bars(); " if quiet else "")
    env = {k: v for k, v in __import__("os").environ.items() if k != "HF_HUB_DISABLE_PROGRESS_BARS"}
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "model")], capture_output=True, text=True, env={**env, "PYTHONPATH": str(REPO / "kernels")})
    assert done.returncode == 0, done.stderr
    output = (done.stdout + done.stderr).replace("\r", "\n")
    assert f"loaded {tmp_path / 'model'} (hf) in " in done.stdout
    assert ("Loading weights" in output) is not quiet
