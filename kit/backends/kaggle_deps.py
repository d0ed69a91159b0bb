"""`kit deps push`: a wheel dataset for internet-off kernels, pushed as a private Kaggle dataset."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from kit.backends.kaggle import KaggleSession, _split_ref
from kit.errors import BackendError
from kit.fileio import atomic_write_json
from kit.workspace import Workspace

# What the Kaggle image lacks for unsloth training; downloaded without dependencies so the image's torch stays.
DEPS_PACKAGES = ("unsloth", "unsloth_zoo", "bitsandbytes", "peft", "trl", "accelerate", "cut_cross_entropy", "tyro", "msgspec", "hf_transfer")
DEPS_PYTHONS = ("3.11", "3.12")  # the Kaggle image's Python, now and next
DEPS_SLUG = "kit-offline-wheels"


@dataclass(frozen=True)
class DepsDataset:
    """A built wheel folder and where it went."""

    folder: Path
    ref: str
    wheels: list[str]
    created: bool = False  # a new dataset rather than a new version
    url: str = ""


def build_deps_folder(
    folder: Path,
    ref: str,
    packages: tuple[str, ...] = DEPS_PACKAGES,
    pythons: tuple[str, ...] = DEPS_PYTHONS,
    find_links: Path | None = None,
) -> list[str]:
    """pip-download wheels of `packages` for the Kaggle image (CPython `pythons`, manylinux x86_64) into `folder`
    and write its dataset-metadata.json; return the wheel names. `find_links` uses a local wheel folder, offline."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for python in pythons:
        command = [
            sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
            "--dest", str(folder), "--python-version", python, "--implementation", "cp",
            "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_28_x86_64", "--platform", "any",
        ]
        if find_links is not None:
            command += ["--no-index", "--find-links", str(find_links)]
        done = subprocess.run(command + list(packages), capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise BackendError(f"pip download for Python {python} failed: {tail[0]}", hint="check the package names given with --packages")
    wheels = sorted(p.name for p in folder.glob("*.whl"))
    owner, slug = _split_ref(ref)
    atomic_write_json(
        folder / "dataset-metadata.json",
        {"id": ref, "title": slug.replace("-", " "), "licenses": [{"name": "other"}],
         "description": "Wheels for internet-off Kaggle kernels, built by `kit deps push`: " + ", ".join(packages)},
    )
    return wheels


def push_deps(
    ws: Workspace,
    folder: Path,
    packages: tuple[str, ...] = DEPS_PACKAGES,
    slug: str = DEPS_SLUG,
    find_links: Path | None = None,
    session: KaggleSession | None = None,
) -> DepsDataset:
    """Build the wheel folder and create the Kaggle dataset `<user>/<slug>`, or add a version if it exists."""
    session = session or KaggleSession()
    user = ws.kaggle_username or session.username
    ref = f"{user}/{slug}"
    wheels = build_deps_folder(folder, ref, packages, find_links=find_links)
    if not wheels:
        raise BackendError("pip downloaded no wheels", hint="check --packages")
    api = session.api
    exists = True
    try:
        session.call(f"dataset {ref}", lambda: api.dataset_status(ref))
    except BackendError as exc:
        if "HTTP 404" not in exc.message:
            raise
        exists = False
    if exists:
        response = session.call(
            f"new version of {ref}",
            lambda: api.dataset_create_version(str(folder), "kit deps push: " + ", ".join(packages), quiet=True, delete_old_versions=False),
            safe=False,
        )
    else:
        response = session.call(f"create {ref}", lambda: api.dataset_create_new(str(folder), public=False, quiet=True), safe=False)
    if (response.status or "").lower() != "ok" and response.error:
        raise BackendError(f"Kaggle refused dataset {ref}: {response.error}", hint="check dataset-metadata.json in " + str(folder))
    return DepsDataset(folder=Path(folder), ref=ref, wheels=wheels, created=not exists, url=response.url or "")
