"""The plan: every decision a kernel makes about the machine, made once, up front, each with its reason.

    machine = detect_machine()                        # the GPUs, their memory, the packages (imports torch inside)
    plan = make_plan(config, machine, "train", model) # frozen; printed as a table at the top of the log, saved as plan.json

`kit build --explain --gpu t4x2` calls the same make_plan on a named machine (PROFILES) without running anything, so
what a user previews is what runs. Pure Python, importing no other runtime module, so kit loads this file by path.

Two memory figures cannot be known before the model is on the GPU: whether to recompute activations (and the
chunk size), and whether a 4-bit base has room to be kept dequantized. make_plan estimates them from the GPU's
memory and the model's config.json (the longest row taken as max_seq_length); after loading, the train stage settles
them with plan_memory on the measured room (settle_memory), and scoring settles its own copy with
dequantize_for_scoring. The functions that decide are these, whoever calls them.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import math
import os
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, NamedTuple

GIB = 2**30
SCORE_TOKENS = 16384  # padded tokens per scoring batch on a GPU: large enough to keep an H100 busy, ~2 GiB transient
SCORING_RESERVE = 6 * GIB  # activations of a SCORE_TOKENS batch, the logits at the label positions, allocator slack
MIN_CHUNK_TOKENS = 2048  # below this a forward pass leaves a large GPU idle; recomputation is then the better trade
DEQUANTIZED_MIN_TOKENS = 4096  # a dequantized copy saves ~15-25% of a step; recomputation costs ~33%, so never trade one for it
EAGER_HF_ACTIVATIONS = 1.2  # transformers run eagerly keeps ~20% more per token than unsloth's or compiled layers (H100, 8B)
CUDA_CONTEXT = int(0.4 * GIB)  # what a CUDA context takes before anything loads (a named profile's free memory)
RANK_ENV, WORLD_ENV = "RANK", "WORLD_SIZE"  # set in each training process by torch.distributed's launcher (parallel.py)
PACKAGES = ("torch", "transformers", "peft", "bitsandbytes", "unsloth", "accelerate", "vllm")


class PlanError(RuntimeError):
    """A setting this machine cannot honour (engine=unsloth without a GPU...): one line with the fix."""


# ------------------------------------------------------------------------------------------------ the machine


@dataclass(frozen=True)
class Gpu:
    """One CUDA GPU as torch sees it."""

    name: str
    memory: int  # bytes this process may hold (total, times a per-process memory fraction)
    free: int  # bytes free before anything loaded
    capability: tuple[int, int]  # compute capability: (7, 5) T4, (8, 0) A100, (9, 0) H100
    bf16: bool


@dataclass(frozen=True)
class Machine:
    """What a kernel runs on: its GPUs (none on the CPU), the packages installed, and the session."""

    name: str  # a profile's name, or "this machine"
    gpus: tuple[Gpu, ...] = ()
    packages: dict = field(default_factory=dict)  # name -> version of the PACKAGES installed ("" = version unknown)
    varlen_attention: bool = False  # torch has torch.nn.attention.varlen (2.10+): flash attention over packed rows
    rerun: bool = False  # a code competition reruns the notebook on its hidden test set
    worker_world: int = 0  # >0 in a training process of rank 1 or more (it sees only its own GPU): how many train together

    def has(self, package: str) -> bool:
        """Whether `package` is installed."""
        return package in self.packages

    def without(self, package: str) -> "Machine":
        """This machine as if `package` were not installed (one that fails to import)."""
        return dataclasses.replace(self, packages={k: v for k, v in self.packages.items() if k != package})

    def flash_attention(self) -> bool:
        """Whether packed rows can use flash attention: every GPU of compute capability 8.0 or newer (A100, L4, H100;
        not the T4) and a torch with varlen_attn."""
        return bool(self.gpus) and self.varlen_attention and all(g.capability >= (8, 0) for g in self.gpus)

    def summary(self) -> str:
        """"2 x Tesla T4 (14.7 GiB)" or "CPU"."""
        if not self.gpus:
            return "CPU (no CUDA GPU)"
        gpu = self.gpus[0]
        return f"{len(self.gpus)} x {gpu.name} ({gpu.memory / GIB:.1f} GiB, compute {gpu.capability[0]}.{gpu.capability[1]})"


KAGGLE_PACKAGES = {"torch": "2.10.0", "transformers": "5.17.0", "peft": "0.18.1", "bitsandbytes": "0.50.2", "unsloth": "2026.10.9",
                   "accelerate": "1.12.0"}  # Kaggle's image with kit's pinned unsloth set installed (pins.py)


def profile(name: str, gpu: str, count: int, gib: float, capability: tuple[int, int], bf16: bool) -> Machine:
    """A named machine: `count` GPUs of `gib` GiB (as torch reports their total) on Kaggle's image."""
    memory = int(gib * GIB)
    gpus = tuple(Gpu(gpu, memory, memory - CUDA_CONTEXT, capability, bf16) for _ in range(count))
    return Machine(name, gpus, dict(KAGGLE_PACKAGES), varlen_attention=True)


PROFILES = {
    "cpu": Machine("cpu", packages={"torch": "", "transformers": "", "peft": ""}),
    "t4": profile("t4", "Tesla T4", 1, 14.74, (7, 5), False),
    "t4x2": profile("t4x2", "Tesla T4", 2, 14.74, (7, 5), False),
    "p100": profile("p100", "Tesla P100-PCIE-16GB", 1, 15.89, (6, 0), False),
    "l4": profile("l4", "NVIDIA L4", 1, 22.05, (8, 9), True),
    "l4x4": profile("l4x4", "NVIDIA L4", 4, 22.05, (8, 9), True),
    "a100": profile("a100", "NVIDIA A100-SXM4-40GB", 1, 39.39, (8, 0), True),
    "a100-80gb": profile("a100-80gb", "NVIDIA A100-SXM4-80GB", 1, 79.15, (8, 0), True),
    "h100": profile("h100", "NVIDIA H100 80GB HBM3", 1, 79.11, (9, 0), True),
    "h200": profile("h200", "NVIDIA H200", 1, 139.72, (9, 0), True),
}
# The profile of each Kaggle accelerator (kernel-metadata.json's machine_shape).
MACHINE_SHAPE_PROFILES = {"NvidiaTeslaT4": "t4x2", "NvidiaTeslaP100": "p100", "NvidiaL4": "l4x4", "NvidiaL4X1": "l4",
                          "NvidiaTeslaA100": "a100", "NvidiaH100": "h100", "None": "cpu"}


def installed_packages() -> dict:
    """Versions of the PACKAGES that are installed, found without importing them."""
    import importlib.metadata

    found = {}
    for name in PACKAGES:
        if importlib.util.find_spec(name) is None:
            continue
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = ""
    return found


def detect_machine() -> Machine:
    """This machine, as the kernel sees it (imports torch: call it after install_pinned)."""
    import torch

    gpus = []
    for k in range(torch.cuda.device_count() if torch.cuda.is_available() else 0):
        # Only the first GPU is measured (the one planned for): asking another would open a CUDA context on it that
        # the training process given that GPU then shares.
        free, total = torch.cuda.mem_get_info(0) if k == 0 else (None, torch.cuda.get_device_properties(k).total_memory)
        fraction = torch.cuda.get_per_process_memory_fraction(k) if hasattr(torch.cuda, "get_per_process_memory_fraction") else 1.0
        usable = int(fraction * total)
        gpus.append(Gpu(torch.cuda.get_device_name(k), usable, usable if free is None else min(free, usable), tuple(torch.cuda.get_device_capability(k)), bool(torch.cuda.is_bf16_supported())))
    return Machine("this machine", tuple(gpus), installed_packages(), varlen_attention=has_varlen_attention(),
                   rerun=bool(os.environ.get("KAGGLE_IS_COMPETITION_RERUN")), worker_world=int(os.environ.get(WORLD_ENV, "0")) if int(os.environ.get(RANK_ENV, "0")) else 0)


def has_varlen_attention() -> bool:
    """Whether the installed torch has varlen_attn (torch.nn.attention.varlen, 2.10+)."""
    try:
        from torch.nn.attention.varlen import varlen_attn  # noqa: F401
    except ImportError:
        return False
    return True


def package_set(engine: str, gpu: bool) -> str:
    """Which pinned set a kernel installs before torch loads (so before the machine is detected): unsloth's where it
    may run unsloth (a GPU, engine auto or unsloth), else hf's."""
    return "unsloth" if gpu and engine in ("auto", "unsloth") else "hf"


def unsloth_imports(required: bool) -> bool:
    """Import unsloth (before transformers, so that its patches apply); False where it fails and was not `required`
    (a broken install must not sink an auto run: the kernel plans again without it)."""
    try:
        importlib.import_module("unsloth")
        return True
    except Exception as exc:
        if required:
            raise
        print(f"warning: unsloth failed to import ({type(exc).__name__}: {exc}); using engine=hf", flush=True)
        return False


# ------------------------------------------------------------------------------------------------ the plan


@dataclass(frozen=True)
class Decision:
    """One choice of the plan: its value, why, and a warning where a setting was not honoured as written."""

    value: Any
    reason: str
    warning: str = ""


@dataclass(frozen=True)
class Plan:
    """Everything a run decides about the machine. Train-only choices are None in an infer plan."""

    kernel: str  # train | infer
    machine: str  # Machine.summary()
    model: str  # what the memory figures assume about the model
    engine: Decision  # hf | unsloth: how the model is loaded (and trained)
    dtype: Decision  # bf16 | fp16 | fp32: compute dtype
    load_in_4bit: Decision  # the base loaded in 4-bit (NF4)
    packing: Decision  # rows back to back in one sequence
    attention: Decision  # flash varlen | row by row | padded sdpa
    pad_multiple: Decision  # padded widths rounded up to this
    fuse_projections: Decision  # q/k/v and gate/up as one matmul each (engine hf)
    scoring_gpus: Decision  # models scoring side by side, one per GPU
    scoring_engines: Decision  # the engine of each scoring model (extra GPUs load through transformers)
    score_tokens: Decision  # padded tokens per scoring batch (0 = batch_size rows)
    scoring_dequantize: Decision  # dequantize a 4-bit base before scoring (and merge the adapter)
    validation: Decision  # score the validation rows
    test_rows: Decision  # test rows scored (0 = all)
    train_processes: Decision | None = None  # processes training together, one per GPU
    compile: Decision | None = None  # torch.compile the decoder layers
    cuda_graphs: Decision | None = None  # training passes replayed as CUDA graphs (graphs.py)
    optimizer: Decision | None = None  # the optimizer that runs
    checkpointing: Decision | None = None  # recompute activations in the backward pass
    chunk_tokens: Decision | None = None  # most padded tokens in one training forward pass (0 = no limit)
    dequantize_base: Decision | None = None  # train on a dequantized copy of the 4-bit base
    warmup: Decision | None = None  # steps the learning rate warms up over, against the steps the run will take
    generation: Decision | None = None  # vllm | transformers: what samples a generated-answer task's completions

    def decisions(self) -> dict:
        """The decisions by name, in the order of the fields (those that apply to this kernel)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if isinstance(getattr(self, f.name), Decision)}

    def warnings(self) -> list[str]:
        """Settings this machine does not honour as written, one line each."""
        return [d.warning for d in self.decisions().values() if d.warning]

    def to_json(self) -> dict:
        """plan.json: the machine, the model assumed, and each decision's value and reason."""
        return {"kernel": self.kernel, "machine": self.machine, "model": self.model,
                "decisions": {name: {"value": d.value, "reason": d.reason} for name, d in self.decisions().items()}}

    def table(self) -> str:
        """The plan as a short table for the top of the log (and `kit build --explain`)."""
        rows = [(name, show(d.value), d.reason) for name, d in self.decisions().items()]
        width = max(len(name) for name, _, _ in rows)
        value_width = max(len(value) for _, value, _ in rows)
        lines = [f"plan ({self.kernel} kernel) on {self.machine}; model: {self.model}"]
        lines += [f"  {name:<{width}}  {value:<{value_width}}  {reason}" for name, value, reason in rows]
        return "\n".join(lines)


def show(value) -> str:
    """A decision's value as the table prints it."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def make_plan(config: dict, machine: Machine, kernel: str, model_config: dict | None = None) -> Plan:
    """The plan for `config` (a kernel's CONFIG) on `machine`; `model_config` is the model's config.json (None where
    unknown: the memory figures then take an 8B-sized need). Raises PlanError for a setting the machine cannot honour."""
    gpu = bool(machine.gpus)
    train = kernel == "train"
    roomy = room_for_dequantized(config, machine, model_config)
    engine = choose_engine(config["engine"], "hf" if (train and roomy) else "unsloth", machine, train, roomy)
    dtype = choose_dtype(config["dtype"], machine)
    packing = choose_packing(config["packing"], engine.value, machine)
    fuse = Decision(bool(config["fuse_projections"]) and engine.value == "hf",
                    "engine hf" if engine.value == "hf" and config["fuse_projections"] else
                    ("fuse_projections=false" if not config["fuse_projections"] else "engine unsloth fuses its own"))
    scoring = scoring_devices(config, machine, engine.value, train)
    parts = dict(
        kernel=kernel, machine=machine.summary(), model=model_assumption(config, model_config, gpu), engine=engine, dtype=dtype,
        load_in_4bit=Decision(bool(config["load_in_4bit"]) and gpu, "asked for, on a GPU" if config["load_in_4bit"] and gpu else
                              ("ignored on the CPU" if config["load_in_4bit"] else "load_in_4bit=false")),
        packing=packing, attention=choose_attention(packing.value, machine), pad_multiple=choose_pad_multiple(engine.value, packing.value, train),
        fuse_projections=fuse, scoring_gpus=scoring[0], scoring_engines=scoring[1],
        score_tokens=Decision(SCORE_TOKENS if gpu else 0, "token budget per batch on a GPU" if gpu else "batch_size rows a batch on the CPU"),
        scoring_dequantize=estimate_scoring_dequantize(config, machine, model_config, engine.value),
        validation=choose_validation(config, machine), test_rows=choose_test_rows(config, machine),
    )
    if "generation_engine" in config:  # a generated-answer task (its kernels alone get the sampling settings)
        parts.update(generation=choose_generation(config["generation_engine"], machine))
    if train:
        parts.update(warmup=choose_warmup(config))
        parts.update(train_processes=training_processes(config["train_processes"], len(machine.gpus), machine.worker_world, config["batch_size"]),
                     optimizer=choose_optimizer(config["optim"], machine))
        compiled = choose_compile(config["compile"], engine.value, machine)
        memory = estimate_memory(config, machine, model_config, engine.value, compiled.value, packing.value)
        graphs = choose_cuda_graphs(config["cuda_graphs"], engine.value, dtype.value, parts["attention"].value,
                                    parts["train_processes"].value, memory.checkpointing, model_config, config["completion_only"])
        if graphs.value and compiled.value and config["compile"] == "auto" and planned_rows(config) < GRAPHED_COMPILE_ROWS:
            eager = estimate_memory(config, machine, model_config, engine.value, False, packing.value)
            if not eager.checkpointing:  # graphs of the eager layers: compiling them would cost more than it saves
                compiled, memory = Decision(False, GRAPHED_UNCOMPILED), eager
        parts.update(compile=compiled, cuda_graphs=graphs, **memory_decisions(memory, estimated=gpu))
        if memory.dequantize:
            parts["scoring_dequantize"] = Decision(True, "dequantized for training already")
    return Plan(**parts)


def model_assumption(config: dict, model_config: dict | None, gpu: bool) -> str:
    """What the plan's memory figures take the model to be."""
    if not gpu:
        return f"{config['model']} (no GPU: no memory figures)"
    if model_config is None:
        return f"{config['model']} (config.json not found: taken as needing 40 GiB dequantized, as an 8B model does)"
    shape = as_shape(model_config)
    billions = bf16_weight_bytes(shape) / 2 / 1e9
    return f"{config['model']} ({billions:.2f}B parameters from its config.json; longest row = max_seq_length {config['max_seq_length']})"


# ------------------------------------------------------------------------------------------------ one decision each


def choose_generation(requested: str, machine: Machine) -> Decision:
    """vllm or transformers for sampling completions: vllm where asked for or, with auto, where it is installed on a
    GPU (paged attention, continuous batching); else transformers' generate, batched. vllm asked for where it cannot
    run is refused, not quietly replaced (the user counts on its speed)."""
    if requested == "vllm":
        if not machine.gpus:
            raise PlanError("generation_engine=vllm needs a CUDA GPU and this machine has none; use generation_engine=auto (transformers here)")
        if not machine.has("vllm"):
            raise PlanError("generation_engine=vllm, and vLLM is not installed here; use generation_engine=auto (transformers' generate), "
                            "or run where vLLM is installed (it is not in kit's pinned set)")
        return Decision("vllm", "generation_engine=vllm")
    if requested == "transformers":
        return Decision("transformers", "generation_engine=transformers")
    if machine.gpus and machine.has("vllm"):
        return Decision("vllm", "vLLM is installed and there is a GPU: paged attention and continuous batching sample fastest")
    return Decision("transformers", "transformers' generate, batched: " + ("vLLM is not installed" if machine.gpus else "no GPU (vLLM runs on CUDA only)"))


def choose_engine(requested: str, prefer: str, machine: Machine, train: bool, roomy: bool) -> Decision:
    """unsloth or hf. auto takes the engine the kernel `prefer`s for its job and GPU (train: hf with its layers
    compiled where the base fits dequantized, else unsloth; infer: unsloth, whose fused kernels score faster), falling
    back to hf where unsloth is not installed (on Kaggle, install_pinned installed it first). Figures: bench/RESULTS.md, issue 6."""
    if requested == "unsloth" and not machine.gpus:
        raise PlanError("engine=unsloth needs a CUDA GPU; use engine=hf (or auto) on the CPU")
    if requested == "hf":
        return Decision("hf", "engine=hf")
    if not machine.gpus:
        return Decision("hf", "no GPU: transformers")
    if requested == "auto" and prefer == "hf":
        return Decision("hf", "the base fits dequantized: transformers trains fastest (compiled layers, or CUDA graphs for a small model)")
    if machine.has("unsloth"):
        why = "engine=unsloth" if requested == "unsloth" else (
            "unsloth scores fastest" if not train else "no room for a dequantized base: unsloth's 4-bit kernels" if not roomy else "unsloth")
        return Decision("unsloth", why)
    if requested == "unsloth":
        raise PlanError("engine=unsloth but unsloth is not installed; on Kaggle turn the internet on or attach the wheel dataset of `kit deps push`, else use engine=hf")
    return Decision("hf", "unsloth is not installed", "unsloth is not installed; using engine=hf")


def choose_dtype(requested: str, machine: Machine) -> Decision:
    """The compute dtype: bf16 where the GPU supports it, fp16 on older GPUs (T4), fp32 on the CPU."""
    if requested == "auto":
        if not machine.gpus:
            return Decision("fp32", "the CPU")
        bf16 = all(g.bf16 for g in machine.gpus)
        return Decision("bf16" if bf16 else "fp16", "the GPU supports bf16" if bf16 else "no bf16 on this GPU")
    if not machine.gpus and requested != "fp32":
        return Decision("fp32", f"dtype={requested} refused on the CPU", f"dtype={requested} on the CPU is slow and unsupported by some ops; using fp32")
    return Decision(requested, f"dtype={requested}")


def choose_compile(requested: str, engine: str, machine: Machine) -> Decision:
    """Whether to torch.compile the decoder layers for training: auto = with engine hf on a CUDA GPU that Triton
    compiles for (compute capability 7.0 or newer: T4, A100, H100; not the P100)."""
    if requested == "off" or engine != "hf" or not machine.gpus:
        warning = f"compile=on needs engine=hf on a CUDA GPU (engine={engine}); training eagerly" if requested == "on" else ""
        return Decision(False, "compile=off" if requested == "off" else f"engine {engine}" if machine.gpus else "no GPU", warning)
    major, minor = machine.gpus[0].capability
    if major < 7:
        warning = f"compile=on: Triton does not compile for this GPU (compute capability {major}.{minor}); training eagerly" if requested == "on" else ""
        return Decision(False, f"Triton does not compile for compute capability {major}.{minor}", warning)
    return Decision(True, "compile=on" if requested == "on" else "engine hf on a GPU Triton compiles for")


# Graphed passes of a small model launch nothing from Python, so what compiling adds is fused GPU work (1.5-1.9x), at
# ~80 s of compilation from an empty cache (a fresh Kaggle machine): SmolLM2-135M's practice default (8,000 rows) trained
# in 30 s with graphs of the eager layers against 109 s compiled (H200, bench/RESULTS.md, issue 17). The compilation pays
# past ~8-12M tokens, ~32,000 rows of the reference competition's length: longer runs compile.
GRAPHED_COMPILE_ROWS = 32_000
GRAPHED_UNCOMPILED = (f"the passes replay as CUDA graphs: under {GRAPHED_COMPILE_ROWS:,} rows compiling them first costs more than it "
                      "saves (compile=on to compile)")


def planned_rows(config: dict) -> float:
    """Rows the run will train on (a row counted once per pass); train_rows=0 (all of train.csv) counts as unbounded."""
    if config["max_steps"]:
        return config["max_steps"] * config["batch_size"] * config["grad_accum"]
    return (config["train_rows"] or float("inf")) * config["epochs"]


GRAPHED_MAX_PARAMS = 3e9  # above this a step's GPU work outlasts launching it (8B on an H200: graphs gained nothing)


def graphs_blocker(engine: str, dtype: str, attention: str, processes: int, checkpointing: bool, completion_only: bool = True) -> str:
    """Why this run's training passes cannot replay as CUDA graphs ("" when they can): a graph needs packed rows
    under flash varlen attention (one shape per width, no host syncs), one target a row (the loss at the label, so a
    width has one shape), no loss scaler (fp16's checks the gradients on the host), one process (gradients are
    summed between processes), no recomputation, and transformers' engine."""
    if engine != "hf":
        return f"engine {engine}"
    if not completion_only:
        return "completion_only=false: a loss on every token (graphs take one target a row)"
    if attention != "flash varlen":
        return "needs packed rows with flash varlen attention"
    if dtype == "fp16":
        return "fp16's loss scaler checks gradients on the host"
    if processes > 1:
        return "several training processes"
    if checkpointing:
        return "gradient checkpointing"
    return ""


def choose_cuda_graphs(requested: str, engine: str, dtype: str, attention: str, processes: int, checkpointing: bool,
                       model_config: dict | None, completion_only: bool = True) -> Decision:
    """Whether training passes replay as CUDA graphs: auto = where they can (graphs_blocker) for a model of at most
    GRAPHED_MAX_PARAMS, whose steps the host's kernel launches hold back (SmolLM2-135M on an H200: bench/RESULTS.md,
    issue 17); on = wherever they can."""
    if requested == "off":
        return Decision(False, "cuda_graphs=off")
    blocker = graphs_blocker(engine, dtype, attention, processes, checkpointing, completion_only)
    if blocker:
        return Decision(False, blocker, f"cuda_graphs=on: {blocker}; training eagerly" if requested == "on" else "")
    if requested == "on":
        return Decision(True, "cuda_graphs=on")
    if model_config is None:
        return Decision(False, "model size unknown (no config.json)")
    billions = bf16_weight_bytes(as_shape(model_config)) / 2 / 1e9
    if billions * 1e9 > GRAPHED_MAX_PARAMS:
        return Decision(False, f"{billions:.1f}B parameters: the GPU's work outlasts the launches")
    return Decision(True, f"{billions:.2f}B parameters: launching a step's kernels outlasts running them")


def choose_packing(requested: str, engine: str, machine: Machine) -> Decision:
    """Whether a run packs its rows: auto = with the transformers engine where flash attention takes packed rows (no
    pad tokens, and one shape for every step of the compiled layers); on = wherever the engine allows (unsloth's
    attention ignores row boundaries, so never with it)."""
    if engine == "unsloth":
        warning = "packing is not supported with engine=unsloth (its attention ignores row boundaries); using length-grouped batches" if requested == "on" else ""
        return Decision(False, "engine unsloth ignores row boundaries", warning)
    if requested == "off":
        return Decision(False, "packing=off")
    if requested == "on":
        return Decision(True, "packing=on")
    flash = machine.flash_attention()
    return Decision(flash, "flash attention takes packed rows" if flash else "no flash attention for packed rows here")


def choose_attention(packed: bool, machine: Machine) -> Decision:
    """How packed rows attend: flash attention (varlen) where the GPUs have it, else each row on its own (the same numbers)."""
    if not packed:
        return Decision("padded sdpa", "rows padded to the batch's width")
    if machine.flash_attention():
        return Decision("flash varlen", "compute capability 8.0+ and torch's varlen_attn")
    return Decision("row by row", "no flash varlen here: each row through sdpa alone (same numbers, slower)")


def pad_multiple(engine: str) -> int:
    """Batch widths are rounded up to this: unsloth compiles per new shape, so 64 bounds its recompilations; kit's
    compiled layers take any width (dynamic shapes), and 8 measured faster than 1 (H100: 14,405 vs 14,116 tokens/s)."""
    return 64 if engine == "unsloth" else 8


def choose_pad_multiple(engine: str, packed: bool, train: bool) -> Decision:
    """The width multiple of padded batches (scoring always pads to the engine's; packed training rows are not padded)."""
    multiple = pad_multiple(engine)
    if train and packed:
        return Decision(1, f"packed training rows are not padded; scoring pads to {multiple}")
    return Decision(multiple, "unsloth compiles per shape" if engine == "unsloth" else "8 measured fastest")


def training_processes(setting: int, gpus: int, worker_world: int = 0, batch_size: int = 0) -> Decision:
    """How many processes train, and why: `setting` (0 = one per GPU) at most one per GPU, as many CPU processes as
    asked; `worker_world` in a process of rank 1 or more, which sees only its own GPU. Several processes split each
    micro-batch's `batch_size` rows between them (parallel.py), so that the updates stay those of one process."""
    if worker_world:
        return Decision(worker_world, f"one of {worker_world} training processes (rank 1 or more: its own GPU)")
    n = (gpus if setting == 0 else min(max(setting, 1), gpus)) if gpus else max(setting, 1)
    why = f"train_processes={setting}" + (" (one per GPU)" if setting == 0 and gpus else " on the CPU" if not gpus else "")
    warning = f"train_processes={setting} but this machine has {gpus} GPU(s); training in {n}, one per GPU" if setting > gpus > 0 else ""
    if n == 1:
        if gpus > 1:
            return Decision(1, f"{why}: one process trains on the first GPU and all {gpus} score; train_processes=0 trains "
                               f"on all {gpus}, each micro-batch's rows split between them")
        return Decision(1, f"{why}: one process" + (", one GPU" if gpus else ""), warning)
    if 0 < batch_size < n:
        warning = f"batch_size={batch_size} leaves some of the {n} training processes without rows in each micro-batch; raise batch_size to {n} or more"
    share = f"{batch_size // n}" + ("" if batch_size % n == 0 else f"-{batch_size // n + 1}")
    where = f"{n} GPUs" + (f" of {gpus} (all score)" if n < gpus else "") if gpus else f"{n} CPU processes (gloo) sharing the cores"
    return Decision(n, f"{why}: {where}; each micro-batch's {batch_size} rows split between them ({share} each), the gradients "
                       "summed: the same updates as one process; torch.distributed's launcher starts them, rank 0 writes the outputs", warning)


def processes_here(config: dict) -> int:
    """training_processes on this machine, asked of torch without opening a CUDA context: the kernel's own process
    only launches the training processes, and a context would hold memory on the first GPU all run long."""
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return training_processes(config["train_processes"], gpus, batch_size=config["batch_size"]).value


def choose_optimizer(name: str, machine: Machine) -> Decision:
    """The optimizer that runs: 8-bit ones need bitsandbytes and a GPU, else AdamW (torch) takes their place; the
    fused AdamW only on a GPU."""
    if name in ("adamw_8bit", "paged_adamw_8bit"):
        if machine.gpus and machine.has("bitsandbytes"):
            return Decision(name, f"optim={name}")
        missing = "no CUDA GPU" if not machine.gpus else "bitsandbytes is not installed"
        return Decision("adamw_torch", f"optim={name} unavailable ({missing})")
    if name == "adamw_torch_fused" and not machine.gpus:
        return Decision("adamw_torch", "the fused AdamW needs a GPU")
    return Decision(name, f"optim={name}")


def planned_steps(config: dict) -> int | None:
    """Optimizer steps the run will take (kernels/runtime/training.py's phase_length, from the settings alone); None
    where train_rows=0 leaves it to the size of train.csv."""
    if config["max_steps"]:
        return config["max_steps"]
    if not config["train_rows"]:
        return None
    per_epoch = math.ceil(math.ceil(config["train_rows"] / config["batch_size"]) / config["grad_accum"])
    return max(1, math.ceil(config["epochs"] * per_epoch))


def choose_warmup(config: dict) -> Decision:
    """The warm-up against the run's length: a warm-up as long as the run or longer never lets the learning rate reach
    learning_rate (the schedule is cut at the run's last step), which a short run would not show anywhere else."""
    warmup, steps = config["warmup_steps"], planned_steps(config)
    if steps is None:
        return Decision(warmup, f"warmup_steps={warmup}; the run's steps depend on the size of train.csv (train_rows=0)")
    if warmup and warmup >= steps:
        return Decision(warmup, f"warmup_steps={warmup} of the run's {steps} steps",
                        f"warm-up ({warmup} steps) is not shorter than the run ({steps} steps): the learning rate never reaches "
                        f"learning_rate={config['learning_rate']:g}; set warmup_steps below {steps} (e.g. warmup_steps={steps // 10})")
    return Decision(warmup, f"warmup_steps={warmup} of the run's {steps} steps")


def choose_validation(config: dict, machine: Machine) -> Decision:
    """Whether to score the validation rows: during a rerun nobody reads the metrics, so they are scored only when
    the threshold is tuned on them (the predictions then depend on them); the time goes to the hidden rows."""
    if not config["val_rows"]:
        return Decision(False, "val_rows=0")
    if machine.rerun and str(config["threshold"]) != "tune":
        return Decision(False, "competition rerun: validation rows not scored (the threshold is fixed; only submission.csv counts)")
    return Decision(True, f"{config['val_rows']} shared rows (val_seed={config['val_seed']})")


def choose_test_rows(config: dict, machine: Machine) -> Decision:
    """How many test rows to score: all of them in a competition rerun (the hidden test set replaced the visible
    one), else the first test_rows when set."""
    if not config.get("predict_test", True):
        return Decision(0, "predict_test=false: no test rows scored")
    if machine.rerun:
        return Decision(0, "competition rerun: scoring the hidden test set")
    if config["test_rows"]:
        return Decision(config["test_rows"], f"test_rows={config['test_rows']}: scoring only the first rows",
                        f"scoring only the first {config['test_rows']} test rows (test_rows={config['test_rows']}): submission.csv is incomplete")
    return Decision(0, "scoring every test row")


def scoring_devices(config: dict, machine: Machine, engine: str, train: bool) -> tuple[Decision, Decision]:
    """How many models score side by side (one per GPU) and each one's engine: the first is the trained or loaded
    one; extra GPUs load through transformers (unsloth's patched model assumes the first GPU)."""
    count = len(machine.gpus) or 1
    if train and not (config["val_rows"] or config["predict_test"]):
        count = 1
    engines = tuple([engine] + ["hf"] * (count - 1))
    why = "one model per GPU, rows dealt by length" if count > 1 else ("one GPU" if machine.gpus else "the CPU")
    return Decision(count, why), Decision(engines, "extra GPUs load through transformers" if count > 1 and engine != "hf" else f"engine {engine}")


# ------------------------------------------------------------------------------------------------ memory


def as_shape(model_config):
    """A model's config (config.json as a dict, or a transformers config) with attribute access."""
    return SimpleNamespace(**model_config) if isinstance(model_config, dict) else model_config


def activation_bytes_per_token(model_config, checkpointing: bool = False, dtype_bytes: int = 2) -> int:
    """Activation memory a token costs in training (calibrated on Llama-3.1-8B: ~5 MB without recomputation;
    with it, each layer's input plus one layer's activations at a time)."""
    hidden = model_config.hidden_size
    inter = getattr(model_config, "intermediate_size", 4 * hidden)
    one_layer = (9 * hidden + 3 * inter) * dtype_bytes
    if checkpointing:
        return model_config.num_hidden_layers * hidden * dtype_bytes + one_layer
    return model_config.num_hidden_layers * one_layer


def lora_state_bytes(model_config, rank: int) -> int:
    """GPU memory of LoRA weights, gradients and fp32 Adam state at this rank (an upper bound, all 7 modules)."""
    hidden = model_config.hidden_size
    inter = getattr(model_config, "intermediate_size", 4 * hidden)
    params = rank * model_config.num_hidden_layers * (10 * hidden + 3 * inter)
    return params * 18  # fp32 weight, gradient and two moments + allocator slack


def linear_weight_count(model_config) -> int:
    """Weights of a decoder-only model's linear layers (attention with grouped keys, gated MLP), embeddings aside."""
    hidden, layers = model_config.hidden_size, model_config.num_hidden_layers
    inter = getattr(model_config, "intermediate_size", 4 * hidden)
    heads = model_config.num_attention_heads
    head_dim = getattr(model_config, "head_dim", None) or hidden // heads
    kv_width = (getattr(model_config, "num_key_value_heads", None) or heads) * head_dim
    return layers * (2 * hidden * hidden + 2 * hidden * kv_width + 3 * hidden * inter)


def bf16_weight_bytes(model_config) -> int:
    """Bytes of a decoder-only model's weights in 16 bits (embeddings, attention with grouped keys, gated MLP)."""
    embeddings = model_config.vocab_size * model_config.hidden_size * (1 if getattr(model_config, "tie_word_embeddings", False) else 2)
    return 2 * (embeddings + linear_weight_count(model_config))


def four_bit_extra_bytes(model_config) -> int:
    """What dequantizing a 4-bit base adds: 2 bytes a linear weight in place of NF4's ~0.5 (an estimate of what
    modeling.dequantize_bytes measures on the loaded model)."""
    return int(linear_weight_count(model_config) * 1.5)


def dequantized_base_fits(model_config: dict | None, rank: int, usable: int) -> bool:
    """Whether a GPU that lets this process hold `usable` bytes has room for the base model dequantized (16-bit
    weights), LoRA state and DEQUANTIZED_MIN_TOKENS tokens of activations: the test engine=auto makes before
    loading. Without the model's config, a GPU of 40 GiB or more (an 8B model's need) counts as roomy."""
    if model_config is None:
        return usable >= 40 * GIB
    config = as_shape(model_config)
    need = (bf16_weight_bytes(config) + activation_bytes_per_token(config) * DEQUANTIZED_MIN_TOKENS
            + lora_state_bytes(config, rank) + GIB)
    return need <= 0.9 * usable


def room_for_dequantized(config: dict, machine: Machine, model_config: dict | None) -> bool:
    """Whether the first GPU has room for this model with its base dequantized (dequantized_base_fits), as
    engine=auto asks before anything is loaded; True without a GPU (where nothing is quantized)."""
    if not machine.gpus:
        return True
    return config["dequantize_base"] != "off" and dequantized_base_fits(model_config, config.get("r", 32), machine.gpus[0].memory)


class MemoryPlan(NamedTuple):
    """How a train run uses the GPU's memory."""

    checkpointing: bool  # recompute activations in the backward pass
    chunk_tokens: int  # most padded tokens in one forward pass (0 = no limit)
    dequantize: bool  # keep the 4-bit base's weights dequantized (dequantize_base)
    note: str  # the figures behind it, one line


def plan_memory(setting: str, model_config, rank: int, longest_row: int, room: tuple[int, int] | None, *, dequantize: str = "off",
                dequantize_bytes: int = 0, activation_scale: float = 1.0) -> MemoryPlan:
    """Recompute activations only when a chunk of the longest row (and at least MIN_CHUNK_TOKENS) would not fit in
    memory without it; keep a dequantized copy of a 4-bit base (`dequantize_bytes` more) when `dequantize` is on, or
    auto and chunks of DEQUANTIZED_MIN_TOKENS (and the longest row) still fit without recomputation next to it.
    `room` is (bytes this process can still take, the most it may hold) on the first GPU, None on the CPU.
    `activation_scale` corrects the per-token estimate for a way of running that keeps more (EAGER_HF_ACTIVATIONS)."""
    if room is None:
        return MemoryPlan(setting == "on", 0, False, "no GPU: no memory limit")
    model_config = as_shape(model_config)
    free, usable = room
    budget = max(int(free - GIB - 0.1 * usable - lora_state_bytes(model_config, rank)), 0)
    per_token = int(activation_bytes_per_token(model_config, False) * activation_scale)
    copy = dequantize_bytes > 0 and (
        dequantize == "on"
        or (dequantize == "auto" and (budget - dequantize_bytes) // per_token >= max(longest_row, DEQUANTIZED_MIN_TOKENS))
    )
    if copy:
        budget = max(budget - dequantize_bytes, 0)
    without = budget // per_token
    checkpointing = setting == "on" or (setting == "auto" and without < max(longest_row, MIN_CHUNK_TOKENS))
    chunk = budget // int(activation_bytes_per_token(model_config, checkpointing) * activation_scale)
    beside = f" next to a dequantized base (+{dequantize_bytes / GIB:.1f} GiB)" if copy else ""
    note = (f"{budget / GIB:.1f} GiB for activations{beside}: {without} tokens a chunk without recomputation, "
            f"longest row {longest_row}")
    return MemoryPlan(checkpointing, max(int(chunk), longest_row), copy, note)


def activation_scale(engine: str, compiled: bool) -> float:
    """The per-token activation estimate's correction for how the layers run."""
    return EAGER_HF_ACTIVATIONS if engine == "hf" and not compiled else 1.0


def loaded_bytes(model_config, quantized: bool) -> int:
    """GPU memory the loaded base takes: 16-bit weights, or NF4 linear layers (~0.5 byte a weight) beside 16-bit embeddings."""
    return bf16_weight_bytes(model_config) - (four_bit_extra_bytes(model_config) if quantized else 0)


def estimate_memory(config: dict, machine: Machine, model_config: dict | None, engine: str, compiled: bool, packed: bool) -> MemoryPlan:
    """plan_memory before anything loaded: the first GPU's free memory less the base's weights (from config.json),
    the longest row taken as max_seq_length (+1 for the label); the train stage settles it on the measured room."""
    if not machine.gpus:
        return plan_memory(config["gradient_checkpointing"], None, 0, 0, None)
    shape = as_shape(model_config) if model_config is not None else None
    if shape is None:
        return MemoryPlan(config["gradient_checkpointing"] == "on", 0, False, "model config.json unknown: decided after loading")
    quantized = bool(config["load_in_4bit"])
    gpu = machine.gpus[0]
    room = (gpu.free - loaded_bytes(shape, quantized), gpu.memory)
    multiple = 1 if packed else pad_multiple(engine)
    longest = -(-(config["max_seq_length"] + (0 if config["completion_only"] else 1)) // multiple) * multiple
    return plan_memory(config["gradient_checkpointing"], shape, config["r"], longest, room, dequantize=config["dequantize_base"],
                       dequantize_bytes=four_bit_extra_bytes(shape) if quantized else 0, activation_scale=activation_scale(engine, compiled))


def memory_decisions(memory: MemoryPlan, estimated: bool) -> dict:
    """The three memory decisions of a MemoryPlan, each with its reason (`estimated` before the model loaded)."""
    tag = "estimated before loading; " if estimated else ""
    return dict(
        checkpointing=Decision(memory.checkpointing, tag + memory.note),
        chunk_tokens=Decision(memory.chunk_tokens, "no limit on the CPU" if not memory.chunk_tokens else "tokens a forward pass fits"),
        dequantize_base=Decision(memory.dequantize, "a dequantized copy fits without recomputation" if memory.dequantize else
                                 "nothing 4-bit" if "no GPU" in memory.note else "no room for a dequantized copy, or dequantize_base=off"),
    )


def settle_memory(plan: Plan, memory: MemoryPlan) -> Plan:
    """The plan with its memory decisions as plan_memory made them on the room measured after loading (CUDA graphs
    are dropped where recomputation turned out to be needed)."""
    settled = dataclasses.replace(plan, **memory_decisions(memory, estimated=False))
    if plan.cuda_graphs is not None and plan.cuda_graphs.value and memory.checkpointing:
        settled = dataclasses.replace(settled, cuda_graphs=Decision(False, "gradient checkpointing (settled after loading)"))
        if plan.compile.reason == GRAPHED_UNCOMPILED:  # left uncompiled for the graphs, which are gone
            settled = dataclasses.replace(settled, compile=Decision(True, "engine hf on a GPU Triton compiles for (no CUDA graphs: recomputation)"))
    return settled


def dequantize_for_scoring(setting: str, gpu: bool, free: int, extra: int) -> bool:
    """Whether to dequantize a 4-bit base (`extra` bytes more) before scoring: on, or auto where the copy fits next
    to SCORING_RESERVE in `free` bytes."""
    return bool(extra) and (setting == "on" or (setting == "auto" and gpu and free - SCORING_RESERVE >= extra))


def estimate_scoring_dequantize(config: dict, machine: Machine, model_config: dict | None, engine: str) -> Decision:
    """dequantize_for_scoring before anything loaded (the scoring stage decides on the measured room)."""
    if not (config["load_in_4bit"] and machine.gpus):
        return Decision(False, "nothing 4-bit")
    if config["dequantize_base"] != "auto" or model_config is None:
        value = config["dequantize_base"] == "on"
        return Decision(value, f"dequantize_base={config['dequantize_base']}" if model_config is not None or value else "decided at scoring")
    shape = as_shape(model_config)
    extra = four_bit_extra_bytes(shape)
    free = machine.gpus[0].free - loaded_bytes(shape, True)
    fits = dequantize_for_scoring("auto", True, free, extra)
    return Decision(fits, f"estimated: a copy (+{extra / GIB:.1f} GiB) {'fits' if fits else 'does not fit'} beside scoring's {SCORING_RESERVE // GIB} GiB")
