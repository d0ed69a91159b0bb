"""What the machine offers: whether it is a Kaggle session online, which engine and dtype to use, and the GPU's name."""

from __future__ import annotations

import importlib
import importlib.util
import os
import socket
import sys


def log(message: str) -> None:
    """A progress line on stdout, flushed at once (the backends capture stdout as the run's log)."""
    print(message, flush=True)


def warn(message: str) -> None:
    """A warning line on stdout, where it lands in the run's log next to the progress."""
    print(f"warning: {message}", flush=True)


def quiet_progress_bars() -> None:
    """No progress bars where stdout is not a terminal (a Kaggle log, the local backend's log.txt): there every redraw
    of transformers' and huggingface_hub's bars (tqdm) becomes a line, ~1,000 for one model load. Call it before
    transformers is imported (it reads the setting once); the loads log one line each instead."""
    if not sys.stdout.isatty():
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


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


def hub_offline() -> None:
    """Never ask the Hugging Face hub for anything (a model attached from Kaggle loads from the input tree; with the
    internet off a hub call would only fail or hang). Set before transformers or unsloth is imported, where it counts."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ[name] = "1"
    constants = getattr(sys.modules.get("huggingface_hub"), "constants", None)
    if constants is not None:  # already imported: it read the environment then
        constants.HF_HUB_OFFLINE = True


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


def cuda_available() -> bool:
    """Whether torch sees a CUDA GPU."""
    import torch

    return torch.cuda.is_available()


def choose_engine(requested: str, prefer: str = "hf") -> str:
    """unsloth or hf. auto takes the engine the kernel `prefer`s for its job and GPU (train: hf with its layers
    compiled where the base fits dequantized, else unsloth; infer: unsloth, whose fused kernels score faster), falling
    back to hf where unsloth is not installed (on Kaggle, install_pinned installed it first). Figures: bench/RESULTS.md, issue 6."""
    gpu = cuda_available()
    if requested == "unsloth" and not gpu:
        raise RuntimeError("engine=unsloth needs a CUDA GPU; use engine=hf (or auto) on the CPU")
    if requested == "hf" or not gpu or (requested == "auto" and prefer == "hf"):
        return "hf"
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
        raise RuntimeError("engine=unsloth but unsloth is not installed; on Kaggle turn the internet on or attach the wheel dataset of `kit deps push`, else use engine=hf")
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
