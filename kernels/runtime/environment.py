"""The session around a kernel: logging, whether it is a Kaggle session (online, a competition rerun), the GPUs' names.

What the machine offers and what a run makes of it: plan.py."""

from __future__ import annotations

import os
import socket
import sys


def log(message: str) -> None:
    """A progress line on stdout, flushed at once (the backends capture stdout as the run's log)."""
    print(message, flush=True)


def warn(message: str) -> None:
    """A warning line on stdout, where it lands in the run's log next to the progress."""
    print(f"warning: {message}", flush=True)


def step_line(step: int, steps: int, global_step: int, loss: float, lr: float, tokens_per_s: float, elapsed: float) -> str:
    """A training step's progress line. kit reads it back from the log (kit/runs/follow.py) to say how far a run is:
    keep the two in step."""
    return f"step {step}/{steps} (global {global_step}) loss {loss:.4f} lr {lr:.2e} tokens/s {tokens_per_s:.0f} elapsed {elapsed:.1f}s"


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


def hub_offline() -> None:
    """Never ask the Hugging Face hub for anything (a model attached from Kaggle loads from the input tree; with the
    internet off a hub call would only fail or hang). Set before transformers or unsloth is imported, where it counts."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ[name] = "1"
    constants = getattr(sys.modules.get("huggingface_hub"), "constants", None)
    if constants is not None:  # already imported: it read the environment then
        constants.HF_HUB_OFFLINE = True


def internet_available(host: str = "pypi.org", timeout: float = 3.0) -> bool:
    """Whether PyPI answers (Kaggle sessions may run with the internet off)."""
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def gpu_names() -> list[str]:
    """Names of the CUDA GPUs present (empty on the CPU)."""
    import torch

    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


def dtype_name(dtype) -> str:
    """bf16, fp16 or fp32."""
    import torch

    return {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32"}[dtype]


def torch_dtype(name: str):
    """The torch dtype of bf16, fp16 or fp32."""
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[name]
