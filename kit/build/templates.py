"""Where kernel templates come from: the workspace's kernels/ folder, else the copy shipped inside kit."""

from __future__ import annotations

import ast
import difflib
import shutil
from pathlib import Path

from kit.errors import ConfigError

TEMPLATE_NAMES = ("train", "infer")


def packaged_kernels_dir() -> Path:
    """The kernels/ folder shipped with kit (kit._kernels when installed; the repo's kernels/ when editable)."""
    import importlib.util

    spec = importlib.util.find_spec("kit._kernels")
    if spec is not None and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    return Path(__file__).resolve().parents[2] / "kernels"  # kit/build/templates.py -> the repo root


def kernels_dir(workspace_kernels: Path | None) -> Path:
    """The workspace's kernels/ folder if it has templates, else the packaged one."""
    if workspace_kernels is not None and (workspace_kernels / "runtime").is_dir():
        return workspace_kernels
    return packaged_kernels_dir()


def template_path(kernels: Path, kernel: str) -> Path:
    """The template file of `kernel`, or a ConfigError listing the templates there are."""
    path = kernels / f"{kernel}.py"
    if not path.is_file():
        known = sorted(p.stem for p in kernels.glob("*.py") if not p.name.startswith("_"))
        raise ConfigError(f"no kernel template {path}", hint=f"templates here: {', '.join(known) or 'none'}; kit init copies them")
    return path


def copy_templates(dest: Path) -> None:
    """Copy kit's kernel templates and runtime into `dest` (a new workspace's kernels/), keeping existing files."""
    src = packaged_kernels_dir()
    if src.resolve() == Path(dest).resolve():
        return
    for path in sorted(src.rglob("*.py")):
        target = dest / path.relative_to(src)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)


def prompt_names(kernels: Path) -> tuple[str, ...]:
    """The prompt names the kernels at `kernels` know: each `PromptTemplate(name="...")` in runtime/prompts.py.

    Read from the source, not imported: the workspace's prompts.py is a person's file and runs only in the kernel."""
    path = Path(kernels) / "runtime" / "prompts.py"
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return ()  # the build itself reports a broken runtime module
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "PromptTemplate":
            for kw in node.keywords:
                if kw.arg == "name" and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                    names.append(kw.value.value)
    return tuple(sorted(set(names)))


def check_prompt(prompt: str, kernels: Path) -> None:
    """Refuse a prompt name the kernel does not know, at build time rather than in the kernel after the model loaded."""
    known = prompt_names(kernels)
    if known and prompt not in known:
        close = difflib.get_close_matches(prompt, known, n=1)
        suggestion = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"bad value {prompt!r} for 'prompt': unknown prompt{suggestion}; known prompts: {', '.join(known)}",
            hint=f"--set prompt={close[0] if close else known[0]}, or add a PromptTemplate to {Path(kernels) / 'runtime' / 'prompts.py'}",
        )
