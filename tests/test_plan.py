"""The plan (kernels/runtime/plan.py): what each named GPU gets, decided without running anything; the built
kernel's order (settings, recipe, runtime, entry point); and the size of kit's and the kernels' functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from runtime.plan import PROFILES, PlanError, make_plan
from kit.workspace.kernel_config import make_config, script_settings

REPO = Path(__file__).resolve().parents[1]
# Llama-3.1-8B's config.json (the default model's shape)
LLAMA_8B = {"vocab_size": 128256, "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
            "num_attention_heads": 32, "num_key_value_heads": 8, "tie_word_embeddings": False}


def config(kernel: str = "train", **settings) -> dict:
    return script_settings(make_config(kernel, {"competition": "tiny-comp", **settings}))


def values(plan) -> dict:
    return {name: d.value for name, d in plan.decisions().items()}


def test_t4s_train_in_fp16_with_unsloth_unpacked_and_recompute_activations():
    got = values(make_plan(config(), PROFILES["t4x2"], "train", LLAMA_8B))
    assert got["dtype"] == "fp16" and got["engine"] == "unsloth"  # no bf16; no room for a dequantized 8B base
    assert got["packing"] is False and got["attention"] == "padded sdpa"  # no flash attention on compute capability 7.5
    assert got["load_in_4bit"] is True and got["dequantize_base"] is False and got["checkpointing"] is True
    assert got["pad_multiple"] == 64 and got["scoring_gpus"] == 2 and got["scoring_engines"] == ("unsloth", "hf")
    assert got["train_processes"] == 1  # the default: one trains, both GPUs score


def test_h100_trains_with_transformers_compiled_packed_and_a_dequantized_base():
    got = values(make_plan(config(), PROFILES["h100"], "train", LLAMA_8B))
    assert got["dtype"] == "bf16" and got["engine"] == "hf" and got["compile"] is True
    assert got["packing"] is True and got["attention"] == "flash varlen" and got["pad_multiple"] == 1
    assert got["dequantize_base"] is True and got["checkpointing"] is False and got["chunk_tokens"] >= 4096
    assert got["fuse_projections"] is True and got["score_tokens"] == 16384


@pytest.mark.parametrize("name", ["l4", "a100"])
def test_mid_sized_gpus_keep_the_8b_base_in_4bit_with_unsloth(name):
    got = values(make_plan(config(), PROFILES[name], "train", LLAMA_8B))
    assert got["dtype"] == "bf16" and got["engine"] == "unsloth" and got["packing"] is False and got["dequantize_base"] is False


def test_the_cpu_trains_in_fp32_with_transformers_and_no_memory_limit():
    plan = make_plan(config(load_in_4bit=True, dtype="bf16"), PROFILES["cpu"], "train")
    got = values(plan)
    assert got["dtype"] == "fp32" and got["engine"] == "hf" and got["load_in_4bit"] is False and got["chunk_tokens"] == 0
    assert plan.warnings() == ["dtype=bf16 on the CPU is slow and unsupported by some ops; using fp32"]
    with pytest.raises(PlanError, match="engine=unsloth needs a CUDA GPU"):
        make_plan(config(engine="unsloth"), PROFILES["cpu"], "train")


def test_the_infer_kernel_scores_with_unsloth_on_every_gpu_and_plans_no_training():
    plan = make_plan(config("infer"), PROFILES["t4x2"], "infer", LLAMA_8B)
    assert plan.engine.value == "unsloth" and plan.scoring_gpus.value == 2 and plan.checkpointing is None
    assert "checkpointing" not in plan.table() and plan.table().startswith("plan (infer kernel) on 2 x Tesla T4")


def test_the_plan_says_how_many_processes_train_and_why():
    """train_processes: the count, where they run, how each step's rows are shared, and a warning for a setting the
    machine cannot honour as written."""
    default = make_plan(config(), PROFILES["t4x2"], "train", LLAMA_8B).train_processes
    assert default.value == 1 and not default.warning
    assert "one process trains on the first GPU and all 2 score; train_processes=0 trains on all 2" in default.reason
    both = make_plan(config(train_processes=0, batch_size=8), PROFILES["t4x2"], "train", LLAMA_8B)
    assert both.train_processes.value == 2 and both.warnings() == []
    assert both.train_processes.reason.startswith("train_processes=0 (one per GPU): 2 GPUs; each micro-batch's 8 rows split between them (4 each)")
    assert "the same updates as one process" in both.train_processes.reason and "rank 0 writes the outputs" in both.train_processes.reason
    four = make_plan(config(train_processes=0, batch_size=2), PROFILES["l4x4"], "train", LLAMA_8B)
    assert four.train_processes.value == 4 and "(0-1 each)" in four.train_processes.reason
    assert four.warnings() == ["batch_size=2 leaves some of the 4 training processes without rows in each micro-batch; raise batch_size to 4 or more"]
    two_of_four = make_plan(config(train_processes=2), PROFILES["l4x4"], "train", LLAMA_8B).train_processes
    assert two_of_four.value == 2 and "2 GPUs of 4 (all score)" in two_of_four.reason
    more = make_plan(config(train_processes=3), PROFILES["t4x2"], "train", LLAMA_8B)
    assert more.train_processes.value == 2 and more.warnings() == ["train_processes=3 but this machine has 2 GPU(s); training in 2, one per GPU"]
    cpu = make_plan(config(train_processes=2), PROFILES["cpu"], "train").train_processes
    assert cpu.value == 2 and cpu.reason.startswith("train_processes=2 on the CPU: 2 CPU processes (gloo) sharing the cores")
    assert make_plan(config(), PROFILES["h100"], "train", LLAMA_8B).train_processes.reason == "train_processes=1: one process, one GPU"


def test_the_built_kernel_reads_settings_then_recipe_then_runtime_then_runs(tmp_path):
    from kit.build.script import build_kernel

    for kernel in ("train", "infer"):
        script = build_kernel(kernel, make_config(kernel, {"competition": "tiny-comp"}), tmp_path / kernel, REPO / "kernels").script
        text = script.read_text()
        tree = ast.parse(text)
        top = [node for node in tree.body if not isinstance(node, ast.ImportFrom)]
        assert isinstance(top[0], ast.Expr) and isinstance(top[1], ast.Assign) and ast.unparse(top[1].targets[0]) == "CONFIG"
        assert isinstance(top[2], ast.FunctionDef) and top[2].name == "main"  # the recipe, before any helper
        assert isinstance(top[-1], ast.If) and "main(CONFIG)" in ast.unparse(top[-1])
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        assert not [name for name in imported if name.split(".")[0] in ("kit", "kernels")]  # self-contained
        assert text.index("the recipe (kernels/") < text.index("inlined from kernels/runtime/plan.py") < text.index("-- run it --")


def test_no_function_in_kit_or_the_kernels_is_longer_than_80_lines():
    long = []
    for folder in ("kit", "kernels"):
        for path in sorted((REPO / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 80:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert long == []


@pytest.mark.parametrize("template", ["train.py", "infer.py"])
def test_each_kernels_main_is_a_recipe_that_fits_on_a_screen(template):
    """The template's main calls the stages in order; a person reads it in one look (issue 15: under ~60 lines)."""
    tree = ast.parse((REPO / "kernels" / template).read_text(encoding="utf-8"))
    main = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main")
    assert main.end_lineno - main.lineno + 1 <= 60


def test_a_warm_up_longer_than_the_run_is_a_warning_of_the_plan():
    short = make_plan(config(max_steps=4, warmup_steps=10, learning_rate=2e-4), PROFILES["cpu"], "train")
    assert short.warnings() == ["warm-up (10 steps) is not shorter than the run (4 steps): the learning rate never reaches "
                                "learning_rate=0.0002; set warmup_steps below 4 (e.g. warmup_steps=0)"]
    assert "  warmup " in short.table() and "warmup_steps=10 of the run's 4 steps" in short.table()
    # From train_rows when max_steps is not set: 128 rows, batch 8 = 16 steps, longer than the default warm-up.
    fine = make_plan(config(train_rows=128, warmup_steps=10), PROFILES["cpu"], "train")
    assert fine.warnings() == [] and fine.warmup.reason == "warmup_steps=10 of the run's 16 steps"
    assert make_plan(config(train_rows=0), PROFILES["cpu"], "train").warmup.warning == ""  # the length is not known yet
    assert make_plan(config("infer"), PROFILES["cpu"], "infer").warmup is None
