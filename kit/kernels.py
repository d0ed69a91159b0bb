"""Where kernel templates come from: the workspace's kernels/ folder, else the copy shipped inside kit."""

from __future__ import annotations

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
    return Path(__file__).resolve().parent.parent / "kernels"


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
