"""Typed, frozen, strict run configs for each kernel, and the parsing of `--set KEY=VALUE`.

Every setting a kernel reads is a field here, with its type, its default and (where the values are a
closed set) its allowed values. Unknown keys and bad values fail before anything is built or pushed.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from kit.errors import ConfigError
from kit.workspace import schema
from kit.workspace.model_sources import model_problem

# The model each backend uses when a config says model = "auto".
DEFAULT_MODELS = {
    "local": "HuggingFaceTB/SmolLM2-135M-Instruct",
    "kaggle": "unsloth/Meta-Llama-3.1-8B-bnb-4bit",
}

MACHINE_SHAPES = ("NvidiaTeslaT4", "NvidiaTeslaP100", "NvidiaL4", "NvidiaL4X1", "NvidiaTeslaA100", "NvidiaH100", "None")


def choice(*values: str, default: str, help: str, aliases: tuple[str, ...] = ()) -> Any:
    """A string field restricted to `values`."""
    return field(default=default, metadata={"choices": values, "help": help, "aliases": aliases})


def setting(
    default: Any, help: str, *, min: float | None = None, max: float | None = None, check: Callable[[Any], str] | None = None, rule: str = "",
    aliases: tuple[str, ...] = (),
) -> Any:
    """A field with a help line, optional numeric bounds, an optional `check` and the names other tools give it
    (`aliases`: an unknown setting that is one of them is answered with this field's name; see kit.workspace.schema.Key)."""
    metadata = {"help": help, "min": min, "max": max, "check": check, "rule": rule, "aliases": aliases}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def _is_run_id(value: str) -> bool:
    prefix, _, number = value.partition("-")
    return prefix == "run" and number.isdigit()


def _run_id_or_empty(value: str) -> str:
    return "" if not value or _is_run_id(value) else "expected a run id such as run-3"


def _threshold(value: str) -> str:
    if value == "tune":
        return ""
    try:
        t = float(value)
    except ValueError:
        t = float("nan")
    return "" if 0.0 < t < 1.0 else "expected a number in (0, 1) or 'tune'"


@dataclass(frozen=True)
class KernelConfig:
    """Settings every kernel shares."""

    competition: str = setting("", "competition slug; its files appear under input/competitions/<slug>")
    model: str = setting(
        "auto", "base model: auto (SmolLM2-135M locally, Llama-3.1-8B 4-bit on Kaggle), a hub id (org/name), a Kaggle model "
        "handle (owner/model/framework/variation[/version]) or dataset (dataset:owner/slug[/folder]), both attached and "
        "loaded with the hub offline, or a local path (local backend)",
        check=model_problem, rule="auto, a hub id, a Kaggle model handle, dataset:owner/slug[/folder] or a local path", aliases=("model_name", "model_id", "base_model"))
    engine: str = choice(
        "auto", "unsloth", "hf", default="auto",
        help="auto = the engine measured fastest for the job, where installed: training on a GPU with room for the base "
        "dequantized (A100 80GB, H100) = hf with compiled layers, else unsloth; scoring (infer) = unsloth; the CPU = hf",
    )
    dtype: str = choice("auto", "bf16", "fp16", "fp32", default="auto", help="compute dtype; auto = bf16 where supported, fp16 on T4, fp32 on CPU")
    load_in_4bit: bool = setting(True, "load the base model in 4-bit (bitsandbytes NF4) on a GPU; ignored on the CPU")
    dequantize_base: str = choice(
        "auto", "on", "off", default="auto",
        help="keep the 4-bit base's weights dequantized where GPU memory allows (same values, no dequantizing in every pass); scoring also merges the adapter in",
    )
    packing: str = choice(
        "auto", "on", "off", default="auto",
        help="put a batch's rows back to back in one sequence (no padding; each row attends only to itself); auto = with "
        "engine hf on a GPU with flash attention (A100, L4, H100), never with unsloth",
    )
    fuse_projections: bool = setting(
        True, "engine hf: one matmul for q/k/v and one for gate/up (and their LoRA A) where the base is dequantized or never "
        "quantized; the same products, fewer and wider kernels",
    )
    max_seq_length: int = setting(1024, "longest prompt in tokens; longer solutions are cut from the middle", min=16, max=131072, aliases=("max_length", "max_len", "max_seq_len", "seq_len", "context_length"))
    prompt: str = setting("grader", "prompt template name (see kernels/runtime/prompts.py)")
    batch_size: int = setting(8, "rows per device per forward pass", min=1, max=4096, aliases=("bs", "batch", "per_device_train_batch_size", "per_device_eval_batch_size", "micro_batch_size"))
    seed: int = setting(3407, "random seed for sampling, splits and initialisation", aliases=("random_seed",))
    val_rows: int = setting(500, "labelled rows held out for validation (the workspace's shared validation set)", min=0)
    test_rows: int = setting(0, "score only the first N test rows (0 = all); for quick checks", min=0)
    # Kernel metadata (kernel-metadata.json), not read by the script.
    machine_shape: str = choice(*MACHINE_SHAPES, default="NvidiaTeslaT4", help="Kaggle accelerator; NvidiaTeslaT4 is T4 x2")
    enable_internet: bool = setting(True, "internet on inside the Kaggle session (off for code competitions)")
    is_private: bool = setting(True, "keep the kernel private")
    timeout_minutes: int = setting(720, "Kaggle session timeout in minutes", min=1, max=720)
    wheels_dataset: str = setting("", "Kaggle dataset (owner/slug) of wheels for internet-off kernels, from `kit deps push`")
    pin_image: bool = setting(
        True, "run on the workspace's Kaggle image (kit.toml [kaggle] docker_image, recorded from its first complete Kaggle "
        "run) so that all its runs are comparable; false = Kaggle's current image",
    )
    # Generated answers (a task of kind "answer"): how completions are sampled. Rendered into the kernel only for such
    # a task, so that every other kernel's settings stay as they were.
    samples: int = setting(4, "generated answers: completions sampled a row; the answer is their majority vote (ties: the earliest)", min=1, max=256)
    temperature: float = setting(0.7, "generated answers: sampling temperature (0 = greedy: one completion, counted N times)", min=0.0, max=5.0)
    max_new_tokens: int = setting(256, "generated answers: the longest completion in tokens", min=1, max=65536)
    generation_engine: str = choice(
        "auto", "transformers", "vllm", default="auto",
        help="generated answers: auto = vLLM where installed on a GPU, else transformers' generate (batched); vllm without it is an error",
    )
    row_seconds: float = setting(
        0.0, "generated answers: seconds one row may spend sampling (0 = no limit of its own; in server mode the task's "
        "per-call budget applies); a row out of time gets the fallback answer", min=0.0,
    )


@dataclass(frozen=True)
class TrainConfig(KernelConfig):
    """Settings of kernels/train.py: data, LoRA, optimisation, checkpoints, outputs."""

    val_seed: int = setting(0, "seed of the validation split; keep it fixed so that every run is scored on the same rows")
    train_rows: int = setting(8000, "training rows sampled from train.csv (0 = all); 8000 lifts SmolLM2 +32 points on practice", min=0, aliases=("n_train", "max_train_samples"))
    data_offset: int = setting(0, "skip this many sampled rows first, so a later phase trains on fresh rows", min=0)
    balance: bool = setting(True, "sample True and False rows 50/50")
    completion_only: bool = setting(True, "compute the loss on the label only, not on the prompt")
    r: int = setting(32, "LoRA rank", min=1, max=1024, aliases=("rank", "lora_r", "lora_rank"))
    lora_alpha: int = setting(64, "LoRA alpha", min=1, aliases=("alpha",))
    lora_dropout: float = setting(0.0, "LoRA dropout (non-zero disables unsloth's fast path)", min=0.0, max=1.0, aliases=("dropout",))
    lora_bias: str = choice("none", "all", "lora_only", default="none", help="LoRA bias (anything but none disables unsloth's fast path)")
    use_rslora: bool = setting(False, "rank-stabilised LoRA scaling")
    target_modules: list = setting(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], "modules that get LoRA adapters"
    )
    learning_rate: float = setting(2e-4, "peak learning rate", min=0.0, max=1.0, aliases=("lr",))
    lr_scheduler: str = choice(
        "linear", "cosine", "constant", "constant_with_warmup", "cosine_with_restarts", default="cosine", help="learning-rate schedule", aliases=("scheduler", "lr_scheduler_type"))
    warmup_steps: int = setting(10, "linear warm-up steps", min=0)
    grad_accum: int = setting(1, "micro-batches per optimizer step", min=1, aliases=("gradient_accumulation_steps", "gradient_accumulation", "accumulation_steps"))
    weight_decay: float = setting(0.01, "AdamW weight decay", min=0.0, aliases=("wd",))
    max_grad_norm: float = setting(1.0, "clip the gradient norm to this (0 = no clipping)", min=0.0, aliases=("clip", "grad_clip", "gradient_clipping"))
    optim: str = choice("adamw_8bit", "adamw_torch", "adamw_torch_fused", "paged_adamw_8bit", "sgd", default="adamw_torch_fused", help="optimizer; fused = one kernel for all LoRA tensors (8-bit saves only ~0.5 GB on 8B at r=32, and its per-tensor loop costs ~60 ms a step)", aliases=("optimizer",))
    max_steps: int = setting(0, "optimizer steps (0 = one pass over train_rows, times epochs)", min=0, aliases=("steps", "num_steps"))
    epochs: float = setting(1.0, "passes over train_rows when max_steps is 0", min=0.0, aliases=("epoch", "num_epochs", "num_train_epochs", "n_epochs"))
    group_by_length: bool = setting(True, "batch rows of similar length to cut padding (padded batches; packed ones have none)")
    train_processes: int = setting(
        1, "processes that train together, one per GPU, each step's rows split between them (the same update as one "
        "process); 0 = one per GPU. Runs as CPU processes where there is no GPU", min=0, max=64,
    )
    gradient_checkpointing: str = choice("auto", "on", "off", default="auto", help="recompute activations; auto = only when memory requires it", aliases=("checkpointing", "grad_checkpointing"))
    compile: str = choice(
        "auto", "on", "off", default="auto",
        help="torch.compile the decoder layers (engine hf); auto = on a CUDA GPU that Triton supports",
    )
    cuda_graphs: str = choice(
        "auto", "on", "off", default="auto",
        help="replay each training pass as a CUDA graph (packed rows padded to a few widths); auto = for models of up to "
        "3B parameters, where launching kernels costs more than running them",
    )
    save_steps: int = setting(0, "save a checkpoint every N steps (0 = only at the end)", min=0)
    logging_steps: int = setting(10, "print a progress line every N steps", min=1)
    resume_from: str = setting("", "run id (run-N) whose adapter or checkpoint this run continues", check=_run_id_or_empty, rule="a run id such as run-3")
    predict_test: bool = setting(True, "score the test set after training and write submission.csv")
    threshold: str = setting("0.5", "probability cut for True: a number, or 'tune' to tune it on validation", check=_threshold, rule="a number in (0, 1) or 'tune'")


@dataclass(frozen=True)
class InferConfig(KernelConfig):
    """Settings of kernels/infer.py: which adapter scores the test set, and how."""

    adapter_run: str = setting("", "run id (run-N) of a train run whose adapter to load; empty = base model", check=_run_id_or_empty, rule="a run id such as run-3", aliases=("adapter",))
    val_seed: int = setting(0, "seed of the validation split (the same as the train runs', to score the same rows)")
    threshold: str = setting("0.5", "probability cut for True: a number, or 'tune' to tune it on validation", check=_threshold, rule="a number in (0, 1) or 'tune'")
    batch_size: int = setting(16, "rows per device per forward pass", min=1, max=4096, aliases=("bs", "batch", "per_device_train_batch_size", "per_device_eval_batch_size", "micro_batch_size"))


KERNEL_CONFIGS: dict[str, type[KernelConfig]] = {"train": TrainConfig, "infer": InferConfig}

# Keys that go to kernel-metadata.json rather than into the script.
METADATA_KEYS = frozenset({"machine_shape", "enable_internet", "is_private", "timeout_minutes", "wheels_dataset", "pin_image"})
# Keys only a generated-answer task's kernel reads (rendered for such a task alone).
GENERATION_KEYS = frozenset({"samples", "temperature", "max_new_tokens", "generation_engine", "row_seconds"})


def config_class(kernel: str, verb: str = "kit build") -> type[KernelConfig]:
    """The config class of a kernel name, or a ConfigError naming the known kernels (with `verb`, the command run)."""
    try:
        return KERNEL_CONFIGS[kernel]
    except KeyError:
        raise ConfigError(
            f"unknown kernel {kernel!r}; known kernels: {', '.join(sorted(KERNEL_CONFIGS))}",
            hint="  |  ".join(f"{verb} {name}" for name in KERNEL_CONFIGS),
        ) from None


def field_specs(cls: type[KernelConfig]) -> dict[str, dataclasses.Field]:
    """The fields of a config class by name."""
    return {f.name: f for f in dataclasses.fields(cls)}


@functools.cache
def setting_keys(cls: type[KernelConfig]) -> dict[str, schema.Key]:
    """The config class's fields as schema keys: run settings are checked by the same code as every file's keys."""
    hints = typing.get_type_hints(cls)
    keys = {}
    for f in dataclasses.fields(cls):
        ftype = hints[f.name]
        if isinstance(ftype, types.UnionType):
            ftype = next(t for t in typing.get_args(ftype) if t is not type(None))
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        m = f.metadata
        keys[f.name] = schema.Key(
            ftype, default, m.get("help", ""), choices=tuple(m.get("choices", ())), min=m.get("min"), max=m.get("max"),
            check=m.get("check"), rule=m.get("rule", ""), aliases=tuple(m.get("aliases", ())),
        )
    return keys


def settings_table(kernel: str) -> schema.Table:
    """The [train] / [infer] table of kit.toml (and a sweep's [base]): the kernel's run settings."""
    return schema.Table(lambda: setting_keys(config_class(kernel)), help=f"default settings of the {kernel} kernel", word="setting")


def kernel_of(cls: type[KernelConfig]) -> str:
    """The kernel a config class holds the settings of (train, infer), as a person names it."""
    return next((name for name, known in KERNEL_CONFIGS.items() if known is cls), cls.__name__)


def coerce_value(cls: type[KernelConfig], key: str, value: Any, command: str = "") -> Any:
    """Turn `value` (a string from the command line or a TOML value) into the setting's type, checked; a bad one
    is a ConfigError whose fix is `command` (the one the person ran, e.g. `kit push-kernel train`) with --set."""
    keys = setting_keys(cls)
    kernel = kernel_of(cls)
    if key not in keys:
        raise schema.unknown(key, keys, "setting", where=f" of the {kernel} kernel")
    return schema.coerce(key, keys[key], value, hint=f"{command or f'kit build {kernel}'} --set {key}=VALUE")


def parse_assignments(items: list[str] | tuple[str, ...], command: str = "kit build train") -> dict[str, str]:
    """Parse `KEY=VALUE` strings from `--set` of `command` (named in the fix)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"bad --set {item!r}: expected KEY=VALUE", hint=f"{command} --set learning_rate=1e-4")
        out[key.strip()] = value.strip()
    return out


def make_config(kernel: str, *layers: Mapping[str, Any], command: str = "") -> KernelConfig:
    """Build a kernel's config from layers of settings (workspace defaults, then --set), later winning; `command`
    is the command that was run (named in the fix of a bad setting; default `kit build KERNEL`)."""
    cls = config_class(kernel, command.rsplit(" ", 1)[0] if command else "kit build")
    values: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            values[key] = coerce_value(cls, key, value, command)
    return cls(**values)


def config_dict(config: KernelConfig) -> dict[str, Any]:
    """All settings as a plain dict, in field order."""
    return dataclasses.asdict(config)


def script_settings(config: KernelConfig, generated: bool = False) -> dict[str, Any]:
    """The settings the kernel script reads (everything but kernel metadata; the sampling settings only where the
    task's answers are `generated`)."""
    return {k: v for k, v in config_dict(config).items() if k not in METADATA_KEYS and (generated or k not in GENERATION_KEYS)}


def source_runs(config: KernelConfig) -> list[str]:
    """Runs whose outputs this kernel reads, so they are attached as sources."""
    return [r for r in (getattr(config, "resume_from", ""), getattr(config, "adapter_run", "")) if r]
