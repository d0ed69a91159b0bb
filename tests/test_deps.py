"""`kit deps push` builds the wheel dataset from the kernels' pinned set, for the image's Python and platforms."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from kit.backends.kaggle.deps import PLATFORMS, read_pins
from tests.conftest import run_kit
from tests.kaggle_standin.fixtures import init_kaggle_workspace

# The tags the real wheels of the pinned set carry (bitsandbytes 0.50.2 is manylinux_2_24 only; asking for
# manylinux2014 and _2_28 alone gave bitsandbytes 0.42.0).
TAGS = {
    "bitsandbytes": "py3-none-manylinux_2_24_x86_64",
    "msgspec": "cp312-cp312-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64",
    "pyarrow": "cp312-cp312-manylinux_2_28_x86_64",
    "tokenizers": "cp310-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64",
    "xformers": "py39-none-manylinux_2_28_x86_64",
}


def fake_wheel(folder: Path, pin: str, tag: str = "") -> str:
    name, _, version = pin.partition("==")
    dist = name.replace("-", "_")
    path = folder / f"{dist}-{version}-{tag or TAGS.get(name, 'py3-none-any')}.whl"
    with zipfile.ZipFile(path, "w") as whl:
        whl.writestr(f"{dist}-{version}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        whl.writestr(f"{dist}-{version}.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\n")
    return path.name


@pytest.fixture
def kaggle_workspace(kaggle_env, standin, tmp_path, monkeypatch) -> Path:
    return init_kaggle_workspace(tmp_path, monkeypatch)


def test_deps_push_builds_the_kernels_pinned_set_for_the_image(kaggle_workspace, standin, tmp_path):
    pins = read_pins(kaggle_workspace / "kernels")
    assert "bitsandbytes==0.50.2" in pins.union and "unsloth==2026.10.9" in pins.union and len(set(pins.union)) == len(pins.union)
    index = tmp_path / "index"
    index.mkdir()
    expected = sorted(fake_wheel(index, pin) for pin in pins.union)
    # builds the image cannot load (a newer glibc, another Python): never picked
    fake_wheel(index, "bitsandbytes==0.50.2", "py3-none-manylinux_2_39_x86_64")
    fake_wheel(index, "msgspec==0.23.0", "cp311-cp311-manylinux_2_17_x86_64")
    fake_wheel(index, "msgspec==0.23.0", "cp313-cp313-manylinux_2_17_x86_64")

    result = run_kit("deps", "push", "--find-links", str(index))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "testuser/kit-offline-wheels"
    uploaded = sorted(r.json["name"] for r in standin.calls("StartBlobUpload"))
    folder = kaggle_workspace / ".kit" / "deps"
    manifest = json.loads((folder / "kit-wheels.json").read_text())
    assert sorted(p.name for p in folder.glob("*.whl")) == expected == manifest["wheels"]
    assert set(expected) <= set(uploaded)
    assert manifest["image"] == pins.image and manifest["packages"] == list(pins.union) and manifest["python"] == "3.12"
    assert f"downloading {len(pins.union)} wheels" in result.stderr


def test_platform_tags_run_from_the_images_glibc_down_to_manylinux2014():
    assert PLATFORMS[0] == "manylinux_2_35_x86_64" and "manylinux_2_24_x86_64" in PLATFORMS and "manylinux2014_x86_64" in PLATFORMS
    assert not any(tag.startswith("manylinux_2_36") for tag in PLATFORMS)


def test_pins_the_workspace_lacks_come_from_kit(tmp_path):
    (tmp_path / "kernels" / "runtime").mkdir(parents=True)  # a workspace from before pins.py: its runtime has none
    assert read_pins(tmp_path / "kernels").union == read_pins(None).union
