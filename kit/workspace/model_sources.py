"""Where a run's base model comes from, as the `model` setting spells it, and what that means for its kernel.

- `auto`: the backend's default (kit.workspace.kernel_config.DEFAULT_MODELS);
- a Hugging Face hub id, `org/name` (or a bare legacy `name`): downloaded by the kernel, so it needs the internet;
- a path on this machine (`/...`, `./...`, `../...`, `~/...` or a `.gguf` file): the local backend only;
- a Kaggle Models handle, `owner/model/framework/variation[/version]`: attached as a model source; Kaggle mounts it
  under /kaggle/input/, and the kernel loads it from there with the hub offline. Without a version, a push attaches
  the latest one (the Kaggle backend asks Kaggle which) and the kernel takes the version folder it finds;
- a Kaggle dataset, `dataset:owner/slug[/folder]`: attached as a dataset source; the kernel loads the model folder
  (the one holding config.json, or `folder` inside the dataset).

The local backend stands a local copy in for an attached model: kagglehub's cache, where `kagglehub.model_download`
and `kagglehub.dataset_download` put them ($KAGGLEHUB_CACHE, else ~/.cache/kagglehub).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from kit.errors import ConfigError

DATASET_PREFIX = "dataset:"
HUB = "hub"
PATH = "path"
KAGGLE_MODEL = "kaggle_model"
KAGGLE_DATASET = "kaggle_dataset"

# The frameworks of Kaggle's ModelFramework enum, compared without case, dashes or underscores (the client maps
# `pyTorch`, `PyTorch` and `pytorch` alike).
FRAMEWORKS = frozenset({
    "tensorflow1", "tensorflow2", "tflite", "tfjs", "pytorch", "jax", "flax", "pax", "maxtext", "gemmacpp", "ggml", "gguf",
    "coral", "scikitlearn", "mxnet", "onnx", "keras", "transformers", "api", "other", "tensorrtllm", "triton", "vllm",
})
_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
FORMS = (
    "a hub id (org/name), a Kaggle model handle (owner/model/framework/variation[/version], e.g. "
    "metaresearch/llama-3.1/transformers/8b-instruct/1), dataset:owner/slug[/folder], a local path (./folder) or auto"
)


@dataclass(frozen=True)
class ModelSource:
    """The `model` setting, parsed."""

    kind: str  # HUB | PATH | KAGGLE_MODEL | KAGGLE_DATASET
    spec: str  # as written
    parts: tuple[str, ...] = ()  # owner, model, framework, variation[, version] | owner, slug[, folder...]

    @property
    def on_kaggle(self) -> bool:
        """Attached from Kaggle (a model or a dataset), so it loads with the internet off."""
        return self.kind in (KAGGLE_MODEL, KAGGLE_DATASET)

    @property
    def handle(self) -> str:
        """The model source (`owner/model/framework/variation[/version]`) or dataset source (`owner/slug`)."""
        return "/".join(self.parts[:5] if self.kind == KAGGLE_MODEL else self.parts[:2])

    @property
    def version(self) -> int | None:
        return int(self.parts[4]) if self.kind == KAGGLE_MODEL and len(self.parts) == 5 else None


def _bad(spec: str, why: str) -> ConfigError:
    return ConfigError(f"model {spec!r} does not parse: {why}", hint=f"use {FORMS}")


def parse_model(spec: str) -> ModelSource:
    """The source a `model` value names, or a ConfigError saying why it names none."""
    if not spec or spec != spec.strip() or any(c.isspace() for c in spec):
        raise _bad(spec, "it is empty or has spaces")
    if spec.startswith(("/", "./", "../", "~")) or spec.endswith(".gguf"):
        return ModelSource(PATH, spec)
    if spec.startswith(DATASET_PREFIX):
        parts = tuple(spec[len(DATASET_PREFIX):].split("/"))
        if len(parts) < 2 or not all(parts) or not all(_SLUG.fullmatch(p) for p in parts):
            raise _bad(spec, "a Kaggle dataset is dataset:owner/slug, with an optional folder inside it after another /")
        return ModelSource(KAGGLE_DATASET, spec, parts)
    parts = tuple(spec.split("/"))
    if not all(parts) or not all(_SLUG.fullmatch(p) for p in parts):
        raise _bad(spec, "every part between slashes must be letters, digits, '.', '_' or '-'")
    if len(parts) <= 2:
        return ModelSource(HUB, spec, parts)
    if len(parts) not in (4, 5):
        raise _bad(spec, f"{len(parts)} parts: a hub id has 2, a Kaggle model handle 4 or 5")
    if re.sub(r"[-_]", "", parts[2]).lower() not in FRAMEWORKS:
        raise _bad(spec, f"{parts[2]!r} is not a Kaggle model framework (e.g. transformers, pyTorch, jax, keras, gguf)")
    if len(parts) == 5 and not parts[4].isdigit():
        raise _bad(spec, f"the version {parts[4]!r} must be a number")
    return ModelSource(KAGGLE_MODEL, spec, parts)


def model_problem(spec: str) -> str:
    """What is wrong with a `model` value, in words ("" when it parses), for the settings' schema."""
    if spec == "auto":
        return ""
    try:
        parse_model(spec)
    except ConfigError as exc:
        return f"{exc.message.removeprefix(f'model {spec!r} ')}; use {FORMS}"
    return ""


def local_model_path(source: ModelSource, root: Path) -> Path:
    """A local model's path, absolute: `~` expanded, a relative one taken from the workspace's root."""
    path = Path(source.spec).expanduser()
    return path if path.is_absolute() else (Path(root) / path).resolve()


def check_reachable(source: ModelSource, backend: str, enable_internet: bool, root: Path | None = None, command: str = "kit build train") -> None:
    """Refuse, before anything is built, a model the kernel could not load where it runs: a hub id with the internet
    off or a local path on Kaggle, on the local backend a Kaggle source with no local copy or a path with nothing
    there (relative to `root`, the workspace's; `command` is the one that was run, for the fix)."""
    if backend == "local" and source.kind == PATH:
        path = local_model_path(source, root or Path.cwd())
        if not path.exists():
            raise ConfigError(f"model {source.spec!r} is a path on this machine with nothing there ({path})",
                              hint=f"{command} --set model=PATH with the folder of a model (its config.json) or a .gguf file, or model=org/name for a hub id")
    if backend == "kaggle" and source.kind == PATH:
        raise ConfigError(
            f"model {source.spec!r} is a path on this machine, which a Kaggle kernel cannot read",
            hint="upload the folder as a Kaggle model or dataset and set model to its handle (owner/model/framework/variation or dataset:owner/slug)",
        )
    if backend == "kaggle" and source.kind == HUB and not enable_internet:
        raise ConfigError(
            f"model {source.spec!r} is a Hugging Face hub id, which a kernel with the internet off (enable_internet=false) cannot download",
            hint="attach it from Kaggle: --set model=OWNER/MODEL/FRAMEWORK/VARIATION[/VERSION] or model=dataset:OWNER/SLUG (or enable_internet=true)",
        )
    if backend == "local" and source.on_kaggle and local_copy(source) is None:
        raise ConfigError(
            f"model {source.spec!r} has no local copy for the local backend (looked in {cache_folder(source)})",
            hint=f"download it once with kagglehub (a Kaggle account): python -c \"import kagglehub; kagglehub."
            f"{'model' if source.kind == KAGGLE_MODEL else 'dataset'}_download('{source.handle}')\", or copy its files there",
        )


def kagglehub_cache() -> Path:
    """kagglehub's cache folder: $KAGGLEHUB_CACHE, else ~/.cache/kagglehub."""
    return Path(os.environ.get("KAGGLEHUB_CACHE") or Path.home() / ".cache" / "kagglehub").expanduser()


def cache_folder(source: ModelSource) -> Path:
    """Where kagglehub keeps a Kaggle model's versions (models/owner/model/framework/variation) or a dataset's
    (datasets/owner/slug/versions)."""
    if source.kind == KAGGLE_MODEL:
        return kagglehub_cache().joinpath("models", *source.parts[:4])
    return kagglehub_cache().joinpath("datasets", *source.parts[:2], "versions")


def _child(folder: Path, name: str) -> Path | None:
    """`folder/name`, matching the name without case (Kaggle and kagglehub spell frameworks differently)."""
    if (folder / name).is_dir():
        return folder / name
    if folder.is_dir():
        for child in sorted(folder.iterdir()):
            if child.is_dir() and child.name.lower() == name.lower():
                return child
    return None


def local_copy(source: ModelSource) -> tuple[Path, int] | None:
    """(folder, version) of the local copy of a Kaggle model or dataset: the version asked for, else the latest."""
    folder = kagglehub_cache().joinpath("models" if source.kind == KAGGLE_MODEL else "datasets")
    for part in source.parts[:4] if source.kind == KAGGLE_MODEL else (*source.parts[:2], "versions"):
        found = _child(folder, part)
        if found is None:
            return None
        folder = found
    versions = sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit())
    wanted = source.version
    if wanted is not None:
        return (folder / str(wanted), wanted) if wanted in versions else None
    return (folder / str(versions[-1]), versions[-1]) if versions else None
