"""Installing the pinned packages (pins.py) on Kaggle, first thing in a kernel, before torch or transformers load.

One pip call installs the versions of the engine's set that the session lacks, from an attached wheel dataset when
there is one (the internet may be off) or else from PyPI, with every other package the image has held at its
version by a constraints file written from the running image (so torch, torchvision, triton, numpy... never move).
Each package gets one log line; a failure gets one line naming the package and the fix.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from runtime.environment import internet_available, log, on_kaggle, warn
from runtime.paths import input_dir
from runtime.pins import PINNED_IMAGE, PINNED_PACKAGES, WHEELS_MANIFEST
from runtime.plan import package_set

# A version pip takes in a constraint (public PEP 440 with an optional local part, as in 2.10.0+cu128).
_CONSTRAINABLE = re.compile(r"^\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?(\+[a-z0-9.]+)?$", re.IGNORECASE)


def canonical_name(name: str) -> str:
    """A distribution's name as pip compares them (PEP 503: case and runs of -_. do not matter)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def split_pin(pin: str) -> tuple[str, str]:
    """("unsloth-zoo", "2026.10.9") for "unsloth_zoo==2026.10.9"."""
    name, _, version = pin.partition("==")
    return canonical_name(name), version


def nvidia_gpu_present() -> bool:
    """Whether the session has an NVIDIA GPU, asked of the driver rather than torch (torch must not load yet)."""
    gpus = Path("/proc/driver/nvidia/gpus")
    return gpus.is_dir() and any(gpus.iterdir())


def installed_versions() -> dict[str, str]:
    """Every installed distribution's version, the one Python imports where two are on the path."""
    versions: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            versions.setdefault(canonical_name(name), dist.version)
    return versions


def write_hold_constraints(path: Path, versions: dict[str, str], moving: set[str]) -> int:
    """A pip constraints file holding every installed package except the `moving` ones at its version; returns
    how many it holds."""
    lines = [f"{name}=={version}" for name, version in sorted(versions.items()) if name not in moving and _CONSTRAINABLE.match(version)]
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


def running_image() -> dict[str, str]:
    """What identifies the image a kernel runs on: Python's version and the torch and transformers it came with."""
    versions = installed_versions()
    return {
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "torch": versions.get("torch", "absent").split("+")[0],
        "transformers": versions.get("transformers", "absent"),
    }


def image_differences(expected: dict, running: dict) -> list[str]:
    """"torch 2.10.0 (this session: 2.11.0)" for each of python/torch/transformers that differs."""
    return [f"{key} {expected[key]} (this session: {running.get(key)})" for key in ("python", "torch", "transformers")
            if key in expected and running.get(key) != expected[key]]


def find_wheel_set(root: Path | None = None) -> tuple[Path | None, dict | None]:
    """An attached wheel dataset (a folder holding .whl files) and its manifest (None for one without)."""
    root = root or input_dir()
    if not root.is_dir():
        return None, None
    for manifest in sorted(root.glob(f"**/{WHEELS_MANIFEST}")):
        try:
            return manifest.parent, json.loads(manifest.read_text())
        except (OSError, json.JSONDecodeError):
            continue
    folders = sorted({p.parent for p in root.glob("**/*.whl")})
    return (folders[0], None) if folders else (None, None)


def pip_failure(output: str, pins: tuple[str, ...]) -> tuple[str, str]:
    """The package a failed pip run names first (one of `pins` where it names one) and its error, on one line."""
    errors = [line.strip() for line in output.splitlines() if line.strip().startswith("ERROR:")]
    lines = output.splitlines()
    causes = []
    if "The conflict is caused by:" in output:
        start = next(i for i, line in enumerate(lines) if "The conflict is caused by:" in line)
        causes = [line.strip() for line in lines[start + 1:start + 4] if line.strip() and not line.strip().startswith("To fix")]
    names = {split_pin(pin)[0]: pin for pin in pins}
    for line in errors + causes:
        for token in re.findall(r"[A-Za-z0-9][A-Za-z0-9._-]*", line):
            if canonical_name(token) in names:
                message = errors[0] if errors else line
                if causes:
                    message += " (" + "; ".join(causes[:2]) + ")"
                return names[canonical_name(token)], message.removeprefix("ERROR: ")
    tail = (errors or [line.strip() for line in lines if line.strip()] or ["pip printed nothing"])[0]
    return "the pinned set", tail.removeprefix("ERROR: ")


def install_pinned(engine: str, gpu: bool | None = None) -> list[str]:
    """On Kaggle, install the pinned set for `engine` that the session lacks, before torch loads (elsewhere the
    environment is the user's own). Returns the pins still missing afterwards (empty when all is in place)."""
    if not on_kaggle():
        return []
    name = package_set(engine, nvidia_gpu_present() if gpu is None else gpu)
    return install_set(name, PINNED_PACKAGES[name])


def install_set(name: str, pins: tuple[str, ...], wheels_root: Path | None = None) -> list[str]:
    """Install the `pins` (set `name`) that are not installed at their versions, holding everything else; returns
    the pins still missing."""
    before = installed_versions()
    folder, manifest = find_wheel_set(wheels_root)
    running = running_image()
    if manifest is not None:
        differs = image_differences(manifest.get("image", {}), running)
        if differs:
            warn(f"the wheel dataset in {folder} was made for {manifest['image'].get('image', 'another image')}: "
                 f"{', '.join(differs)}; rebuild it for this image with `kit deps push`")
    else:
        differs = image_differences(PINNED_IMAGE, running)
        if differs:
            warn(f"kit's pinned packages were tested on {PINNED_IMAGE['image']}: {', '.join(differs)}")
    needed = [pin for pin in pins if before.get(split_pin(pin)[0]) != split_pin(pin)[1]]
    if not needed:
        log(f"packages: the pinned {name} set is installed ({len(pins)} packages)")
        return []
    if folder is not None:
        source, where = ["--no-index", "--find-links", str(folder)], f"the wheels in {folder}"
        fix = "rebuild the wheel dataset for this image with `kit deps push`"
    elif internet_available():
        source, where = [], "PyPI"
        fix = "the pins in kernels/runtime/pins.py do not fit this image: run bench/image_check.py resolve, or use engine=hf"
    else:
        log(f"error: cannot install {needed[0]}: the internet is off and no wheel dataset is attached; "
            f"fix: attach the one `kit deps push` builds (wheels_dataset in kit.toml) or turn enable_internet on")
        return needed
    with tempfile.TemporaryDirectory() as tmp:
        constraints = Path(tmp) / "hold.txt"
        held = write_hold_constraints(constraints, before, {split_pin(pin)[0] for pin in pins})
        log(f"installing the pinned {name} set from {where}: {len(needed)} of {len(pins)} packages, {held} others held")
        started = time.time()
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--no-input", "--disable-pip-version-check", "--no-warn-conflicts",
             "-c", str(constraints), *source, *needed],
            capture_output=True, text=True, env={**os.environ, "PIP_NO_INPUT": "1"},
        )
    importlib.invalidate_caches()
    after = installed_versions()
    missing = [pin for pin in needed if after.get(split_pin(pin)[0]) != split_pin(pin)[1]]
    for pin in needed:
        package, version = split_pin(pin)
        if pin not in missing:
            log(f"  {package} {version} (was {before.get(package, 'absent')})")
    if done.returncode != 0 or missing:
        package, message = pip_failure(done.stdout + "\n" + done.stderr, tuple(needed))
        log(f"error: installing {package} failed: {message}; fix: {fix}")
    else:
        log(f"installed in {time.time() - started:.0f} s")
    return missing
