"""The kernel builder: one self-contained script with its config at the top, and kernel-metadata.json."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from kit.build.script import build_kernel, kernel_slug, kernel_title
from kit.build.templates import packaged_kernels_dir
from kit.errors import ConfigError
from kit.workspace.kernel_config import make_config


def _kernels(tmp_path: Path, body: str, runtime: dict[str, str]) -> Path:
    kernels = tmp_path / "kernels"
    (kernels / "runtime").mkdir(parents=True)
    (kernels / "train.py").write_text(body)
    for name, text in runtime.items():
        (kernels / "runtime" / f"{name}.py").write_text(text)
    return kernels


TEMPLATE = '''"""A test kernel."""

CONFIG: dict = {}  # kit:config

from runtime.main_mod import main  # inlined

if __name__ == "__main__":
    main(CONFIG)
'''


def test_inlines_runtime_in_dependency_order_and_runs(tmp_path, monkeypatch):
    kernels = _kernels(
        tmp_path,
        TEMPLATE,
        {
            "helper": '"""doc"""\nfrom __future__ import annotations\nimport json\n\ndef double(x):\n    return 2 * x\n',
            "main_mod": (
                "from __future__ import annotations\nimport json\nfrom kernels.runtime.paths import working_dir\n"  # a workspace from before `runtime.`
                "from runtime.helper import double\n\n"
                "def main(config):\n    (working_dir() / 'out.json').write_text(json.dumps({'r': double(config['r'])}))\n"
            ),
            "paths": (packaged_kernels_dir() / "runtime" / "paths.py").read_text(),
        },
    )
    config = make_config("train", {"competition": "c", "r": 8})
    built = build_kernel("train", config, tmp_path / "out", kernels, run_id="run-4")
    files = sorted(p.name for p in built.directory.iterdir())
    assert files == ["kernel-metadata.json", "kernel.py"]
    text = built.script.read_text()
    assert "kernels.runtime" not in text and "from runtime." not in text and "import kit" not in text
    assert text.index("def working_dir") < text.index("def double") < text.index("def main")
    # Run it the way a person would, outside kit, with the Kaggle root moved.
    env = {"KIT_KAGGLE_ROOT": str(tmp_path / "kaggle"), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, str(built.script)], check=True, env=env, cwd=tmp_path)
    assert json.loads((tmp_path / "kaggle" / "working" / "out.json").read_text()) == {"r": 16}


def test_config_is_first_statement_one_setting_per_line(tmp_path):
    kernels = _kernels(tmp_path, TEMPLATE, {"main_mod": "def main(config):\n    pass\n"})
    config = make_config("train", {"competition": "c", "learning_rate": "1e-4"})
    text = build_kernel("train", config, tmp_path / "out", kernels).script.read_text()
    tree = ast.parse(text)
    body = [n for n in tree.body[1:] if not (isinstance(n, ast.ImportFrom) and n.module == "__future__")]
    assert isinstance(body[0], ast.Assign) and body[0].targets[0].id == "CONFIG"
    assert "    'learning_rate': 0.0001," in text and "# peak learning rate" in text
    assert "'machine_shape'" not in text  # kernel metadata stays out of the script


def test_metadata_is_private_gpu_t4_with_competition_source(tmp_path):
    kernels = _kernels(tmp_path, TEMPLATE, {"main_mod": "def main(config):\n    pass\n"})
    config = make_config("train", {"competition": "nyu-dl-fall-24-competition", "enable_internet": "false"})
    meta = json.loads((build_kernel("train", config, tmp_path / "o", kernels, run_id="run-12", owner="me").directory / "kernel-metadata.json").read_text())
    assert meta["id"] == "me/kit-nyu-dl-fall-24-competition-run-12"
    assert kernel_title(kernel_slug("nyu-dl-fall-24-competition", "run-12")).replace(" ", "-") == meta["id"].split("/")[1]
    assert meta["is_private"] is True and meta["enable_gpu"] is True and meta["enable_internet"] is False
    assert meta["machine_shape"] == "NvidiaTeslaT4" and meta["competition_sources"] == ["nyu-dl-fall-24-competition"]
    assert meta["code_file"] == "kernel.py" and meta["kernel_type"] == "script" and meta["language"] == "python"


def test_source_runs_become_kernel_sources(tmp_path):
    kernels = _kernels(tmp_path, TEMPLATE, {"main_mod": "def main(config):\n    pass\n"})
    config = make_config("train", {"competition": "c", "resume_from": "run-7"})
    meta = json.loads((build_kernel("train", config, tmp_path / "o", kernels, owner="me").directory / "kernel-metadata.json").read_text())
    assert meta["kernel_sources"] == ["me/kit-c-run-7"]


@pytest.mark.parametrize(
    "runtime,message",
    [
        ({"main_mod": "import kit\ndef main(c):\n    pass\n"}, "may not `import kit`"),
        ({"main_mod": "from kit.workspace.kernel_config import x\ndef main(c):\n    pass\n"}, "may not import kit"),
        ({"main_mod": "from runtime.other import f\ndef main(c):\n    pass\n"}, "missing module"),
        ({"main_mod": "from runtime.a import f\ndef main(c):\n    pass\n", "a": "def main(c):\n    pass\ndef f():\n    pass\n"}, "both define 'main'"),
        ({"main_mod": "def main(c):\n    from runtime.a import f\n", "a": "def f():\n    pass\n"}, "top level only"),
        ({"main_mod": "from .a import f\ndef main(c):\n    pass\n", "a": "def f():\n    pass\n"}, "relative import"),
        ({"main_mod": "from runtime import a\ndef main(c):\n    pass\n", "a": "def f():\n    pass\n"}, "import runtime names as"),
        ({"main_mod": "import runtime.a\ndef main(c):\n    pass\n", "a": "def f():\n    pass\n"}, "may not `import runtime.a`"),
        ({"main_mod": "from kernels import runtime\ndef main(c):\n    pass\n"}, "import runtime names as"),
    ],
)
def test_builder_refuses_what_cannot_be_inlined(tmp_path, runtime, message):
    kernels = _kernels(tmp_path, TEMPLATE, runtime)
    with pytest.raises(ConfigError, match=message):
        build_kernel("train", make_config("train", {"competition": "c"}), tmp_path / "o", kernels)


def test_hugging_faces_kernels_package_is_an_ordinary_import(tmp_path):
    """`kernels` on PyPI (Hugging Face's, a transformers dependency) is not kit's runtime: the builder keeps it."""
    main_mod = "import kernels\n\ndef main(config):\n    from kernels import get_kernel\n    return get_kernel\n"
    built = build_kernel("train", make_config("train", {"competition": "c"}), tmp_path / "o", _kernels(tmp_path, TEMPLATE, {"main_mod": main_mod}))
    text = built.script.read_text()
    assert "import kernels\n" in text and "from kernels import get_kernel" in text


@pytest.mark.parametrize("kernel", ["train", "infer"])
def test_real_templates_build_into_one_compiling_file(workspace, kit_cli, kernel):
    result = kit_cli("build", kernel, "--set", "r=16" if kernel == "train" else "batch_size=4", "-o", "out")
    assert result.exit_code == 0, result.stderr
    out = workspace / "out"
    assert sorted(p.name for p in out.iterdir()) == ["kernel-metadata.json", "kernel.py"]
    text = (out / "kernel.py").read_text()
    compile(text, "kernel.py", "exec")
    assert "import kit" not in text and "from kit" not in text and "from runtime." not in text
    assert "'model': 'HuggingFaceTB/SmolLM2-135M-Instruct'," in text
    assert "'/kaggle'" in text or '"/kaggle"' in text


def test_wheel_dataset_is_attached_as_a_dataset_source(tmp_path):
    kernels = _kernels(tmp_path, TEMPLATE, {"main_mod": "def main(config):\n    pass\n"})
    config = make_config("train", {"competition": "c", "enable_internet": "false", "wheels_dataset": "me/kit-wheels"})
    meta = json.loads((build_kernel("train", config, tmp_path / "o", kernels).directory / "kernel-metadata.json").read_text())
    assert meta["dataset_sources"] == ["me/kit-wheels"] and meta["enable_internet"] is False
    assert "wheels_dataset" not in (tmp_path / "o" / "kernel.py").read_text()
