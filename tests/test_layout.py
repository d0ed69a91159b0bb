"""kit's folders show its loop and its modules import each other one way: `ls kit/` holds the loop's packages, no
import cycle joins kit's modules (imports inside functions count: they only hide a cycle), the packages' __init__.py
hold a docstring and nothing else, and pyproject ships every package."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
KIT = ROOT / "kit"
# The loop, in order: a workspace's settings are built into a kernel, pushed as a run to a backend, its file
# submitted, compared on the leaderboard, and the finals chosen.
LOOP = ("workspace", "build", "runs", "backends", "submissions", "leaderboard", "finals")
# Packages whose __init__.py is more than a docstring: kit's, for the version.
INIT_WITH_CODE = {"kit"}


def module_files(package: Path) -> dict[str, Path]:
    """Every module under `package` by its dotted name (a package by its own name, for its __init__.py)."""
    modules = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Which of `modules` each one imports, at its top or inside a function (`from a import b` counts as a.b where
    a.b is a module, else as a)."""

    def known(name: str) -> str:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets |= {known(a.name) for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets |= {known(f"{node.module}.{a.name}") for a in node.names}
        graph[name] = targets - {"", name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as the modules along it (the first repeated at the end), or [] if there is none."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" once every path from it was followed
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = "open"
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = "done"
        return []

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Every group of modules joined by an import cycle (the graph's strongly connected parts of two or more)."""
    groups = []
    left = set(graph)
    while left:
        node = min(left)
        reach, todo = {node}, [node]
        while todo:
            for target in graph.get(todo.pop(), ()):
                if target not in reach:
                    reach.add(target)
                    todo.append(target)
        back = {m for m in reach if node in _reachable(graph, m)}
        if len(back) > 1:
            groups.append(back)
        left -= back | {node}
    return groups


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for target in graph.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_kit_has_no_import_cycle():
    graph = import_graph(module_files(KIT))
    found = cycles(graph)
    sub = {m: graph[m] & found[0] for m in found[0]} if found else {}
    assert not found, "import cycle: " + " -> ".join(find_cycle(sub))


def test_the_cycle_check_sees_a_cycle_inside_a_function(tmp_path):
    """The check itself can fail: a cycle closed by an import inside a function is found and named."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text('"""A package."""\n')
    (package / "a.py").write_text("from pkg.b import thing\n")
    (package / "b.py").write_text("def thing():\n    from pkg import c\n")
    (package / "c.py").write_text("def other():\n    from pkg.a import thing\n")
    assert find_cycle(import_graph(module_files(package))) == ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]
    (package / "c.py").write_text("def other():\n    pass\n")
    assert find_cycle(import_graph(module_files(package))) == []


def test_ls_kit_shows_the_loop():
    missing = [name for name in LOOP if not (KIT / name / "__init__.py").is_file()]
    assert not missing, f"kit/ lacks the loop's packages {missing}"


def test_package_inits_hold_only_a_docstring():
    for name, path in module_files(KIT).items():
        if path.name != "__init__.py" or name in INIT_WITH_CODE:
            continue
        body = ast.parse(path.read_text(encoding="utf-8")).body
        assert body and ast.get_docstring(ast.Module(body=body[:1], type_ignores=[])), f"{path}: no docstring"
        assert len(body) == 1, f"{path}: holds code besides its docstring (import from the modules themselves)"


def test_pyproject_ships_every_package():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    packages = {name for name, path in module_files(KIT).items() if path.name == "__init__.py"}
    packages |= {"kit._kernels", "kit._kernels.runtime"}  # kernels/, shipped inside kit (package-dir)
    assert set(setuptools["packages"]) == packages
    assert setuptools["package-dir"] == {"kit._kernels": "kernels"}



def test_no_module_shares_its_packages_name():
    """kit/practice/practice.py would make `from kit.practice import practice` read as a riddle: name by idea."""
    same = [name for name in module_files(KIT) if len(parts := name.split(".")) >= 2 and parts[-1] == parts[-2]]
    assert not same, f"modules named like their package: {same}"


def imported_roots(path: Path) -> set[str]:
    """The top-level names a file imports, at its top or inside a function."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            roots.add(node.module.split(".")[0])
    return roots


def test_tests_never_import_the_benchmarks():
    """A test of kit that imports bench/ tests the benchmark (checks of the benchmark live in bench/, run by hand)."""
    importing = [path.name for path in sorted((ROOT / "tests").rglob("*.py")) if {"bench", "speed", "peers", "gpu_verify"} & imported_roots(path)]
    assert not importing, f"tests importing bench/: {importing}"


def test_the_import_check_sees_an_import_of_bench_inside_a_function(tmp_path):
    probe = tmp_path / "test_probe.py"
    probe.write_text("def test_x():\n    from bench.peers import record\n")
    assert "bench" in imported_roots(probe)


def test_the_kernels_folder_does_not_shadow_hugging_faces_kernels(tmp_path):
    """transformers (5.25+) depends on Hugging Face's `kernels` and imports it; a kernels/__init__.py in a folder on
    sys.path (this repo's root under pytest, a workspace's root in a notebook) would be imported instead and break
    `import transformers`. kernels/ holds scripts and their runtime, imported as `runtime.<module>`."""
    from kit.workspace.layout import init

    init(tmp_path / "ws")
    assert (tmp_path / "ws" / "kernels" / "runtime" / "plan.py").is_file()
    assert not (tmp_path / "ws" / "kernels" / "__init__.py").exists()
    # Fails when `import kernels`, run from the folder, finds that folder's kernels/ (as a package, or as the only
    # portion of a namespace package when Hugging Face's is not installed: then nothing is shadowed, and it passes).
    code = ("import importlib.util, pathlib, sys; spec = importlib.util.find_spec('kernels'); "
            "mine = pathlib.Path.cwd().resolve() / 'kernels'; "
            "sys.exit(1 if spec is not None and spec.origin and pathlib.Path(spec.origin).resolve().is_relative_to(mine) else 0)")
    for folder in (ROOT, tmp_path / "ws"):
        done = subprocess.run([sys.executable, "-c", code], cwd=folder, capture_output=True, text=True)
        assert done.returncode == 0, f"`import kernels` in {folder} finds that folder's kernels/"
