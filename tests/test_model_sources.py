"""Models from Kaggle sources: the `model` setting takes a Kaggle Models handle or a Kaggle dataset, the kernel is
built with it attached, loads it from the input tree with the hub offline, and a model an internet-off kernel could
not load is refused before anything is built or pushed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kit.workspace.model_sources import HUB, KAGGLE_DATASET, KAGGLE_MODEL, PATH, parse_model
from runtime.paths import attached_model
from tests.conftest import run_kit
from tests.kaggle_standin.fixtures import init_kaggle_workspace

HANDLE = "metaresearch/llama-3.1/transformers/8b-instruct"


@pytest.mark.parametrize("spec,kind", [
    ("HuggingFaceTB/SmolLM2-135M-Instruct", HUB), ("gpt2", HUB), ("./models/mine", PATH), ("/abs/model.gguf", PATH),
    (HANDLE, KAGGLE_MODEL), (HANDLE + "/2", KAGGLE_MODEL), ("google/gemma/pyTorch/2b", KAGGLE_MODEL),
    ("dataset:me/llama-weights", KAGGLE_DATASET), ("dataset:me/llama-weights/8b/hf", KAGGLE_DATASET),
])
def test_model_spellings(spec, kind):
    assert parse_model(spec).kind == kind


BAD = [
    ("a/b/c", "3 parts"),
    ("me/llama/notaframework/v1/1", "not a Kaggle model framework"),
    (HANDLE + "/latest", "the version 'latest' must be a number"),
    ("o/m/jax/v/1/extra", "6 parts"),
    ("dataset:me", "dataset:owner/slug"),
    ("me//x", "every part between slashes"),
]


@pytest.mark.parametrize("spec,why", BAD)
def test_a_model_that_does_not_parse_fails_in_one_line(workspace, kit_cli, spec, why):
    result = kit_cli("build", "train", "--set", f"model={spec}")
    assert result.exit_code == 1
    error, hint = result.stderr.strip().splitlines()
    assert error.startswith(f"error: bad value {spec!r} for 'model': does not parse: ") and why in error
    assert "; use a hub id (org/name), a Kaggle model handle (owner/model/framework/variation[/version]" in error
    assert hint == "hint: kit build train --set model=VALUE"
    assert not (workspace / "build").exists()


def test_a_model_in_kit_toml_that_does_not_parse_names_its_line(workspace, kit_cli):
    toml = workspace / "kit.toml"
    toml.write_text(toml.read_text().replace("[train]\n", "[train]\nmodel = \"me/llama/transformers\"\n"))
    result = kit_cli("build", "train")
    assert result.exit_code == 1 and "kit.toml" in result.stderr and "'me/llama/transformers'" in result.stderr
    assert "does not parse: 3 parts" in result.stderr


@pytest.fixture
def kaggle_workspace(kaggle_env, standin, tmp_path, monkeypatch) -> Path:
    return init_kaggle_workspace(tmp_path, monkeypatch)


def _metadata(folder: Path) -> dict:
    return json.loads((folder / "kernel-metadata.json").read_text())


def test_a_kaggle_model_is_attached_as_a_model_source(kaggle_workspace):
    result = run_kit("build", "train", "--set", f"model={HANDLE}/2", "--set", "enable_internet=false", "-o", "out")
    assert result.exit_code == 0, result.stderr
    meta = _metadata(kaggle_workspace / "out")
    assert meta["model_sources"] == [HANDLE + "/2"] and meta["enable_internet"] is False and meta["dataset_sources"] == []
    assert f"'model': '{HANDLE}/2'," in (kaggle_workspace / "out" / "kernel.py").read_text()


def test_a_kaggle_dataset_is_attached_as_a_dataset_source(kaggle_workspace):
    result = run_kit("build", "infer", "--set", "model=dataset:me/llama-weights/8b", "--set", "enable_internet=false",
                     "--set", "wheels_dataset=me/kit-wheels", "-o", "out")
    assert result.exit_code == 0, result.stderr
    meta = _metadata(kaggle_workspace / "out")
    assert meta["dataset_sources"] == ["me/llama-weights", "me/kit-wheels"] and meta["model_sources"] == []


def test_a_hub_model_with_the_internet_off_fails_at_build_push_and_doctor(kaggle_workspace, standin):
    toml = kaggle_workspace / "kit.toml"
    toml.write_text(toml.read_text().replace("[train]\n", "[train]\nenable_internet = false\n"))
    built = run_kit("build", "train")
    assert built.exit_code == 1
    error, hint = built.stderr.strip().splitlines()
    assert error == ("error: model 'unsloth/Meta-Llama-3.1-8B-bnb-4bit' is a Hugging Face hub id, which a kernel with "
                     "the internet off (enable_internet=false) cannot download")
    assert hint.startswith("hint: attach it from Kaggle: --set model=OWNER/MODEL/FRAMEWORK/VARIATION[/VERSION]")
    pushed = run_kit("push-kernel", "train")
    assert pushed.exit_code == 1 and "cannot download" in pushed.stderr
    assert not standin.calls("SaveKernel") and not (kaggle_workspace / "submissions" / "run-1").exists()
    doctor = run_kit("doctor")
    assert doctor.exit_code == 1
    assert "FAIL  train kernel builds: model 'unsloth/Meta-Llama-3.1-8B-bnb-4bit' is a Hugging Face hub id" in doctor.stdout
    assert "fix: attach it from Kaggle" in doctor.stdout
    assert "ok    infer kernel builds" in doctor.stdout  # [infer] keeps the internet on
    # attached from Kaggle, the same settings build
    assert run_kit("build", "train", "--set", f"model={HANDLE}/2").exit_code == 0


def test_a_local_path_on_kaggle_is_refused(kaggle_workspace):
    result = run_kit("build", "train", "--set", "model=./my-model")
    assert result.exit_code == 1 and "is a path on this machine, which a Kaggle kernel cannot read" in result.stderr


def test_a_handle_without_a_version_gets_the_latest_on_the_wire(kaggle_workspace, standin):
    standin.models = {"me/tiny-llama/transformers/default": 3}
    pushed = run_kit("push-kernel", "train", "--set", "model=me/tiny-llama/transformers/default", "--set", "enable_internet=false")
    assert pushed.exit_code == 0, pushed.stderr
    asked, = standin.calls("GetModelInstance")
    assert asked.json == {"ownerSlug": "me", "modelSlug": "tiny-llama", "framework": "MODEL_FRAMEWORK_TRANSFORMERS", "instanceSlug": "default"}
    save, = standin.calls("SaveKernel")
    assert save.json["modelDataSources"] == ["me/tiny-llama/transformers/default/3"] and save.json["enableInternet"] is False
    kernel = kaggle_workspace / "submissions" / "run-1" / "kernel"
    assert _metadata(kernel)["model_sources"] == ["me/tiny-llama/transformers/default/3"]  # the run records its version
    assert "'model': 'me/tiny-llama/transformers/default'," in (kernel / "kernel.py").read_text()  # it finds version 3


def test_a_handle_kaggle_does_not_know_is_one_line(kaggle_workspace, standin):
    pushed = run_kit("push-kernel", "train", "--set", "model=me/nothing/transformers/default")
    assert pushed.exit_code == 1
    assert "error: model 'me/nothing/transformers/default' is not on Kaggle" in pushed.stderr
    assert "hint: check the handle on https://www.kaggle.com/models/me/nothing" in pushed.stderr
    assert not standin.calls("SaveKernel")


# -- the kernel's side: where Kaggle mounts what it attached


def _model(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    return folder


@pytest.fixture
def kaggle_root(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("KIT_KAGGLE_ROOT", str(tmp_path / "kaggle"))
    return tmp_path / "kaggle" / "input"


def test_kernel_finds_a_model_where_kaggle_mounts_it(kaggle_root):
    model = _model(kaggle_root / "models" / "metaresearch" / "llama-3.1" / "transformers" / "8b-instruct" / "2")
    assert attached_model(HANDLE + "/2") == model
    assert attached_model(HANDLE) == model  # no version: the one that is mounted
    assert attached_model("metaresearch/llama-3.1/Transformers/8b-instruct/2") == model  # Kaggle lower-cases frameworks
    assert attached_model("HuggingFaceTB/SmolLM2-135M-Instruct") is None and attached_model("./x") is None
    with pytest.raises(FileNotFoundError, match="not attached"):
        attached_model(HANDLE + "/1")


def test_kernel_finds_older_mounts_and_nested_model_folders(kaggle_root):
    nested = _model(kaggle_root / "llama-3.1" / "transformers" / "8b-instruct" / "1" / "Llama-3.1-8B-Instruct")
    assert attached_model(HANDLE) == nested
    with pytest.raises(FileNotFoundError, match="not attached"):
        attached_model("dataset:me/weights")
    data = _model(kaggle_root / "datasets" / "me" / "weights" / "8b")
    _model(kaggle_root / "datasets" / "me" / "weights" / "1b")
    assert attached_model("dataset:me/weights/8b") == data
    with pytest.raises(FileNotFoundError, match="2 models in .*name the folder"):
        attached_model("dataset:me/weights")
    old = _model(kaggle_root / "old-weights")
    assert attached_model("dataset:me/old-weights") == old


def test_an_attached_model_takes_the_hub_offline(kaggle_root, monkeypatch):
    from runtime.modeling import read_model_config, resolve_model, use_model_source

    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    model = _model(kaggle_root / "models" / "me" / "tiny" / "transformers" / "default" / "1")
    (model / "config.json").write_text('{"hidden_size": 32}')
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    use_model_source("me/tiny/transformers/default")
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
    assert huggingface_hub.constants.HF_HUB_OFFLINE is True
    assert resolve_model("me/tiny/transformers/default") == str(model)
    assert read_model_config("me/tiny/transformers/default") == {"hidden_size": 32}


# -- the local backend: kagglehub's cache stands in for the attached model


def test_local_backend_refuses_a_kaggle_model_it_has_no_copy_of(workspace, kit_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "empty-cache"))
    result = kit_cli("push-kernel", "train", "--set", "model=me/tiny-llama/transformers/default")
    assert result.exit_code == 1
    assert "error: model 'me/tiny-llama/transformers/default' has no local copy for the local backend" in result.stderr
    assert "kagglehub.model_download('me/tiny-llama/transformers/default')" in result.stderr
    assert not (workspace / "submissions" / "run-1").exists()


def test_real_train_kernel_loads_a_kaggle_model_on_the_local_backend(workspace, kit_cli, tmp_path, monkeypatch):
    """The real train kernel, with a Kaggle model handle (no version): the local backend mounts kagglehub's copy as
    Kaggle would, and the kernel loads it from the input tree with the hub offline."""
    from tests.test_kernel_runtime import make_model, make_tokenizer

    cache = tmp_path / "kagglehub"
    for version in (1, 2):  # the newest version is the one attached
        folder = cache / "models" / "me" / "tiny-llama" / "transformers" / "default" / str(version)
        tokenizer = make_tokenizer()
        make_model(len(tokenizer), hidden_size=32 if version == 2 else 16).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(cache))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # any hub request would fail
    result = kit_cli(
        "push-kernel", "train", "--wait", "--set", "model=me/tiny-llama/transformers/default", "--set", "train_rows=16",
        "--set", "val_rows=8", "--set", "max_seq_length=128", "--set", "batch_size=8", "--set", "test_rows=8",
    )
    log = kit_cli("logs", "run-1").stdout
    assert result.exit_code == 0, result.stderr + log
    assert "input/models/me/tiny-llama/transformers/default/2; the Hugging Face hub is offline" in log
    assert json.loads((workspace / "submissions" / "run-1" / "metrics.json").read_text())["val_rows"] == 8
