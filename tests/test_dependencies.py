"""Each part of kit declares what it imports: pyproject's base dependencies and extras against the imports of
kit/ (base; the Kaggle backend and plots in their extras), kernels/runtime/ ([train]) and tests/ ([test] and all it
pulls in). A package imported but not declared, or declared but imported nowhere (without a reason below), fails."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
LOCAL = {"kit", "kernels", "runtime", "train", "infer", "tests", "bench"}  # kernels/ is on the path: its runtime and templates
# Import names that are not their distribution's name.
DISTRIBUTION = {"slugify": "python-slugify", "huggingface_hub": "huggingface-hub", "yaml": "pyyaml", "sklearn": "scikit-learn"}
# Declared though nothing imports them, each for a reason (docs/reference/dependencies.md says the same).
NOT_IMPORTED = {
    "accelerate": "transformers needs it to load a 4-bit model onto a device",
    "six": "the kaggle client imports it without declaring it",
    "mkdocs": "the documentation's build, run as `python -m mkdocs` (tests/test_docs.py; docs/gen.py is its hook)",
    "mkdocs-material": "the documentation's theme, which mkdocs loads by name",
}
# Imported but deliberately not declared: optional, and installed where it runs.
UNDECLARED = {
    "unsloth": "optional fast path on Kaggle's GPUs (kit deps push bundles it); the kernels run without it",
    "pyarrow": "read only for a Parquet competition (WSDM), installed on Kaggle's image; where it is missing, kit says so in one line",
    "vllm": "optional sampler of generated answers on a GPU where it is installed; transformers samples without it",
}
# Which extras each source folder may rely on: kit's modules split by what they need.
GROUPS = {
    # kit loads kernels/runtime/task.py as kit.task: what it imports, kit's commands import
    "kit (CLI path)": (lambda p: (p.parts[0] == "kit" and p.parts[:3] != ("kit", "backends", "kaggle") and p.name != "plots.py")
                       or p == Path("kernels/runtime/task.py"), ()),
    "kit Kaggle backend": (lambda p: p.parts[:3] == ("kit", "backends", "kaggle"), ("kaggle",)),
    "kit plots": (lambda p: p.parts[:3] == ("kit", "leaderboard", "plots.py"), ("plots",)),
    "kernels": (lambda p: p.parts[0] == "kernels", ("train",)),
    "tests": (lambda p: p.parts[0] == "tests", ("test", "train", "kaggle", "plots")),
}


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def declared(extras: tuple[str, ...]) -> set[str]:
    names = {_name(r) for r in PYPROJECT["dependencies"]}
    for extra in extras:
        names |= {_name(r) for r in PYPROJECT["optional-dependencies"][extra] if not r.startswith("kit[")}
    return names


def imported(files: list[Path]) -> dict[str, set[str]]:
    """Third-party distributions imported anywhere in `files` (also inside functions), with where."""
    found: dict[str, set[str]] = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top in LOCAL:
                    continue
                found.setdefault(DISTRIBUTION.get(top, top).lower().replace("_", "-"), set()).add(str(path))
    return found


def files_of(group: str) -> list[Path]:
    match, _ = GROUPS[group]
    return [p.relative_to(ROOT) for p in sorted(ROOT.glob("*/**/*.py")) if match(p.relative_to(ROOT))]


@pytest.mark.parametrize("group", list(GROUPS))
def test_every_import_is_declared(group):
    files = [ROOT / p for p in files_of(group)]
    assert files, group
    missing = {d: sorted(w)[:2] for d, w in imported(files).items() if d not in declared(GROUPS[group][1]) and d not in UNDECLARED}
    assert not missing, f"{group} imports packages its extras do not declare: {missing}"


def test_every_declared_package_is_imported_somewhere():
    everything = imported([ROOT / p for g in GROUPS for p in files_of(g)])
    declared_anywhere = declared(tuple(PYPROJECT["optional-dependencies"]))
    unused = sorted(d for d in declared_anywhere if d not in everything and d not in NOT_IMPORTED)
    assert not unused, f"declared but imported nowhere: {unused} (remove them, or say why in NOT_IMPORTED and docs/reference/dependencies.md)"


def test_train_extra_is_what_the_kernels_import():
    train = {_name(r) for r in PYPROJECT["optional-dependencies"]["train"]}
    kernels = set(imported([ROOT / p for p in files_of("kernels")])) - set(UNDECLARED)
    assert train - set(NOT_IMPORTED) == kernels


def test_the_docs_say_why_for_each_package_of_the_design():
    section = (ROOT / "docs" / "reference" / "dependencies.md").read_text(encoding="utf-8")
    for package in ("kaggle", "unsloth", "transformers", "trl", "peft", "datasets", "bitsandbytes", "huggingface-hub", "polars"):
        assert re.search(rf"^- \*\*{re.escape(package)}\*\*", section, re.M), f"docs/reference/dependencies.md says nothing of {package}"


def test_the_cli_starts_light_and_fast():
    """`kit --help` imports none of the heavy packages and answers under 0.5 s (the fastest of three: the code's cost, not a busy machine's)."""
    import subprocess
    import time

    heavy = ("torch", "transformers", "numpy", "pandas", "polars", "tqdm", "matplotlib", "kaggle", "requests")
    code = f"import sys, kit.cli; print([m for m in {heavy!r} if m in sys.modules])"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"
    times = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "kit", "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    assert min(times) < 0.5, times
