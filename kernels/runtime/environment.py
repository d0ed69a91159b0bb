"""What the machine offers: which packages to install on Kaggle, which engine and dtype to use, and the GPU's name."""

from __future__ import annotations

import importlib
import importlib.util
import os
import socket
import subprocess
import sys

from kernels.runtime.paths import input_dir

# Import names a kernel needs per engine, and the pip names that provide them.
ENGINE_PACKAGES = {
    "hf": {"peft": "peft", "bitsandbytes": "bitsandbytes"},
    "unsloth": {"unsloth": "unsloth", "peft": "peft", "bitsandbytes": "bitsandbytes"},
}


def log(message: str) -> None:
    """A progress line on stdout, flushed at once (the backends capture stdout as the run's log)."""
    print(message, flush=True)


def warn(message: str) -> None:
    """A warning line on stdout, where it lands in the run's log next to the progress."""
    print(f"warning: {message}", flush=True)


def on_kaggle() -> bool:
    """True inside a Kaggle session (not when KIT_KAGGLE_ROOT moves the tree elsewhere)."""
    return "KAGGLE_KERNEL_RUN_TYPE" in os.environ and "KIT_KAGGLE_ROOT" not in os.environ


def competition_rerun() -> bool:
    """True while a code competition reruns a submitted notebook on its hidden test set (Kaggle sets the variable;
    kit's practice competition does too): the internet is off and only the submission file counts."""
    return bool(os.environ.get("KAGGLE_IS_COMPETITION_RERUN"))


def skip_validation(threshold: str) -> bool:
    """Whether to leave the validation rows unscored: during a rerun nobody reads the metrics, so they are scored only
    when the threshold is tuned on them (the predictions then depend on them); the time goes to the hidden rows."""
    if competition_rerun() and str(threshold) != "tune":
        log("competition rerun: validation rows not scored (the threshold is fixed; only submission.csv counts)")
        return True
    return False


def has_module(name: str) -> bool:
    """Whether a module can be imported, without importing it."""
    return importlib.util.find_spec(name) is not None


def internet_available(host: str = "pypi.org", timeout: float = 3.0) -> bool:
    """Whether PyPI answers (Kaggle sessions may run with the internet off)."""
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def wheel_folders() -> list[str]:
    """Folders under the input tree holding .whl files (an attached wheel dataset)."""
    folders = sorted({str(p.parent) for p in input_dir().glob("**/*.whl")}) if input_dir().is_dir() else []
    return folders


def install_missing(modules: dict[str, str]) -> list[str]:
    """pip-install the packages of the modules that are missing: from PyPI when online, else from attached wheels.

    Returns the modules still missing afterwards.
    """
    missing = {m: pip for m, pip in modules.items() if not has_module(m)}
    if not missing:
        return []
    packages = sorted(set(missing.values()))
    if internet_available():
        command = [sys.executable, "-m", "pip", "install", "-q", *packages]
    else:
        folders = wheel_folders()
        if not folders:
            warn(f"missing {', '.join(packages)}, no internet and no wheel dataset attached under {input_dir()}")
            return sorted(missing)
        command = [sys.executable, "-m", "pip", "install", "-q", "--no-index", *(f"--find-links={f}" for f in folders), *packages]
    log(f"installing {' '.join(packages)}")
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        warn(f"pip install {' '.join(packages)} failed: {result.stderr.strip()[-800:]}")
    importlib.invalidate_caches()
    return sorted(m for m in missing if not has_module(m))


def cuda_available() -> bool:
    """Whether torch sees a CUDA GPU."""
    import torch

    return torch.cuda.is_available()


def choose_engine(requested: str, prefer: str = "hf") -> str:
    """unsloth or hf. auto takes the engine the kernel `prefer`s for its job and GPU (train: hf with its layers
    compiled where the base fits dequantized, else unsloth; infer: unsloth, whose fused kernels score faster), falling
    back to hf where unsloth is not installed (or installable on Kaggle). Figures: bench/RESULTS.md, issue 6."""
    gpu = cuda_available()
    if requested == "unsloth" and not gpu:
        raise RuntimeError("engine=unsloth needs a CUDA GPU; use engine=hf (or auto) on the CPU")
    if requested == "hf" or not gpu or (requested == "auto" and prefer == "hf"):
        if on_kaggle() and gpu:
            install_missing(ENGINE_PACKAGES["hf"])
        return "hf"
    if on_kaggle():
        install_missing(ENGINE_PACKAGES["unsloth"])
    if has_module("unsloth"):
        try:
            importlib.import_module("unsloth")  # before transformers is imported, so that its patches apply
            return "unsloth"
        except Exception as exc:  # a broken unsloth install must not sink an auto run
            if requested == "unsloth":
                raise
            warn(f"unsloth failed to import ({type(exc).__name__}: {exc}); using engine=hf")
            return "hf"
    if requested == "unsloth":
        raise RuntimeError("engine=unsloth but unsloth is not installed; attach a wheel dataset or use engine=hf")
    warn("unsloth is not installed; using engine=hf")
    return "hf"


def choose_compile(requested: str, engine: str) -> bool:
    """Whether to torch.compile the decoder layers for training: auto = with engine hf on a CUDA GPU that Triton
    compiles for (compute capability 7.0 or newer: T4, A100, H100; not the P100)."""
    if requested == "off" or engine != "hf" or not cuda_available():
        if requested == "on":
            warn(f"compile=on needs engine=hf on a CUDA GPU (engine={engine}); training eagerly")
        return False
    import torch

    major, minor = torch.cuda.get_device_capability(0)
    if major < 7:
        if requested == "on":
            warn(f"compile=on: Triton does not compile for this GPU (compute capability {major}.{minor}); training eagerly")
        return False
    return True


def choose_dtype(requested: str):
    """The compute dtype: bf16 where the GPU supports it, fp16 on older GPUs (T4), fp32 on the CPU."""
    import torch

    gpu = torch.cuda.is_available()
    if requested == "auto":
        if not gpu:
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if not gpu and requested != "fp32":
        warn(f"dtype={requested} on the CPU is slow and unsupported by some ops; using fp32")
        return torch.float32
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[requested]


def gpu_names() -> list[str]:
    """Names of the CUDA GPUs present (empty on the CPU)."""
    import torch

    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


def dtype_name(dtype) -> str:
    """bf16, fp16 or fp32."""
    import torch

    return {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32"}[dtype]
