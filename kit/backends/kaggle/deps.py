"""`kit deps push`: a wheel dataset for internet-off kernels, pushed as a private Kaggle dataset."""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from kit.backends.kaggle.session import KaggleSession, split_ref
from kit.build.templates import kernels_dir, packaged_kernels_dir
from kit.errors import BackendError, ConfigError
from kit.fileio import atomic_write_json
from kit.workspace.layout import Workspace

PINS_FILE = Path("runtime") / "pins.py"  # under a kernels/ folder: the pinned set the kernels install
DEPS_SLUG = "kit-offline-wheels"
WHEELS_MANIFEST = "kit-wheels.json"  # the same name as pins.WHEELS_MANIFEST, which the kernels look for
# Kaggle's image runs Ubuntu 22.04 (glibc 2.35) on x86_64: every manylinux tag it accepts, newest first. Asking for
# fewer (manylinux2014 and _2_28 only) silently yields bitsandbytes 0.42.0, whose 0.50.2 is manylinux_2_24.
PLATFORMS = tuple(f"manylinux_2_{minor}_x86_64" for minor in range(35, 16, -1)) + ("manylinux2014_x86_64", "manylinux1_x86_64")


@dataclass(frozen=True)
class Pins:
    """kernels/runtime/pins.py: the image the pinned set was resolved for and the set per engine."""

    image: dict
    packages: dict[str, tuple[str, ...]]

    @property
    def union(self) -> tuple[str, ...]:
        """Every pinned package once, in the order the sets name them (what a wheel dataset must hold)."""
        return tuple(dict.fromkeys(pin for pins in self.packages.values() for pin in pins))


def read_pins(kernels: Path | None = None) -> Pins:
    """The pins the kernels of `kernels` (a workspace's kernels/, else kit's own) install, read without importing
    them (the runtime imports `runtime`, which kit cannot)."""
    path = kernels_dir(kernels) / PINS_FILE
    if not path.is_file():
        path = packaged_kernels_dir() / PINS_FILE
    values = {}
    for node in ast.parse(path.read_text(encoding="utf-8"), filename=str(path)).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    try:
        return Pins(image=dict(values["PINNED_IMAGE"]), packages={k: tuple(v) for k, v in values["PINNED_PACKAGES"].items()})
    except KeyError as exc:
        raise ConfigError(f"{path} defines no {exc.args[0]}", hint="copy kit's kernels/runtime/pins.py into the workspace (kit init keeps your files)") from None


@dataclass(frozen=True)
class DepsDataset:
    """A built wheel folder and where it went."""

    folder: Path
    ref: str
    wheels: list[str]
    created: bool = False  # a new dataset rather than a new version
    url: str = ""


def build_deps_folder(folder: Path, ref: str, packages: tuple[str, ...], image: dict, find_links: Path | None = None) -> list[str]:
    """pip-download the wheels of `packages` (exact pins, their dependencies included: the pinned set is complete
    for the image) for the image's CPython on x86_64 into `folder`; write its manifest (the image it is for) and its
    dataset-metadata.json; return the wheel names. `find_links` takes wheels from a local folder instead of PyPI."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    python = str(image.get("python", "3.12"))
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "--dest", str(folder),
        "--python-version", python, "--implementation", "cp", *(arg for tag in PLATFORMS for arg in ("--platform", tag)),
    ]
    if find_links is not None:
        command += ["--no-index", "--find-links", str(find_links)]
    done = subprocess.run(command + list(packages), capture_output=True, text=True)
    if done.returncode != 0:
        tail = [line for line in (done.stderr or done.stdout).strip().splitlines() if line.startswith("ERROR")][-1:] or ["no output"]
        raise BackendError(f"pip download for Python {python} failed: {tail[0]}", hint="check the package names given with --packages")
    wheels = sorted(p.name for p in folder.glob("*.whl"))
    atomic_write_json(folder / WHEELS_MANIFEST, {"image": image, "packages": list(packages), "python": python, "platforms": list(PLATFORMS), "wheels": wheels})
    owner, slug = split_ref(ref)
    atomic_write_json(
        folder / "dataset-metadata.json",
        {"id": ref, "title": slug.replace("-", " "), "licenses": [{"name": "other"}],
         "description": f"Wheels for internet-off Kaggle kernels on {image.get('image', 'the Kaggle image')}, built by `kit deps push`: "
                        + ", ".join(packages)},
    )
    return wheels


def push_deps(
    ws: Workspace,
    folder: Path,
    packages: tuple[str, ...] = (),
    slug: str = DEPS_SLUG,
    find_links: Path | None = None,
    session: KaggleSession | None = None,
) -> DepsDataset:
    """Build the wheel folder (`packages`, default the kernels' pinned set) and create the Kaggle dataset
    `<user>/<slug>`, or add a version if it exists."""
    session = session or KaggleSession()
    user = ws.kaggle_username or session.username
    ref = f"{user}/{slug}"
    pins = read_pins(ws.kernels_dir)
    packages = packages or pins.union
    wheels = build_deps_folder(folder, ref, packages, pins.image, find_links=find_links)
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
