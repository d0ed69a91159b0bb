"""The kernel builder: a template + a typed config -> one self-contained script and kernel-metadata.json.

The script never imports kit. It starts with the template's docstring and the effective config (one setting per
line, with its help as a comment), then the template's recipe (its `main`: the stages in order), then the runtime
modules the template imports from kernels/runtime/, inlined in dependency order, and last the
`if __name__ == "__main__": main(CONFIG)` call, so a reader meets the settings and the recipe before any helper.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import pprint
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import kit
from kit.build.templates import check_prompt, template_path
from kit.errors import ConfigError
from kit.fileio import atomic_write_text
from kit.workspace.kernel_config import KernelConfig, field_specs, script_settings, source_runs
from kit.workspace.model_sources import KAGGLE_DATASET, KAGGLE_MODEL, parse_model

# Kernels import their runtime as `from runtime.<module> import name`: kernels/ is the script's folder, not a package,
# since a `kernels` package on sys.path shadows Hugging Face's `kernels`, which transformers imports. Workspaces made
# before that spell it `kernels.runtime`; both are inlined.
RUNTIME_PACKAGE = "runtime"
RUNTIME_PACKAGES = (RUNTIME_PACKAGE, "kernels.runtime")
CONFIG_MARKER = "# kit:config"
SCRIPT_NAME = "kernel.py"


@dataclass(frozen=True)
class KernelMetadata:
    """kernel-metadata.json, the file `kaggle kernels push` reads, as a typed object."""

    id: str
    title: str
    code_file: str = SCRIPT_NAME
    language: str = "python"
    kernel_type: str = "script"
    is_private: bool = True
    enable_gpu: bool = True
    enable_tpu: bool = False
    enable_internet: bool = True
    machine_shape: str = "NvidiaTeslaT4"
    session_timeout_seconds: int = 43200
    competition_sources: list[str] = field(default_factory=list)
    dataset_sources: list[str] = field(default_factory=list)
    kernel_sources: list[str] = field(default_factory=list)
    model_sources: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    # The image to run on (the workspace's, recorded from its first Kaggle run); "" = Kaggle's current one.
    docker_image: str = ""

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        del data["docker_image"]
        if self.docker_image:
            # A new kernel has no older environment for "original" to return to: naming the image pins it.
            data["docker_image"] = self.docker_image
            data["docker_image_pinning_type"] = "original"
        if self.machine_shape == "None":
            data["machine_shape"] = None
            data["enable_gpu"] = False
        return data


@dataclass(frozen=True)
class BuiltKernel:
    """A built kernel folder."""

    directory: Path
    script: Path
    metadata: KernelMetadata


# Kaggle's limits on a kernel's title (longer titles were answered with HTTP 500, kaggle-cli PR #179) and slug.
TITLE_MAX = 50
SLUG_MIN = 5
# Run numbers get at least this many digits of room, so that every run of a workspace shows the same competition part.
RUN_DIGITS = 6


def kaggle_slugify(text: str) -> str:
    """The slug Kaggle makes of a title: lower case, one dash for any run of other characters, none at either end."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def kernel_slug(competition: str, run_id: str, workspace_id: str = "") -> str:
    """One Kaggle kernel per run and per workspace: `kit-<competition>-<workspace id>-<run id>`, the competition
    cut so that the title stays within TITLE_MAX characters even for six-digit runs, at a word where one is near."""
    comp = kaggle_slugify(competition)
    if competition and not comp:
        raise ConfigError(
            f"competition slug {competition!r} cannot make a Kaggle kernel title: it has no letters a-z or digits",
            hint="set slug under [competition] in kit.toml to the slug in the competition's URL (kaggle.com/competitions/SLUG)",
        )
    tail = "-".join(part for part in (kaggle_slugify(workspace_id), run_id) if part)
    number = run_id.rpartition("-")[2]
    room = TITLE_MAX - len("kit-") - len("-" + tail) - max(0, RUN_DIGITS - len(number))
    if len(comp) > room:
        cut = comp[:room].rstrip("-")
        word = cut.rpartition("-")[0] if comp[room:room + 1] not in ("", "-") else cut
        comp = word if len(word) >= room // 2 else cut
    return "-".join(part for part in ("kit", comp, tail) if part)


def kernel_title(slug: str) -> str:
    """The title Kaggle slugifies back to `slug`: its words joined by spaces."""
    title = slug.replace("-", " ")
    if len(title) > TITLE_MAX or len(slug) < SLUG_MIN or kaggle_slugify(title) != slug:
        raise ConfigError(
            f"kernel slug {slug!r} makes no valid Kaggle title (at most {TITLE_MAX} characters, slugifying back to the slug)",
            hint="use a shorter competition slug or run id",
        )
    return title


def build_kernel(
    kernel: str,
    config: KernelConfig,
    out_dir: Path,
    kernels: Path,
    *,
    run_id: str = "run-0",
    owner: str = "USERNAME",
    dataset_sources: tuple[str, ...] = (),
    workspace_id: str = "",
    kernel_sources: Mapping[str, str] | None = None,
    docker_image: str = "",
    task: Mapping[str, Any] | None = None,
) -> BuiltKernel:
    """Write `out_dir/kernel.py` and `out_dir/kernel-metadata.json` for `kernel` with `config`.

    `kernel_sources` maps a source run (resume_from, adapter_run) to the kernel it was pushed as, where it was; other
    source runs are named as this workspace names its kernels. `task` is the workspace's [task] (Task.to_dict()):
    the kernel's `task` setting; None (no [task]) leaves it out, and the kernel does today's binary task."""
    template = template_path(kernels, kernel)
    check_prompt(config.prompt, kernels)
    script = render_script(template, kernels / "runtime", config, run_id=run_id, task=task)
    slug = kernel_slug(config.competition, run_id, workspace_id)
    known = dict(kernel_sources or {})
    # A model from Kaggle is attached, so the kernel finds it under /kaggle/input with the internet off.
    source = parse_model(config.model) if config.model != "auto" else None
    model_datasets = [source.handle] if source is not None and source.kind == KAGGLE_DATASET else []
    metadata = KernelMetadata(
        id=f"{owner}/{slug}",
        title=kernel_title(slug),
        is_private=config.is_private,
        enable_internet=config.enable_internet,
        machine_shape=config.machine_shape,
        session_timeout_seconds=config.timeout_minutes * 60,
        competition_sources=[config.competition] if config.competition else [],
        dataset_sources=[*dataset_sources, *model_datasets, *([config.wheels_dataset] if config.wheels_dataset else [])],
        model_sources=[source.handle] if source is not None and source.kind == KAGGLE_MODEL else [],
        docker_image=docker_image if config.pin_image else "",
        kernel_sources=[known.get(r) or f"{owner}/{kernel_slug(config.competition, r, workspace_id)}" for r in source_runs(config)],
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / SCRIPT_NAME, script)
    atomic_write_text(out_dir / "kernel-metadata.json", json.dumps(metadata.to_json(), indent=2) + "\n")
    return BuiltKernel(directory=out_dir, script=out_dir / SCRIPT_NAME, metadata=metadata)


def render_script(template: Path, runtime_dir: Path, config: KernelConfig, run_id: str = "run-0", task: Mapping[str, Any] | None = None) -> str:
    """The self-contained script text for `template` with `config` (and the `task` setting, where given) embedded at
    the top."""
    source = template.read_text(encoding="utf-8")
    tree = _parse(template, source)
    docstring = ast.get_docstring(tree) or f"kit kernel {template.stem}"
    modules = _runtime_closure(template, tree, runtime_dir)
    parts = [
        "#!/usr/bin/env python3",
        '"""' + docstring.replace('"""', "'''")
        + f"\n\nBuilt by kit {kit.__version__} for {run_id} on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC."
        + " Self-contained: runs on Kaggle as it is; KIT_KAGGLE_ROOT moves /kaggle elsewhere.\n"
        + '"""',
        "from __future__ import annotations",
        "",
        "# " + "-" * 30 + " settings (the effective run config) " + "-" * 30,
        render_config(config, task),
    ]
    recipe, entry = _strip_template(template, source, tree)
    parts += ["", "", f"# {'-' * 30} the recipe (kernels/{template.name}) {'-' * 30}", recipe]
    for name, path in modules:
        parts += ["", "", f"# {'-' * 30} inlined from kernels/runtime/{name}.py {'-' * 30}", _strip_module(path)]
    parts += ["", "", f"# {'-' * 30} run it {'-' * 30}", entry]
    script = "\n".join(parts).rstrip() + "\n"
    try:
        compile(script, str(template), "exec")
    except SyntaxError as exc:  # a bug in a template or in the inliner, never in the user's config
        raise ConfigError(f"built kernel does not compile: {exc}", hint=f"check {template} and kernels/runtime/") from None
    return script


TASK_SETTING = "task"  # the kernels read the task description under this key (runtime/data.py load_task)


def render_config(config: KernelConfig, task: Mapping[str, Any] | None = None) -> str:
    """`CONFIG = {...}` with one setting per line and its help as a trailing comment; the task description last,
    one key per line, where the workspace has one."""
    specs = field_specs(type(config))
    lines = ["CONFIG = {"]
    generated = bool(task) and dict(task).get("target", {}).get("kind") == "answer"  # the sampling settings, for it alone
    for key, value in script_settings(config, generated=generated).items():
        entry = f"    {key!r}: {value!r},"
        lines.append(f"{entry:<60}# {specs[key].metadata.get('help', '')}".rstrip())
    if task:
        lines.append("    # the task: files, prompt, classes, submission and metric (kit.toml [task])")
        lines.append(f"    {TASK_SETTING!r}: " + pprint.pformat(dict(task), width=116, sort_dicts=False).replace("\n", "\n    ") + ",")
    lines.append("}")
    return "\n".join(lines)


def _parse(path: Path, source: str) -> ast.Module:
    try:
        return ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: {exc.msg}", hint="fix the syntax error in the template") from None


def _runtime_imports(path: Path, tree: ast.Module) -> list[str]:
    """Runtime modules a file imports, in order; any other way of importing them is an error. Hugging Face's
    `kernels` package is an ordinary import (transformers depends on it); only `kernels.runtime` is kit's."""
    names: list[str] = []
    top_level = {id(node) for node in tree.body}
    spelling = f"`from {RUNTIME_PACKAGE}.<module> import name`"
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            raise ConfigError(f"{path}:{node.lineno}: a relative import cannot be inlined (the kernel is one script)", hint=f"use {spelling}")
        if isinstance(node, ast.ImportFrom) and (module := _runtime_module(node.module)) is not None:
            if id(node) not in top_level:
                raise ConfigError(f"{path}:{node.lineno}: import runtime modules at the top level only (the builder inlines them)")
            names.append(module)
        elif isinstance(node, ast.ImportFrom) and (node.module in RUNTIME_PACKAGES
                                                   or (node.module == "kernels" and any(a.name == "runtime" for a in node.names))):
            raise ConfigError(f"{path}:{node.lineno}: import runtime names as {spelling}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in (RUNTIME_PACKAGE, "kit") or alias.name.startswith("kernels.runtime"):
                    raise ConfigError(f"{path}:{node.lineno}: a kernel may not `import {alias.name}`", hint=f"use {spelling}")
        if isinstance(node, ast.ImportFrom) and node.module and (node.module == "kit" or node.module.startswith("kit.")):
            raise ConfigError(f"{path}:{node.lineno}: a kernel may not import kit (kit is not installed on Kaggle)")
    return names


def _runtime_closure(template: Path, tree: ast.Module, runtime_dir: Path) -> list[tuple[str, Path]]:
    """Runtime modules needed by the template, dependencies first."""
    order: list[tuple[str, Path]] = []
    visiting: set[str] = set()
    done: set[str] = set()

    def visit(name: str, importer: Path) -> None:
        if name in done:
            return
        if name in visiting:
            raise ConfigError(f"import cycle through kernels/runtime/{name}.py", hint="move the shared code to its own module")
        path = runtime_dir / f"{name}.py"
        if not path.is_file():
            raise ConfigError(f"{importer} imports missing module kernels/runtime/{name}.py")
        visiting.add(name)
        for dep in _runtime_imports(path, _parse(path, path.read_text(encoding="utf-8"))):
            visit(dep, path)
        visiting.discard(name)
        done.add(name)
        order.append((name, path))

    for name in _runtime_imports(template, tree):
        visit(name, template)
    _check_unique_names(order)
    return order


def _check_unique_names(modules: list[tuple[str, Path]]) -> None:
    seen: dict[str, str] = {}
    for name, path in modules:
        for node in _parse(path, path.read_text(encoding="utf-8")).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if node.name in seen and seen[node.name] != name:
                    raise ConfigError(
                        f"kernels/runtime/{name}.py and {seen[node.name]}.py both define {node.name!r}",
                        hint="runtime modules share one namespace once inlined: rename one",
                    )
                seen[node.name] = name


def _drop_lines(source: str, tree: ast.Module, drop) -> str:
    """`source` without the top-level statements for which `drop(node)` is true."""
    lines = source.splitlines()
    remove: set[int] = set()
    for node in tree.body:
        if drop(node):
            remove.update(range(node.lineno - 1, node.end_lineno))  # type: ignore[arg-type]
    return "\n".join(line for i, line in enumerate(lines) if i not in remove).strip("\n")


def _is_docstring(node: ast.stmt, tree: ast.Module) -> bool:
    return node is tree.body[0] and isinstance(node, ast.Expr) and isinstance(getattr(node, "value", None), ast.Constant) and isinstance(node.value.value, str)


def _is_future(node: ast.stmt) -> bool:
    return isinstance(node, ast.ImportFrom) and node.module == "__future__"


def _runtime_module(module: str | None) -> str | None:
    """The runtime module `from <module> import ...` names (`runtime.data` -> "data"), else None."""
    for package in RUNTIME_PACKAGES:
        if module and module.startswith(package + "."):
            return module[len(package) + 1:].split(".")[0]
    return None


def _is_runtime_import(node: ast.stmt) -> bool:
    return isinstance(node, ast.ImportFrom) and (_runtime_module(node.module) is not None or node.module in RUNTIME_PACKAGES)


def _strip_module(path: Path) -> str:
    source = path.read_text(encoding="utf-8")
    tree = _parse(path, source)
    return _drop_lines(source, tree, lambda n: _is_docstring(n, tree) or _is_future(n) or _is_runtime_import(n))


def _is_entry_point(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)


def _strip_template(path: Path, source: str, tree: ast.Module) -> tuple[str, str]:
    """(the template's recipe without its docstring, CONFIG and runtime imports; its `if __name__ == "__main__"`
    block): the built script puts the recipe right after the settings and the entry point after the runtime."""
    if CONFIG_MARKER not in source:
        raise ConfigError(f"{path} has no `CONFIG: dict = {{}}  {CONFIG_MARKER}` line", hint="add it where the settings go")

    def drop(node: ast.stmt) -> bool:
        is_config = isinstance(node, (ast.Assign, ast.AnnAssign)) and "CONFIG" in ast.unparse(node).split("=")[0]
        return _is_docstring(node, tree) or _is_future(node) or _is_runtime_import(node) or is_config or _is_entry_point(node)

    entry = _drop_lines(source, tree, lambda node: not _is_entry_point(node))
    return _drop_lines(source, tree, drop), entry

