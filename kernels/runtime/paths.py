"""Where a kernel reads its inputs and writes its outputs: Kaggle's tree, movable with KIT_KAGGLE_ROOT."""

from __future__ import annotations

import os
from pathlib import Path


def kaggle_root() -> Path:
    """The root of the Kaggle tree: /kaggle on Kaggle, anywhere else when KIT_KAGGLE_ROOT is set."""
    return Path(os.environ.get("KIT_KAGGLE_ROOT", "/kaggle"))


def input_dir() -> Path:
    """Read-only inputs: competition data and attached sources."""
    return kaggle_root() / "input"


def working_dir() -> Path:
    """Outputs that Kaggle saves (and kit pulls) at the end of the session."""
    path = kaggle_root() / "working"
    path.mkdir(parents=True, exist_ok=True)
    return path


def competition_dir(slug: str, *files: str) -> Path:
    """The competition's files: /kaggle/input/competitions/<slug>, or /kaggle/input/<slug> on older images; the
    folder that has one of `files` (default: train.csv or test.csv)."""
    for candidate in (input_dir() / "competitions" / slug, input_dir() / slug):
        if any((candidate / name).is_file() for name in files or ("train.csv", "test.csv")):
            return candidate
    raise FileNotFoundError(
        f"competition data for {slug!r} not found under {input_dir()}; attach the competition as a source"
    )


def find_source(run_id: str) -> Path:
    """The attached output of an earlier run (its kernel slug ends with the run id), searched two levels deep."""
    root = input_dir()
    for depth in ("*", "*/*", "*/*/*"):
        for path in sorted(root.glob(depth)):
            if path.is_dir() and (path.name == run_id or path.name.endswith("-" + run_id)):
                return path
    raise FileNotFoundError(f"the output of {run_id} is not attached under {root}; push with it as a kernel source")


def _kaggle_source(spec: str) -> tuple[str, list[str]] | None:
    """("model", owner/model/framework/variation[/version]) or ("dataset", owner/slug[/folder...]) for a model
    attached from Kaggle (kit's `model` setting spells them so; kit checks the spelling), else None."""
    if spec.startswith("dataset:"):
        return "dataset", spec[len("dataset:"):].split("/")
    parts = spec.split("/")
    if spec.startswith((".", "/", "~")) or len(parts) not in (4, 5):
        return None
    return "model", parts


def _child(folder: Path, name: str) -> Path | None:
    """`folder/name`, the name matched without case (Kaggle mounts `PyTorch` as `pytorch`)."""
    if (folder / name).is_dir():
        return folder / name
    if folder.is_dir():
        for child in sorted(folder.iterdir()):
            if child.is_dir() and child.name.lower() == name.lower():
                return child
    return None


def _walk(folder: Path, names: list[str]) -> Path | None:
    for name in names:
        found = _child(folder, name)
        if found is None:
            return None
        folder = found
    return folder


def _model_folder(root: Path) -> Path:
    """The folder holding the model's config.json: `root` itself or the one folder below it that has one."""
    if (root / "config.json").is_file():
        return root
    found = sorted({p.parent for depth in ("*/config.json", "*/*/config.json", "*/*/*/config.json") for p in root.glob(depth)})
    if len(found) == 1:
        return found[0]
    if not found:
        raise FileNotFoundError(f"no config.json in {root} or the folders below it: is it a transformers model?")
    raise FileNotFoundError(f"{len(found)} models in {root} ({', '.join(str(p.relative_to(root)) for p in found)}); "
                            "name the folder: model=dataset:owner/slug/FOLDER")


def attached_model(spec: str) -> Path | None:
    """The model folder of a Kaggle model or dataset attached to the kernel, as Kaggle mounts it:
    input/models/<owner>/<model>/<framework>/<variation>/<version>/ (input/<model>/... on older images), and
    input/datasets/<owner>/<slug>/ (input/<slug>/ on older ones). A handle without a version takes the version
    folder that is there (the newest, if several). None for a model that is not a Kaggle source."""
    source = _kaggle_source(spec)
    if source is None:
        return None
    kind, parts = source
    root = input_dir()
    if kind == "dataset":
        candidates = [["datasets", *parts], parts[1:]]
    else:
        candidates = [["models", *parts[:4]], parts[1:4]]
    for names in candidates:
        folder = _walk(root, names)
        if folder is None:
            continue
        if kind == "model":
            if len(parts) == 5:
                folder = _child(folder, parts[4])
            else:
                versions = sorted((p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))
                folder = versions[-1] if versions else None
            if folder is None:
                continue
        return _model_folder(folder)
    raise FileNotFoundError(f"model {spec} is not attached under {root}: push the kernel with kit, which attaches it")
