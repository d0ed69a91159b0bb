"""The kernels' runtime on the CPU with a tiny in-process Llama: prompts, splits, labels, scoring, steps, outputs."""

from __future__ import annotations

import ast
import csv
import itertools
import json
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from runtime import data, modeling, plan, prompts, scoring, training  # noqa: E402
from runtime.fusion import fuse_projections  # noqa: E402
from runtime.modeling import attach_lora  # noqa: E402
from runtime import labels as labels_module  # noqa: E402
from runtime.labels import choose_label_tokens  # noqa: E402
from runtime.task import Rule, Task, fit_rule  # noqa: E402

RUNTIME = Path(__file__).resolve().parents[1] / "kernels" / "runtime"
HEAVY = {"torch", "transformers", "peft", "trl", "unsloth", "bitsandbytes", "pandas", "numpy"}


# ------------------------------------------------------------------------------------------------ tiny model


def make_tokenizer():
    """A byte-level BPE tokenizer trained in-process on a few words, with BOS/EOS/PAD."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = ["Question: what is 12 + 30? Given answer: 42. Solution: x = 12 + 30 print(x) True False correct"] * 50
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>", "</s>", "<pad>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


def make_model(vocab_size: int, hidden_size: int = 32):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=2 * hidden_size, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=2048, tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer()


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory, tokenizer):
    folder = tmp_path_factory.mktemp("tiny-llama")
    make_model(len(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def lora_config(**overrides):
    config = {"r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "lora_bias": "none", "use_rslora": False, "seed": 0,
              "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}
    return {**config, **overrides}


# ------------------------------------------------------------------------------------------------ rules


def test_runtime_modules_follow_the_inlining_rules():
    """Only `from runtime.X import` between modules, no kit, heavy imports inside functions, unique names."""
    seen: dict[str, str] = {}
    for path in sorted(RUNTIME.glob("*.py")):
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
                assert not set(names) & (HEAVY | {"kit", "kernels"}), f"{path.name}: top-level import {names}"
            elif isinstance(node, ast.ImportFrom):
                module = node.module or ""
                assert module.split(".")[0] not in HEAVY | {"kit"}, f"{path.name}: top-level import from {module}"
                if module.split(".")[0] in ("kernels", "runtime"):
                    assert module.startswith("runtime.") and node.lineno == node.end_lineno, f"{path.name}: {module}"
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)) or (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)):
                name = node.name if not isinstance(node, ast.Assign) else node.targets[0].id
                if name != "main":  # each kernel inlines one main
                    assert name not in seen, f"{name} defined in {seen.get(name)} and {path.name}"
                    seen[name] = path.name


# ------------------------------------------------------------------------------------------------ prompts and encoding


def row(question: str, answer: str, solution: str) -> dict:
    return {"question": question, "answer": answer, "solution": solution}


def test_every_template_renders_the_row_and_ends_where_the_label_goes():
    for template in prompts.PROMPTS.values():
        text = template.render(row("What is 2+3?", "5", "x = 2 + 3\n5"))
        assert "What is 2+3?" in text and "x = 2 + 3\n5" in text
        assert text.index("What is 2+3?") < text.index("x = 2 + 3")
        assert "{" not in text.replace("{}", "")  # every field filled
        assert not text.endswith(" ")  # the label word brings its own space
        assert template.fields() == ("question", "answer", "solution") and template.shorten == "solution"
    assert prompts.get_prompt("seed000").render(row("q", "a", "s")).endswith("### Grading ('True' or 'False'):")
    assert prompts.get_prompt("binarybeats").render(row("q", "a", "s")).endswith("### Output:\n")
    assert prompts.get_prompt("midterm").render(row("q", "a", "s")).endswith("Answer is correct (True/False only):")
    assert "Given answer: a" in prompts.get_prompt("grader").render(row("q", "a", "s"))
    with pytest.raises(ValueError, match="known prompts: binarybeats, grader, midterm, seed000"):
        prompts.get_prompt("nope")


def test_encoding_matches_the_rendered_prompt_and_cuts_long_solutions_in_the_middle(tokenizer):
    template = prompts.get_prompt("grader")
    [ids] = data.encode_prompts(tokenizer, template, [row("what is 12 + 30?", "42", "x = 12 + 30")], 512)
    assert tokenizer.decode(ids, skip_special_tokens=True) == template.render(row("what is 12 + 30?", "42", "x = 12 + 30"))
    long_solution = "START " + "12 + 30 " * 300 + " END"
    [cut] = data.encode_prompts(tokenizer, template, [row("q", "42", long_solution)], 128)
    text = tokenizer.decode(cut, skip_special_tokens=True)
    assert len(cut) == 127  # room for the label
    assert "START" in text and "END" in text and text.endswith("Answer True or False:")


def test_a_task_prompt_reads_any_columns_and_cuts_its_shorten_field(tokenizer):
    template = prompts.task_template("Essay: {essay}\nTopic: {topic}\nScore (1-6):", "essay")
    assert template.fields() == ("essay", "topic") and template.label_word("4") == " 4"
    long_essay = "BEGIN " + "12 + 30 " * 300 + " FINISH"
    [ids] = data.encode_prompts(tokenizer, template, [{"essay": long_essay, "topic": "correct"}], 96)
    text = tokenizer.decode(ids, skip_special_tokens=True)
    assert len(ids) == 95 and text.startswith("Essay: BEGIN") and "FINISH" in text and text.endswith("Topic: correct\nScore (1-6):")
    # no shortened field: the prompt is whole, or its end where it is too long
    whole = prompts.task_template("A: {a}\nB: {b}\nWinner:", "")
    [ids] = data.encode_prompts(tokenizer, whole, [{"a": "x " * 200, "b": "y"}], 32)
    assert len(ids) == 31 and tokenizer.decode(ids, skip_special_tokens=True).endswith("B: y\nWinner:")


def test_label_tokens_are_the_first_token_of_each_label_word_after_the_whole_prompt(tokenizer):
    template = prompts.get_prompt("grader")
    rows = [row("what is 12 + 30?", "42", "x = 12 + 30")]
    labels = choose_label_tokens(tokenizer, template, ("True", "False"), rows)
    assert labels.words == (" True", " False") and not labels.coded and labels.template is template
    prompt = template.render(rows[0])
    for word, token in zip(labels.words, labels.token_ids):
        split = tokenizer(prompt + word, add_special_tokens=False).input_ids
        assert split[: len(split) - len(tokenizer(word, add_special_tokens=False).input_ids)] == tokenizer(prompt, add_special_tokens=False).input_ids
        assert split[len(tokenizer(prompt, add_special_tokens=False).input_ids)] == token
    assert labels.token_ids[0] == tokenizer(" True", add_special_tokens=False).input_ids[0]  # what the kernels always used


def test_class_names_that_share_their_first_token_get_codes_listed_in_the_prompt(tokenizer):
    template = prompts.task_template("A: {a}\nB: {b}\nWhich is better? Answer:", "")
    classes = ("winner_model_a", "winner_model_b", "winner_tie")
    labels = choose_label_tokens(tokenizer, template, classes, [{"a": "12", "b": "30"}])
    assert labels.coded and len(set(labels.token_ids)) == 3
    assert [w.strip() for w in labels.words] == ["A", "B", "C"]
    text = labels.template.render({"a": "12", "b": "30"})
    assert "Labels: A = winner_model_a, B = winner_model_b, C = winner_tie\nWhich is better? Answer:" in text
    assert text.endswith("Which is better? Answer:")  # the label still goes at the end
    for word, token in zip(labels.words, labels.token_ids):
        whole = tokenizer(text + word, add_special_tokens=False).input_ids
        assert whole[len(tokenizer(text, add_special_tokens=False).input_ids)] == token


def test_numbers_whose_space_is_split_off_follow_the_prompt_without_it(tokenizer):
    # this tokenizer (as SmolLM2's does with digits) splits " 4" into " " and "4": every class would start with " "
    assert tokenizer(" 4", add_special_tokens=False).input_ids[0] == tokenizer(" 5", add_special_tokens=False).input_ids[0]
    template = prompts.task_template("Review: {text}\nScore (1 to 6):", "text")
    labels = choose_label_tokens(tokenizer, template, ("1", "2", "3", "4", "5", "6"), [{"text": "It works."}])
    assert labels.words == ("1", "2", "3", "4", "5", "6") and not labels.coded and labels.template is template
    prompt = template.render({"text": "It works."})
    assert [tokenizer(prompt + w, add_special_tokens=False).input_ids[-1] for w in labels.words] == list(labels.token_ids)


def test_a_label_word_that_merges_with_the_end_of_the_prompt_is_not_used(tokenizer):
    # "Answer: T" + "rue" splits as "Answer: True" does: the word changes the prompt's own last token
    assert tokenizer("Answer: T", add_special_tokens=False).input_ids[-1] not in tokenizer("Answer: True", add_special_tokens=False).input_ids
    assert labels_module.split_after(tokenizer, "Answer: T", "rue") is None
    assert labels_module.split_after(tokenizer, "Answer:", " True") == (tokenizer(" True", add_special_tokens=False).input_ids[0], 2)
    template = prompts.task_template("Answer: {x}", "")
    labels = choose_label_tokens(tokenizer, template, ("rue", "alse"), [{"x": "T"}])
    assert labels.coded  # no token of their own: codes instead


# ------------------------------------------------------------------------------------------------ splits


LABELS = [i % 5 < 2 for i in range(1000)]  # 40% True, like the competition


def test_validation_rows_are_the_same_for_every_run_and_never_trained_on():
    runs = [
        data.split_rows(LABELS, val_rows=100, val_seed=0, train_rows=rows, seed=seed, balance=balance, offset=offset)
        for seed in (1, 2, 3407) for rows in (0, 50, 300) for balance in (True, False) for offset in (0, 100)
    ]
    assert all(r.val == runs[0].val for r in runs)
    assert len(runs[0].val) == 100
    for r in runs:
        assert not set(r.val) & set(r.train)
    other = data.split_rows(LABELS, val_rows=100, val_seed=1, train_rows=0, seed=1, balance=False)
    assert other.val != runs[0].val
    smaller = data.split_rows(LABELS, val_rows=40, val_seed=0, train_rows=0, seed=1, balance=False)
    assert set(smaller.val) < set(runs[0].val)


def test_balanced_sampling_is_half_true_in_every_window_and_phases_see_fresh_rows():
    first = data.split_rows(LABELS, val_rows=100, val_seed=0, train_rows=200, seed=7, balance=True)
    assert sum(LABELS[i] for i in first.train) == 100
    second = data.split_rows(LABELS, val_rows=100, val_seed=0, train_rows=200, seed=7, balance=True, offset=first.next_offset)
    assert sum(LABELS[i] for i in second.train) == 100 and first.next_offset == 200
    assert not set(first.train) & set(second.train)
    everything = data.split_rows(LABELS, val_rows=100, val_seed=0, train_rows=0, seed=7, balance=True)
    # 360 True rows outside validation at most: the balanced pool has as many False, and no more
    assert sum(LABELS[i] for i in everything.train) * 2 == len(everything.train)
    unbalanced = data.split_rows(LABELS, val_rows=100, val_seed=0, train_rows=0, seed=7, balance=False)
    assert len(unbalanced.train) == 900


def test_parquet_files_are_read_as_text_and_their_classes_read_from_train(tmp_path, monkeypatch):
    import pandas as pd

    from runtime.scoring import Scores, predict_test_set

    folder = tmp_path / "input" / "competitions" / "essays"
    folder.mkdir(parents=True)
    pd.DataFrame({"id": [10, 11, 12, 13, 14, 15], "text": ["good", "bad", None, "fine", "great", "poor"],
                  "score": [3, 1, 2, 2, 3, 1]}).to_parquet(folder / "train.parquet")
    pd.DataFrame({"id": [20, 21], "text": ["ok", "nice"]}).to_parquet(folder / "test.parquet")
    monkeypatch.setenv("KIT_KAGGLE_ROOT", str(tmp_path))
    task = Task.from_dict({"preset": "ordinal", "train": "train.parquet", "test": "test.parquet", "id": "id", "prompt": "{text}\nScore:",
                           "target": {"column": "score"}, "submission": {"columns": ["id", "score"], "output": "number"}})
    config = {"competition": "essays", "val_rows": 2, "val_seed": 0, "train_rows": 0, "seed": 0, "balance": False, "data_offset": 0,
              "max_seq_length": 64}
    rows = data.training_rows(config, data.load_task({"task": task.to_dict()}))
    assert rows.task.classes() == ("1", "2", "3") and [rows.task.classes()[y] for y in rows.labels] == ["3", "1", "2", "2", "3", "1"]
    assert rows.table["text"].tolist()[2] == "" and rows.table["id"].tolist()[0] == "10"  # text, a missing cell blank
    out = tmp_path / "out"
    out.mkdir()
    score = lambda seqs, labels=None: Scores([[0.1, 0.2, 0.7]] * len(seqs), [None] * len(seqs))  # noqa: E731
    from runtime.prompts import task_template

    predict_test_set(folder, make_tokenizer(), task_template(task.prompt, task.shorten), rows.task, config, score, out, Rule("argmax"))
    assert (out / "submission.csv").read_text() == "id,score\n20,3\n21,3\n"


# ------------------------------------------------------------------------------------------------ batches and labels


def test_completion_only_puts_the_loss_on_the_label_token_alone():
    sequences, label_ids = [[5, 6, 7], [8, 9]], [100, 101]
    batch = data.collate(sequences, 0, label_ids=label_ids)
    assert batch.input_ids.tolist() == [[5, 6, 7], [8, 9, 0]]
    assert batch.label_index.tolist() == [2, 4]  # the last prompt token of each row, flat
    assert batch.predict_index.tolist() == [2, 4] and batch.targets.tolist() == [100, 101]
    full = data.collate(sequences, 0, label_ids=label_ids, completion_only=False)
    assert full.input_ids.tolist() == [[5, 6, 7, 100], [8, 9, 101, 0]]
    assert full.targets.tolist() == [6, 7, 100, 9, 101]
    assert full.predict_index.tolist() == [0, 1, 2, 4, 5]
    packed = data.collate(sequences, 0, label_ids=label_ids, packed=True)
    assert packed.input_ids.tolist() == [[5, 6, 7, 8, 9]] and packed.position_ids.tolist() == [[0, 1, 2, 0, 1]]
    assert packed.label_index.tolist() == [2, 4] and packed.useful_tokens == 5


def test_length_grouping_cuts_padding_and_keeps_every_row_once():
    import random

    lengths = [random.Random(i).randint(10, 500) for i in range(512)]
    grouped = data.training_order(lengths, 8, True, seed=1)
    plain = data.training_order(lengths, 8, False, seed=1)
    assert sorted(r for b in grouped for r in b) == list(range(512))
    padding = lambda order: sum(len(b) * max(lengths[r] for r in b) - sum(lengths[r] for r in b) for b in order)  # noqa: E731
    assert padding(grouped) * 5 < padding(plain)


def test_packed_and_padded_batches_give_the_same_loss(tokenizer):
    model = make_model(len(tokenizer))
    sequences = [[3, 4, 5, 6, 7], [8, 9], [10, 11, 12]]
    losses = [
        training.label_loss(model, data.collate(sequences, 0, label_ids=[20, 21, 22], packed=packed)).item()
        for packed in (False, True)
    ]
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)


def lora_model(tokenizer, seed: int = 1):
    """The tiny Llama with LoRA on every projection, its adapters random (peft starts B at zero: no update at all)."""
    model = attach_lora(make_model(len(tokenizer)), lora_config(), engine="hf", gradient_checkpointing=False)
    torch.manual_seed(seed)
    for p in model.parameters():
        if p.requires_grad:
            torch.nn.init.normal_(p, std=0.1)
    return model


def loss_and_grads(model, batch):
    model.zero_grad(set_to_none=True)
    loss = training.label_loss(model, batch)
    loss.backward()
    return loss.item(), torch.cat([p.grad.flatten() for p in model.parameters() if p.requires_grad])


def test_packed_attention_trains_and_scores_rows_as_if_each_were_alone(tokenizer):
    from runtime.attention import use_packed_attention

    padded_model, packed_model = lora_model(tokenizer), lora_model(tokenizer)
    assert use_packed_attention(packed_model, flash=plan.PROFILES["cpu"].flash_attention()) == "attention row by row"  # flash attention needs a CUDA GPU
    sequences, labels = [[3, 4, 5, 6, 7], [8, 9], [10, 11, 12, 13, 14, 15, 16]], [20, 21, 22]
    padded = loss_and_grads(padded_model, data.collate(sequences, 0, label_ids=labels))
    packed = loss_and_grads(packed_model, data.collate(sequences, 0, label_ids=labels, packed=True))
    assert packed[0] == pytest.approx(padded[0], rel=1e-6) and torch.allclose(packed[1], padded[1], atol=1e-6)
    # the packed model still takes padded batches (plain causal attention)
    assert loss_and_grads(packed_model, data.collate(sequences, 0, label_ids=labels))[0] == pytest.approx(padded[0], rel=1e-6)
    plain = scoring.score_sequences(padded_model, sequences, [20, 21], 0, batch_size=2).prob_true
    assert scoring.score_sequences(packed_model, sequences, [20, 21], 0, batch_size=2, max_tokens=10, packed=True).prob_true == pytest.approx(plain, abs=1e-6)


def test_fused_projections_share_the_weights_and_give_the_same_loss_gradients_and_merged_scores(tokenizer):
    from runtime.modeling import merge_adapters

    plain, fused = lora_model(tokenizer), lora_model(tokenizer)
    layers = fused.get_base_model().model.layers
    assert fuse_projections(layers) == 4 and fuse_projections(layers) == 0  # 2 layers x (q/k/v, gate/up), once
    attention = layers[0].self_attn
    assert attention.k_proj.base_layer.weight.data_ptr() == attention._kit_qkv_weight[attention.q_proj.out_features :].data_ptr()
    sequences, labels = [[3, 4, 5, 6, 7], [8, 9], [10, 11, 12, 13, 14, 15, 16]], [20, 21, 22]
    batch = data.collate(sequences, 0, label_ids=labels)
    (loss_a, grads_a), (loss_b, grads_b) = loss_and_grads(plain, batch), loss_and_grads(fused, batch)
    assert loss_b == pytest.approx(loss_a, rel=1e-6) and torch.allclose(grads_b, grads_a, atol=1e-6)
    assert merge_adapters(plain) == merge_adapters(fused) == 14  # merging writes into the shared matrices
    assert scoring.score_sequences(fused, sequences, [20, 21], 0, batch_size=2).prob_true == pytest.approx(
        scoring.score_sequences(plain, sequences, [20, 21], 0, batch_size=2).prob_true, abs=1e-6)


def test_projections_stay_apart_where_a_base_is_not_a_plain_linear_layer(tokenizer):
    class Quantized(torch.nn.Linear):  # stands for a 4-bit layer: not a plain nn.Linear
        pass

    model = lora_model(tokenizer)
    for layer in model.get_base_model().model.layers:
        old = layer.self_attn.k_proj.base_layer
        layer.self_attn.k_proj.base_layer = Quantized(old.in_features, old.out_features, bias=False)
    assert fuse_projections(model.get_base_model().model.layers) == 2  # gate/up only


def test_packing_is_automatic_only_with_flash_attention_and_never_with_unsloth():
    cpu, t4, h100 = plan.PROFILES["cpu"], plan.PROFILES["t4x2"], plan.PROFILES["h100"]
    assert plan.choose_packing("auto", "hf", cpu).value is False and plan.choose_packing("auto", "hf", t4).value is False
    assert plan.choose_packing("auto", "hf", h100).value is True and plan.choose_packing("auto", "unsloth", h100).value is False
    assert plan.choose_packing("on", "hf", cpu).value is True and plan.choose_packing("on", "unsloth", h100).value is False
    assert plan.choose_packing("off", "hf", h100).value is False


def test_split_by_tokens_counts_a_packed_chunk_by_its_rows_own_tokens():
    lengths = [10, 100, 30, 60]
    assert data.split_by_tokens([0, 1, 2, 3], lengths, 200, 8, packed=True) == [[1, 3, 2, 0]]  # 200 tokens; padded: 4 x 104
    assert data.split_by_tokens([0, 1, 2, 3], lengths, 200, 8) == [[1], [3, 2, 0]]
    assert data.split_by_tokens([0, 1, 2, 3], lengths, 150, 1, packed=True) == [[1], [3, 2, 0]]


# ------------------------------------------------------------------------------------------------ scoring


def test_label_token_scoring_equals_a_direct_forward_pass(tokenizer):
    model = make_model(len(tokenizer))
    sequences = [[1, 5, 6, 7, 8, 9, 10], [1, 11, 12], [1, 13, 14, 15, 16]]
    true_id, false_id = 40, 41
    scores = scoring.score_sequences(model, sequences, [true_id, false_id], 2, batch_size=2, labels=[0, 1, 0])
    for seq, p, nll, label in zip(sequences, scores.prob_true, scores.nll, [True, False, True]):
        with torch.no_grad():
            logits = model(torch.tensor([seq])).logits[0, -1]
        pair = torch.softmax(torch.stack([logits[true_id], logits[false_id]]), 0)
        assert p == pytest.approx(pair[0].item(), abs=1e-5)
        assert nll == pytest.approx(-torch.log_softmax(logits, 0)[true_id if label else false_id].item(), abs=1e-4)


def test_any_number_of_classes_is_scored_in_one_pass_as_a_softmax_over_their_tokens(tokenizer):
    model = make_model(len(tokenizer))
    sequences = [[1, 5, 6, 7, 8, 9, 10], [1, 11, 12], [1, 13, 14, 15, 16], [1, 17]]
    label_ids = [40, 41, 42, 43, 44]
    passes = []
    hook = model.model.register_forward_pre_hook(lambda module, args, kwargs: passes.append(1), with_kwargs=True)
    scores = scoring.score_sequences(model, sequences, label_ids, 2, batch_size=4, labels=[4, 0, 2, 3])
    hook.remove()
    assert len(passes) == 1  # one forward pass for every row and every class
    for seq, p, nll, label in zip(sequences, scores.probs, scores.nll, [4, 0, 2, 3]):
        with torch.no_grad():
            logits = model(torch.tensor([seq])).logits[0, -1]
        assert p == pytest.approx(torch.softmax(logits[label_ids], 0).tolist(), abs=1e-5) and sum(p) == pytest.approx(1.0)
        assert nll == pytest.approx(-torch.log_softmax(logits, 0)[label_ids[label]].item(), abs=1e-4)


def test_the_output_files_hold_a_probability_per_class_and_the_tasks_submission(tmp_path):
    binary = Task.default()
    rule = fit_rule(binary, ["False", "False", "True", "True", "True"], [[p, 1 - p] for p in (0.1, 0.3, 0.35, 0.6, 0.9)])
    assert 0.3 < rule.threshold < 0.35
    scoring.write_test_outputs(tmp_path, binary, ["0", "1", "2"], [[0.2, 0.8], [0.5, 0.5], [0.8, 0.2]], Rule("threshold", threshold=0.5))
    assert (tmp_path / "submission.csv").read_text() == "ID,is_correct\n0,False\n1,True\n2,True\n"
    assert (tmp_path / "test_probs.csv").read_text().splitlines() == [
        "ID,prob_true,p_True,p_False", "0,0.200000,0.200000,0.800000", "1,0.500000,0.500000,0.500000", "2,0.800000,0.800000,0.200000"]
    scoring.write_val_predictions(tmp_path, binary, [7, 3], [0, 1], [[0.9, 0.1], [0.4, 0.6]])
    assert (tmp_path / "val_predictions.csv").read_text().splitlines() == [
        "row,is_correct,prob_true,label,p_True,p_False", "7,True,0.900000,True,0.900000,0.100000", "3,False,0.400000,False,0.400000,0.600000"]
    pairwise = Task.from_dict({"preset": "pairwise", "id": "id", "prompt": "{a} {b}:", "target": {"one_hot": ["winner_model_a", "winner_model_b", "winner_tie"]}})
    scoring.write_test_outputs(tmp_path, pairwise, ["9"], [[0.7, 0.2, 0.1]], Rule("temperature", temperature=1.0))
    assert (tmp_path / "submission.csv").read_text().splitlines() == ["id,winner_model_a,winner_model_b,winner_tie", "9,0.700000,0.200000,0.100000"]
    assert (tmp_path / "test_probs.csv").read_text().splitlines() == ["id,p_winner_model_a,p_winner_model_b,p_winner_tie", "9,0.700000,0.200000,0.100000"]
    scoring.write_val_predictions(tmp_path, pairwise, [4], [2], [[0.1, 0.2, 0.7]])
    assert (tmp_path / "val_predictions.csv").read_text().splitlines() == [
        "row,label,p_winner_model_a,p_winner_model_b,p_winner_tie", "4,winner_tie,0.100000,0.200000,0.700000"]


def test_without_validation_rows_the_infer_kernel_takes_its_train_runs_rule(tmp_path, monkeypatch):
    from runtime.evaluate import no_validation_rule

    monkeypatch.setenv("KIT_KAGGLE_ROOT", str(tmp_path))
    source = tmp_path / "input" / "kit-comp-abc-run-3"
    source.mkdir(parents=True)
    (source / "metrics.json").write_text(json.dumps({"rule": {"name": "threshold", "threshold": 0.31}}))
    binary = Task.default()
    assert no_validation_rule({"adapter_run": "run-3", "threshold": "tune"}, binary) == Rule("threshold", threshold=0.31)
    assert no_validation_rule({"adapter_run": "run-3", "threshold": "0.7"}, binary) == Rule("threshold", threshold=0.7)  # a number wins
    assert no_validation_rule({"adapter_run": "", "threshold": "tune"}, binary) == Rule("threshold", threshold=0.5)
    (source / "metrics.json").write_text(json.dumps({"rule": {"name": "temperature", "temperature": 1.7}}))
    pairwise = Task.from_dict({"preset": "pairwise", "id": "id", "prompt": "{a}:", "target": {"one_hot": ["x", "y", "z"]}})
    assert no_validation_rule({"adapter_run": "run-3", "threshold": "0.5"}, pairwise) == Rule("temperature", temperature=1.7)


# ------------------------------------------------------------------------------------------------ speed: widths, chunks, memory


def test_widths_are_rounded_up_to_the_engines_multiple():
    assert plan.pad_multiple("unsloth") == 64 and plan.pad_multiple("hf") == 8
    assert [data.padded_width(n, 64) for n in (1, 63, 64, 65, 128, 129)] == [64, 64, 64, 128, 128, 192]
    assert [data.padded_width(n, 8) for n in (1, 8, 9, 17)] == [8, 8, 16, 24]
    assert data.padded_width(37, 1) == 37
    batch = data.collate([[5] * 9, [6] * 3], 0, pad_to_multiple=8)
    assert tuple(batch.input_ids.shape) == (2, 16) and batch.label_index.tolist() == [8, 16 + 2]


def random_lengths(n: int, seed: int, low: int = 3, high: int = 300) -> list[int]:
    import random

    rng = random.Random(seed)
    return [rng.randint(low, high) for _ in range(n)]


@pytest.mark.parametrize("max_tokens,multiple", [(512, 1), (512, 8), (1000, 64), (4096, 64), (200, 64)])
def test_split_by_tokens_keeps_every_row_once_longest_first_and_within_the_budget(max_tokens, multiple):
    lengths = random_lengths(400, seed=max_tokens + multiple)
    rows = list(range(3, 400, 7))  # a micro-batch: positions into lengths, not 0..n
    chunks = data.split_by_tokens(rows, lengths, max_tokens, multiple)
    flat = [r for c in chunks for r in c]
    assert sorted(flat) == sorted(rows) and len(flat) == len(rows)
    assert all(lengths[a] >= lengths[b] for a, b in itertools.pairwise(flat))  # longest rows together
    cost = lambda chunk: len(chunk) * data.padded_width(max(lengths[r] for r in chunk), multiple)  # noqa: E731
    for chunk in chunks:
        assert chunk and (cost(chunk) <= max_tokens or len(chunk) == 1), (chunk, cost(chunk))
    for chunk, following in itertools.pairwise(chunks):
        assert cost(chunk + following[:1]) > max_tokens  # greedy: no chunk could have taken one more row
    assert len(chunks) > 1


def test_split_by_tokens_keeps_a_micro_batch_whole_when_it_fits_and_isolates_a_row_over_the_budget():
    lengths = [10, 700, 20, 30, 5]
    assert data.split_by_tokens([0, 2, 3, 4], lengths, 0, 8) == [[3, 2, 0, 4]]  # 0 = no limit
    assert data.split_by_tokens([0, 2, 3, 4], lengths, 4 * 32, 8) == [[3, 2, 0, 4]]  # 4 rows x width 32 fit exactly
    assert data.split_by_tokens([0, 2, 3, 4], lengths, 4 * 32 - 1, 8) == [[3, 2, 0], [4]]
    chunks = data.split_by_tokens([0, 1, 2, 3, 4], lengths, 256, 64)
    assert chunks[0] == [1]  # 704 padded tokens alone: over the budget, but a row is never cut
    assert chunks[1:] == [[3, 2, 0, 4]]


def tiny_rows(n: int, seed: int, vocab: int) -> list[list[int]]:
    import random

    rng = random.Random(seed)
    return [[1] + [rng.randrange(3, vocab) for _ in range(rng.randint(2, 24))] for _ in range(n)]


def step_gradients(model, micro_batches, make_batch, chunks_of, max_grad_norm: float = 0.0):
    """Run training.train_step and return (the gradient the optimizer stepped with, summed loss, tokens)."""
    import contextlib

    class RecordingSGD(torch.optim.SGD):
        def step(self, closure=None):
            self.seen = [p.grad.detach().clone() for group in self.param_groups for p in group["params"]]
            return super().step(closure)

    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = RecordingSGD(trainable, lr=0.0)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    loss, tokens = training.train_step(model, micro_batches, make_batch, chunks_of, optimizer=optimizer, scaler=scaler,
                                       trainable=trainable, max_grad_norm=max_grad_norm, autocast=contextlib.nullcontext)
    assert all(p.grad is None for p in trainable)  # the step leaves no gradient behind for the next one
    return optimizer.seen, float(loss), tokens


@pytest.mark.parametrize("completion_only", [True, False])
def test_a_micro_batch_run_as_chunks_has_exactly_the_gradient_of_one_pass(tokenizer, completion_only):
    model = make_model(len(tokenizer)).float().train()
    sequences = tiny_rows(20, seed=3, vocab=250)
    label_ids = [40 if i % 3 else 41 for i in range(len(sequences))]
    lengths = [len(s) + (0 if completion_only else 1) for s in sequences]
    make_batch = lambda rows: data.collate(  # noqa: E731
        [sequences[r] for r in rows], tokenizer.pad_token_id, label_ids=[label_ids[r] for r in rows],
        completion_only=completion_only, pad_to_multiple=8,
    )
    micro_batches = [list(range(12)), list(range(12, 20))]  # grad_accum = 2, batches of unequal size
    chunks_of = lambda rows: data.split_by_tokens(rows, lengths, 64, 8)  # noqa: E731
    chunk_sizes = [len(c) for c in chunks_of(micro_batches[0])]
    assert len(chunk_sizes) >= 3 and len(set(chunk_sizes)) > 1  # unequal chunks: a plain mean of chunk losses would differ

    whole_grads, whole_loss, whole_tokens = step_gradients(model, micro_batches, make_batch, lambda rows: [rows])
    chunk_grads, chunk_loss, chunk_tokens = step_gradients(model, micro_batches, make_batch, chunks_of)
    assert chunk_loss == pytest.approx(whole_loss, rel=1e-5) and chunk_tokens == whole_tokens
    expected = sum(training.label_loss(model, make_batch(rows)).item() for rows in micro_batches) / len(micro_batches)
    assert whole_loss == pytest.approx(expected, rel=1e-5)
    assert any(g.abs().sum() > 0 for g in whole_grads)
    for whole, chunked in zip(whole_grads, chunk_grads, strict=True):
        assert torch.allclose(chunked, whole, rtol=1e-4, atol=1e-7), (chunked - whole).abs().max()
    clipped_whole, _, _ = step_gradients(model, micro_batches, make_batch, lambda rows: [rows], max_grad_norm=0.01)
    clipped_chunks, _, _ = step_gradients(model, micro_batches, make_batch, chunks_of, max_grad_norm=0.01)
    for whole, chunked in zip(clipped_whole, clipped_chunks, strict=True):
        assert torch.allclose(chunked, whole, rtol=1e-4, atol=1e-8)


LLAMA_8B = {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32}
GIB = 2**30


@pytest.fixture
def fake_gpu(monkeypatch):
    """torch.cuda's memory queries answering for one GPU of `total` bytes with `free` free (set by the test)."""
    gpu = {"free": 70 * GIB, "total": 80 * GIB, "fraction": 1.0}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (gpu["free"], gpu["total"]))
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: 0)
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 0)
    monkeypatch.setattr(torch.cuda, "get_per_process_memory_fraction", lambda device=None: gpu["fraction"], raising=False)
    return gpu


def plan_memory(setting, model_config, rank, longest_row, **kwargs):
    """plan.plan_memory on the room torch reports on the first GPU, as the train stage calls it."""
    room = modeling.gpu_room(0) if torch.cuda.is_available() else None
    return plan.plan_memory(setting, model_config, rank, longest_row, room, **kwargs)


def test_memory_plan_recomputes_activations_only_when_the_longest_row_cannot_fit(fake_gpu):
    from types import SimpleNamespace

    config = SimpleNamespace(**LLAMA_8B)
    per_token = plan.activation_bytes_per_token(config, False)
    per_token_recomputed = plan.activation_bytes_per_token(config, True)
    assert 4.5e6 < per_token < 5.5e6 and per_token_recomputed * 10 < per_token  # ~5 MB a token on Llama-3.1-8B

    # an 80 GiB GPU with 70 GiB free: ~12k tokens a chunk without recomputation
    ample, chunk, _, _ = plan_memory("auto", config, 16, 2048)
    assert not ample and 8000 < chunk < 70 * GIB // per_token and chunk * per_token < 70 * GIB

    fake_gpu.update(free=30 * GIB, total=40 * GIB)  # room for ~5k tokens without recomputation
    fits, chunk, _, _ = plan_memory("auto", config, 16, 4096)
    assert not fits and 4096 <= chunk < 30 * GIB // per_token
    too_long, chunk, _, _ = plan_memory("auto", config, 16, 8192)
    assert too_long and chunk >= 8192 and chunk * per_token_recomputed < 30 * GIB
    assert plan_memory("on", config, 16, 512).checkpointing is True
    off, chunk, _, _ = plan_memory("off", config, 16, 8192)
    assert off is False and chunk == 8192  # forced off: one row at a time at least, never less than the longest row

    fake_gpu.update(free=70 * GIB, total=80 * GIB, fraction=0.25)  # a process held to 20 GiB: an emulated smaller GPU
    squeezed, chunk, _, _ = plan_memory("auto", config, 16, 4096)
    assert squeezed and chunk * per_token_recomputed < 20 * GIB


COPY = int(10.5 * GIB)  # what dequantizing Llama-3.1-8B's 4-bit linear layers adds


def test_memory_plan_keeps_a_dequantized_base_only_where_it_costs_no_recomputation(fake_gpu):
    from types import SimpleNamespace

    config = SimpleNamespace(**LLAMA_8B)
    per_token = plan.activation_bytes_per_token(config, False)
    plain = plan_memory("auto", config, 32, 2048, dequantize="auto", dequantize_bytes=COPY)
    assert plain.dequantize and not plain.checkpointing  # an H100: room for the copy and ~10k tokens a chunk
    alone = plan_memory("auto", config, 32, 2048)
    assert plain.chunk_tokens < alone.chunk_tokens and (alone.chunk_tokens - plain.chunk_tokens) * per_token <= COPY + per_token
    assert not plan_memory("auto", config, 32, 2048, dequantize="off", dequantize_bytes=COPY).dequantize
    assert not plan_memory("auto", config, 32, 2048, dequantize="on", dequantize_bytes=0).dequantize  # nothing 4-bit

    fake_gpu.update(free=30 * GIB, total=40 * GIB)  # an A100 40GB: the copy would leave under 4k tokens a chunk
    roomy = plan_memory("auto", config, 32, 2048, dequantize="auto", dequantize_bytes=COPY)
    assert not roomy.dequantize and not roomy.checkpointing
    forced = plan_memory("auto", config, 32, 2048, dequantize="on", dequantize_bytes=COPY)
    assert forced.dequantize  # asked for: taken, at the price the plan then pays

    fake_gpu.update(free=70 * GIB, total=80 * GIB, fraction=9 / 80)  # a T4: 15 GiB less the 4-bit model's ~6 GiB
    t4 = plan_memory("auto", config, 32, 2048, dequantize="auto", dequantize_bytes=COPY)
    assert not t4.dequantize and t4.checkpointing

    fake_gpu.update(free=70 * GIB, total=80 * GIB, fraction=1.0)  # layers run eagerly by transformers keep ~20% more
    eager = plan_memory("auto", config, 32, 2048, activation_scale=plan.EAGER_HF_ACTIVATIONS)
    assert eager.chunk_tokens < alone.chunk_tokens / 1.15


def test_memory_plan_on_the_cpu_sets_no_chunk_limit(monkeypatch):
    from types import SimpleNamespace

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    config = SimpleNamespace(**LLAMA_8B)
    assert plan_memory("auto", config, 16, 100_000)[:3] == (False, 0, False)
    assert plan_memory("on", config, 16, 10, dequantize="on", dequantize_bytes=COPY)[:3] == (True, 0, False)


# ------------------------------------------------------------------------------------------------ speed: scoring batches


def test_scoring_order_fills_a_token_budget_and_keeps_every_row_once():
    lengths = random_lengths(300, seed=11, low=5, high=400)
    for max_tokens, multiple, batch_size in ((4096, 64, 4), (2048, 8, 2), (1024, 64, 8)):
        batches = data.scoring_order(lengths, batch_size, max_tokens, multiple)
        flat = [r for b in batches for r in b]
        assert sorted(flat) == list(range(300))
        assert all(lengths[a] >= lengths[b] for a, b in itertools.pairwise(flat))
        for b in batches:
            width = data.padded_width(max(lengths[r] for r in b), multiple)
            assert len(b) * width <= max_tokens or len(b) <= batch_size, (len(b), width)
        for b in batches[:-1]:  # as many rows as fit: one more would go over the budget
            assert (len(b) + 1) * data.padded_width(lengths[b[0]], multiple) > max_tokens or len(b) == batch_size
        assert max(len(b) for b in batches) > batch_size  # short rows go through in large batches
    plain = data.scoring_order(lengths, 4)
    assert [len(b) for b in plain] == [4] * 75 and sorted(r for b in plain for r in b) == list(range(300))


def test_token_budget_scoring_gives_the_probabilities_of_fixed_batches(tokenizer):
    model = make_model(len(tokenizer))
    sequences = tiny_rows(40, seed=5, vocab=250)
    labels = [i % 3 == 0 for i in range(40)]
    shapes = []
    hook = model.model.register_forward_pre_hook(lambda module, args, kwargs: shapes.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True)
    try:
        fixed = scoring.score_sequences(model, sequences, [40, 41], tokenizer.pad_token_id, batch_size=3, labels=labels)
        shapes.clear()
        budget = scoring.score_sequences(model, sequences, [40, 41], tokenizer.pad_token_id, batch_size=3, labels=labels,
                                         max_tokens=256, multiple=8)
    finally:
        hook.remove()
    assert budget.prob_true == pytest.approx(fixed.prob_true, abs=1e-5)
    assert budget.nll == pytest.approx(fixed.nll, abs=1e-4)
    assert sum(rows for rows, _ in shapes) == 40  # each row scored once
    assert all(width % 8 == 0 and (rows * width <= 256 or rows <= 3) for rows, width in shapes), shapes
    assert len(shapes) < 40 / 3  # fewer, larger batches than batch_size alone gives


def test_rows_split_across_devices_score_as_on_one(tokenizer):
    import copy

    first = make_model(len(tokenizer))
    second = copy.deepcopy(first)
    sequences = tiny_rows(30, seed=7, vocab=250)
    labels = [i % 4 == 0 for i in range(30)]
    seen = []
    hook = second.model.register_forward_pre_hook(lambda module, args, kwargs: seen.append(kwargs["input_ids"].shape[0]), with_kwargs=True)
    alone = scoring.score_on_devices([first], ["cpu"], sequences, [40, 41], tokenizer.pad_token_id, batch_size=4, labels=labels)
    split = scoring.score_on_devices([first, second], ["cpu", "cpu"], sequences, [40, 41], tokenizer.pad_token_id, batch_size=4, labels=labels)
    hook.remove()
    assert split.prob_true == pytest.approx(alone.prob_true, abs=1e-6)  # every row back in its own place
    assert split.nll == pytest.approx(alone.nll, abs=1e-5)
    assert sum(seen) == 15  # the second device scored half of the rows


# ------------------------------------------------------------------------------------------------ steps across phases


def test_phase_arithmetic_counts_each_phase_and_the_global_steps():
    assert training.phase_length(100, 8, 2, 0, 1.0) == 7  # 13 micro-batches -> 7 optimizer steps
    assert training.phase_length(100, 8, 2, 0, 2.5) == 18
    assert training.phase_length(100, 8, 2, 5, 1.0) == 5
    fresh = training.plan_phase(None, 10, seed=1, data_offset=0, next_offset=80)
    assert (fresh.global_step, fresh.phase_step, fresh.phase_steps, fresh.phase) == (0, 0, 10, 1)
    finished = training.TrainState(global_step=10, phase_step=10, phase_steps=10, complete=True, next_offset=80)
    second = training.plan_phase(finished, 4, seed=1, data_offset=80, next_offset=112)
    # a new phase makes its own 4 steps (not 4 - 10, not one step): global 11..14
    assert (second.global_step, second.phase_step, second.phase_steps, second.global_start, second.phase) == (10, 0, 4, 10, 2)
    assert second.history[0]["steps"] == 10
    interrupted = training.TrainState(global_step=13, phase_step=3, phase_steps=4, global_start=10, phase=2)
    rest = training.plan_phase(interrupted, 4, seed=1, data_offset=80, next_offset=112)
    assert (rest.global_step, rest.phase_step, rest.phase_steps, rest.global_start, rest.phase) == (13, 3, 4, 10, 2)


def test_attach_lora_trains_only_the_adapter_in_fp32(tokenizer):
    model = attach_lora(make_model(len(tokenizer)).to(torch.bfloat16), lora_config(), engine="hf", gradient_checkpointing=False)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert all(p.dtype == torch.float32 for p in model.parameters() if p.requires_grad)


def quantize_linears(model) -> None:
    """Make every decoder linear layer 4-bit NF4 with double-quantized scales (bitsandbytes on the CPU), as a GPU
    load with BitsAndBytesConfig does (its CPU kernels want rows of at least 64 weights: hidden_size 64)."""
    import bitsandbytes as bnb

    for parent in list(model.model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is torch.nn.Linear:
                packed = bnb.nn.Linear4bit(child.in_features, child.out_features, bias=False, compute_dtype=torch.float32, quant_type="nf4")
                packed.weight = bnb.nn.Params4bit(child.weight.data.clone(), requires_grad=False, quant_type="nf4", compress_statistics=True).to("cpu")
                setattr(parent, name, packed)


def test_a_dequantized_base_scores_as_the_4bit_one_and_a_merged_adapter_too(tokenizer):
    import copy

    from runtime import modeling

    model = make_model(len(tokenizer), hidden_size=64)
    original = model.model.layers[0].mlp.up_proj.weight.detach().clone()
    quantize_linears(model)
    layers = 7 * model.config.num_hidden_layers
    assert len(modeling.quantized_linears(model)) == layers
    model = attach_lora(model, lora_config(), engine="hf", gradient_checkpointing=False)
    torch.manual_seed(1)
    for name, p in model.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0, 0.5)  # a trained adapter: B is no longer zero
    rows = tiny_rows(12, 5, len(tokenizer))

    def probs(m):
        return scoring.score_sequences(m, rows, [5, 6], tokenizer.pad_token_id, batch_size=4).prob_true

    # bitsandbytes repacks a 4-bit weight for its CPU kernel on the first forward; the copy keeps the GPU layout
    on_4bit = probs(copy.deepcopy(model))
    extra = modeling.dequantize_bytes(model, dtype_bytes=4)
    assert extra == sum(4 * m.in_features * m.out_features - m.weight.numel() for m in (getattr(p, n) for p, n in modeling.quantized_linears(model)))
    assert modeling.dequantize_base(model, torch.float32) == layers
    assert modeling.quantized_linears(model) == [] and modeling.dequantize_bytes(model) == 0
    weight = model.get_base_model().model.layers[0].mlp.up_proj.base_layer.weight
    assert type(model.get_base_model().model.layers[0].mlp.up_proj.base_layer) is torch.nn.Linear and not weight.requires_grad
    blocks = weight.detach().reshape(-1, 64)
    assert max(len(set(b.tolist())) for b in blocks) <= 16  # NF4: 16 codes times each block's scale, not the original weights
    assert 0 < (weight - original).abs().max() < 0.2 * original.abs().max()
    dequantized = probs(model)
    # the CPU kernel rounds its scales to bf16; on a GPU the 4-bit matmul dequantizes to these very values
    assert dequantized == pytest.approx(on_4bit, abs=5e-3)
    assert modeling.merge_adapters(model) == layers
    assert not [n for n, _ in model.named_parameters() if "lora_" in n]
    assert probs(model) == pytest.approx(dequantized, abs=1e-5)
    assert max(abs(p - 0.5) for p in on_4bit) > 0.02  # the adapter moves the scores, so the matches above mean something


def test_scoring_preparation_keeps_a_4bit_base_without_room_and_merges_where_it_can(tokenizer):
    from runtime import modeling

    model = make_model(len(tokenizer), hidden_size=64)
    quantize_linears(model)
    model = attach_lora(model, lora_config(), engine="hf", gradient_checkpointing=False)
    # no GPU here, so "auto" finds no room for a copy: the adapter stays unmerged on the 4-bit base
    assert modeling.prepare_for_scoring(model, dtype=torch.float32, setting="auto") == "base kept in 4-bit (no room for a dequantized copy)"
    assert len(modeling.quantized_linears(model)) == 14
    assert modeling.prepare_for_scoring(model, dtype=torch.float32, setting="on") == "dequantized 14 4-bit layers (+0.0 GiB); adapter merged into 14 layers"
    plain = attach_lora(make_model(len(tokenizer)), lora_config(), engine="hf", gradient_checkpointing=False)
    assert modeling.prepare_for_scoring(plain, dtype=torch.float32, setting="off") == "adapter merged into 14 layers"


# ------------------------------------------------------------------------------------------------ the kernels end to end


def write_competition(folder: Path, n_train: int = 64, n_test: int = 10) -> None:
    folder.mkdir(parents=True)
    with open(folder / "train.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["question", "answer", "solution", "is_correct"])
        for i in range(n_train):
            ok = i % 5 < 2
            w.writerow([f"what is 12 + {i}?", str(12 + i if ok else 13 + i), f"x = 12 + {i}\nprint(x)\n{12 + i}", str(ok)])
    with open(folder / "test.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ID", "question", "answer", "solution"])
        for i in range(n_test):
            w.writerow([i, f"what is 30 + {i}?", str(30 + i), f"x = 30 + {i}\nprint(x)\n{30 + i}"])


def kernel_config(kernel: str, **settings):
    from kit.workspace.kernel_config import make_config, script_settings

    return script_settings(make_config(kernel, {"competition": "tiny-comp", **settings}))


def test_train_and_infer_kernels_end_to_end_with_resume(tmp_path, monkeypatch, tiny_model_dir, capsys):
    from infer import main as infer_main
    from train import main as train_main

    monkeypatch.setenv("KIT_KAGGLE_ROOT", str(tmp_path / "kaggle"))
    inputs, working = tmp_path / "kaggle" / "input", tmp_path / "kaggle" / "working"
    write_competition(inputs / "competitions" / "tiny-comp")
    common = dict(model=str(tiny_model_dir), train_rows=24, val_rows=12, batch_size=4, max_steps=4, r=4, lora_alpha=8,
                  learning_rate=1e-3, warmup_steps=1, logging_steps=1)

    # phase 1: 4 steps, a checkpoint at step 2
    config = kernel_config("train", **common, save_steps=2)
    metrics = train_main(config)
    out = capsys.readouterr().out
    # the plan is printed at the top of the log and saved: the same make_plan the CPU profile gets (kit build --explain)
    assert out.startswith("plan (train kernel) on CPU (no CUDA GPU)") and "  engine              hf           no GPU: transformers" in out
    assert json.loads((working / "plan.json").read_text()) == json.loads(json.dumps(plan.make_plan(config, plan.PROFILES["cpu"], "train").to_json()))
    assert "step 1/4 (global 1) loss" in out and "tokens/s" in out and "checkpoint saved" in out
    for name in ("adapter/adapter_model.safetensors", "adapter/adapter_config.json", "config.json", "metrics.json",
                 "val_predictions.csv", "submission.csv", "test_probs.csv", "train_state.json", "optimizer.pt"):
        assert (working / name).is_file(), name
    assert not (working / "checkpoints").exists()  # the final state supersedes them
    saved = json.loads((working / "metrics.json").read_text())
    assert [s["step"] for s in saved["steps"]] == [1, 2, 3, 4]
    assert all({"loss", "lr", "tokens_per_s"} <= set(s) for s in saved["steps"])
    for key in ("val_accuracy", "val_loss", "train_tokens_per_s", "wall_seconds", "gpu", "peak_memory_gib", "engine"):
        assert key in saved
    assert saved["val_rows"] == 12 and 0 <= saved["val_accuracy"] <= 1 and saved == json.loads(json.dumps(metrics))
    effective = json.loads((working / "config.json").read_text())
    assert effective["engine"] == "hf" and effective["dtype"] == "fp32" and effective["learning_rate"] == 1e-3
    val = list(csv.DictReader(open(working / "val_predictions.csv")))
    assert len(val) == 12 and list(val[0]) == ["row", "is_correct", "prob_true", "label", "p_True", "p_False"]
    assert all(r["is_correct"] == str(r["label"] == "True") and r["prob_true"] == r["p_True"] for r in val)
    assert all(0.0 <= float(r["prob_true"]) <= 1.0 for r in val)
    submission = (working / "submission.csv").read_text().splitlines()
    assert submission[0] == "ID,is_correct" and len(submission) == 11
    assert {line.split(",")[1] for line in submission[1:]} <= {"True", "False"}
    probs = list(csv.DictReader(open(working / "test_probs.csv")))
    assert [r["ID"] for r in probs] == [str(i) for i in range(10)]

    # phase 2: resume the finished run for 3 steps of its own on fresh rows -> global steps 5..7
    shutil.copytree(working, inputs / "kit-run-1")
    shutil.rmtree(working)
    train_main(kernel_config("train", **{**common, "max_steps": 3}, resume_from="run-1", data_offset=saved["next_data_offset"], predict_test=False))
    second = json.loads((working / "metrics.json").read_text())
    assert [s["step"] for s in second["steps"]] == [5, 6, 7] and [s["phase_step"] for s in second["steps"]] == [1, 2, 3]
    assert second["phase"] == 2 and second["global_step"] == 7
    assert not (working / "submission.csv").exists()

    # an interrupted phase: only its checkpoint at global step 6 (phase step 2) exists -> 1 more step, to global 7
    interrupted = inputs / "kit-run-3"
    (interrupted / "checkpoints").mkdir(parents=True)
    state = training.TrainState.load(working)
    state.global_step, state.phase_step, state.complete = 6, 2, False
    shutil.copytree(working / "adapter", interrupted / "checkpoints" / "step-6" / "adapter")
    for name in ("optimizer.pt", "scheduler.pt"):
        shutil.copy(working / name, interrupted / "checkpoints" / "step-6" / name)
    state.save(interrupted / "checkpoints" / "step-6")
    shutil.rmtree(working)
    train_main(kernel_config("train", **{**common, "max_steps": 3}, resume_from="run-3", predict_test=False))
    third = json.loads((working / "metrics.json").read_text())
    assert [s["step"] for s in third["steps"]] == [7] and third["phase"] == 2 and third["global_step"] == 7

    # the inference kernel with run-1's adapter: the same validation rows, a full submission
    shutil.rmtree(working)
    # packed rows (each attending only to itself), as on a GPU with flash attention: the train kernel's numbers
    infer_metrics = infer_main(kernel_config("infer", model=str(tiny_model_dir), adapter_run="run-1", val_rows=12, threshold="tune",
                                             packing="on"))
    assert infer_metrics["val_rows"] == 12 and infer_metrics["packing"] is True
    infer_val = list(csv.DictReader(open(working / "val_predictions.csv")))
    assert [r["row"] for r in infer_val] == [r["row"] for r in val]
    # same adapter, same rows: the same probabilities as the train kernel computed
    assert [float(r["prob_true"]) for r in infer_val] == pytest.approx([float(r["prob_true"]) for r in val], abs=1e-5)
    assert len((working / "submission.csv").read_text().splitlines()) == 11


WORKER = (
    "import json, os, sys; sys.path.insert(0, {kernels!r}); from train import main; "
    "main(json.loads(os.environ['KIT_CONFIG_JSON']))"
)


def test_two_training_processes_make_the_updates_of_one(tmp_path, monkeypatch, tiny_model_dir):
    import sys

    from safetensors.torch import load_file

    from train import main as train_main

    settings = dict(model=str(tiny_model_dir), train_rows=40, val_rows=8, test_rows=4, batch_size=8, max_steps=4, r=4, lora_alpha=8,
                    warmup_steps=1, optim="sgd", learning_rate=0.05, logging_steps=1, seed=1, completion_only=False)
    runs = {}
    for processes in (1, 2):
        root = tmp_path / f"processes-{processes}"
        monkeypatch.setenv("KIT_KAGGLE_ROOT", str(root))
        write_competition(root / "input" / "competitions" / "tiny-comp")
        worker = [sys.executable, "-c", WORKER.format(kernels=str(RUNTIME.parent))]
        metrics = train_main(kernel_config("train", train_processes=processes, **settings), worker_command=worker)
        adapter = load_file(str(root / "working" / "adapter" / "adapter_model.safetensors"))
        runs[processes] = (metrics, adapter, sorted(p.name for p in (root / "working").iterdir()))
    (one, one_adapter, one_files), (two, two_adapter, two_files) = runs[1], runs[2]
    assert one["train_processes"] == 1 and two["train_processes"] == 2
    assert two_files == one_files  # the same outputs, written once
    assert two["train_tokens"] == one["train_tokens"] and two["global_step"] == one["global_step"] == 4
    assert [s["loss"] for s in two["steps"]] == pytest.approx([s["loss"] for s in one["steps"]], rel=1e-4)
    assert one_adapter.keys() == two_adapter.keys()
    moved = max(float((one_adapter[k]).abs().max()) for k in one_adapter if "lora_B" in k)
    assert moved > 1e-3  # B starts at zero: the steps changed the adapter, so matching adapters mean matching updates
    for key in one_adapter:
        assert torch.allclose(one_adapter[key], two_adapter[key], atol=1e-5), key
    assert two["val_accuracy"] == pytest.approx(one["val_accuracy"])


def test_a_built_train_kernel_starts_its_own_workers(tmp_path, tiny_model_dir):
    """The single-file kernel, run as `python kernel.py`, starts copies of itself for train_processes=2."""
    import os
    import subprocess
    import sys

    from kit.build.script import build_kernel
    from kit.build.templates import packaged_kernels_dir
    from kit.workspace.kernel_config import make_config

    config = make_config("train", {"competition": "tiny-comp", "model": str(tiny_model_dir), "train_rows": 24, "val_rows": 8,
                                   "test_rows": 4, "batch_size": 4, "max_steps": 2, "r": 4, "lora_alpha": 8, "warmup_steps": 1,
                                   "optim": "adamw_torch", "train_processes": 2})
    built = build_kernel("train", config, tmp_path / "built", packaged_kernels_dir(), run_id="run-1")
    write_competition(tmp_path / "kaggle" / "input" / "competitions" / "tiny-comp")
    env = {**os.environ, "KIT_KAGGLE_ROOT": str(tmp_path / "kaggle")}
    env.pop("PYTHONPATH", None)
    result = subprocess.run([sys.executable, str(built.script)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "starting 2 training processes with torch.distributed's launcher" in result.stdout
    assert "2 training processes (gloo) joined" in result.stdout and result.stdout.count("kit train kernel:") == 1
    working = tmp_path / "kaggle" / "working"
    metrics = json.loads((working / "metrics.json").read_text())
    assert metrics["train_processes"] == 2 and metrics["global_step"] == 2
    assert (working / "submission.csv").is_file()
    # rank 0 planned as `kit build --explain --gpu cpu` does: the same count and reason
    from kit.workspace.kernel_config import script_settings

    written = json.loads((working / "plan.json").read_text())["decisions"]["train_processes"]
    assert written == plan.make_plan(script_settings(config), plan.PROFILES["cpu"], "train").to_json()["decisions"]["train_processes"]


def training_process(rank: int, marker: str) -> int | None:
    """The pid of the training process of `rank` whose environment holds `marker` (read from /proc)."""
    for entry in Path("/proc").iterdir():
        try:
            env = (entry / "environ").read_bytes().split(b"\0") if entry.name.isdigit() else []
        except OSError:
            continue
        if f"RANK={rank}".encode() in env and marker.encode() in env:
            return int(entry.name)
    return None


@pytest.mark.skipif(not Path("/proc/self/environ").is_file(), reason="finds the training process through /proc (Linux)")
def test_a_training_process_killed_mid_run_ends_the_kernel_at_once_naming_its_rank_and_exit_code(tmp_path, tiny_model_dir):
    """The single-file kernel with train_processes=2, one process SIGKILLed after the first step: torch.distributed's
    launcher stops the other and the kernel ends in seconds (not at the collectives' 10-minute timeout), one line
    naming the process's rank, pid and exit code, no outputs written."""
    import os
    import signal
    import subprocess
    import sys
    import threading
    import time

    from kit.build.script import build_kernel
    from kit.build.templates import packaged_kernels_dir
    from kit.workspace.kernel_config import make_config

    config = make_config("train", {"competition": "tiny-comp", "model": str(tiny_model_dir), "train_rows": 24, "val_rows": 8,
                                   "test_rows": 4, "batch_size": 4, "max_steps": 5000, "r": 4, "lora_alpha": 8, "warmup_steps": 1,
                                   "optim": "adamw_torch", "train_processes": 2, "logging_steps": 1})
    built = build_kernel("train", config, tmp_path / "built", packaged_kernels_dir(), run_id="run-1")
    root = tmp_path / "kaggle"
    write_competition(root / "input" / "competitions" / "tiny-comp")
    env = {**os.environ, "KIT_KAGGLE_ROOT": str(root)}
    env.pop("PYTHONPATH", None)
    kernel = subprocess.Popen([sys.executable, str(built.script)], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    watchdog = threading.Timer(300, kernel.kill)  # a kernel that hangs is the failure this test is for
    watchdog.start()
    lines, victim, killed = [], None, 0.0
    try:
        for line in kernel.stdout:
            lines.append(line)
            if victim is None and line.startswith("step 1/"):
                victim = training_process(1, f"KIT_KAGGLE_ROOT={root}")
                assert victim is not None, "no training process of rank 1 found"
                os.kill(victim, signal.SIGKILL)
                killed = time.monotonic()
        code = kernel.wait()
        ended = time.monotonic()
    finally:
        watchdog.cancel()
    log = "".join(lines)
    assert victim is not None, log[-3000:]
    assert code != 0 and ended - killed < 60, log[-3000:]
    told = [line for line in lines if "rank 1" in line and f"pid {victim}" in line and "exit code -9" in line]
    assert told, log[-3000:]
    assert not any(line.startswith("step 5000/") for line in lines)
    assert not (root / "working" / "metrics.json").exists() and not (root / "working" / "submission.csv").exists()


# ------------------------------------------------------------------------------------------------ speed: engine and compiled layers


def test_compiled_fused_layers_on_packed_rows_train_as_eager_padded_ones(tokenizer):
    from runtime.attention import use_packed_attention
    from runtime.modeling import compile_layers

    eager = attach_lora(make_model(len(tokenizer)), lora_config(), engine="hf", gradient_checkpointing=False).train()
    fast = attach_lora(make_model(len(tokenizer)), lora_config(), engine="hf", gradient_checkpointing=False).train()
    for p in eager.parameters():
        if p.requires_grad:
            torch.nn.init.normal_(p, std=0.05)
    fast.load_state_dict(eager.state_dict())
    use_packed_attention(fast, flash=False)
    assert fuse_projections(fast.get_base_model().model.layers) == 4
    compile_layers(fast)
    for size in (3, 5):
        rows = [[5 + (i * 7 + k) % 50 for i in range(4 + 3 * k)] for k in range(size)]
        labels = [7 + k % 2 for k in range(size)]
        losses, grads = [], []
        for model, packed in ((eager, False), (fast, True)):
            model.zero_grad(set_to_none=True)
            loss = training.label_loss(model, data.collate(rows, 0, label_ids=labels, packed=packed))
            loss.backward()
            losses.append(float(loss.detach()))
            grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.requires_grad]))
        assert losses[0] == pytest.approx(losses[1], rel=1e-4)
        assert torch.allclose(grads[0], grads[1], rtol=1e-3, atol=1e-6)


def test_compiled_layers_train_as_the_eager_ones_at_every_width(tokenizer):
    from runtime.modeling import compile_layers, uncompile_layers

    eager = attach_lora(make_model(len(tokenizer)), lora_config(), engine="hf", gradient_checkpointing=False).train()
    compiled = attach_lora(make_model(len(tokenizer)), lora_config(), engine="hf", gradient_checkpointing=False).train()
    compiled.load_state_dict(eager.state_dict())
    from torch._dynamo.utils import counters

    graphs_before = counters["stats"]["unique_graphs"]
    assert compile_layers(compiled) == 2
    for width in (9, 23, 16):  # new widths: one compiled graph (dynamic shapes) serves them all
        rows = [[5 + (i * 7 + k) % 50 for i in range(width - k)] for k in range(3)]
        batch = data.collate(rows, 0, label_ids=[7, 8, 7], completion_only=True, pad_to_multiple=1)
        losses, grads = [], []
        for model in (eager, compiled):
            model.zero_grad(set_to_none=True)
            loss = training.label_loss(model, batch)
            loss.backward()
            losses.append(float(loss.detach()))
            grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.requires_grad]))
        assert losses[0] == pytest.approx(losses[1], rel=1e-4)
        assert torch.allclose(grads[0], grads[1], rtol=1e-3, atol=1e-6)
    assert 1 <= counters["stats"]["unique_graphs"] - graphs_before <= 2  # compiled, and not again for each width
    uncompile_layers(compiled)
    assert all(layer._compiled_call_impl is None for layer in compiled.get_base_model().model.layers)


def test_compiling_and_unsloth_ask_for_a_gpu():
    cpu, p100 = plan.PROFILES["cpu"], plan.PROFILES["p100"]
    assert plan.choose_compile("auto", "hf", cpu).value is False
    off = plan.choose_compile("on", "hf", cpu)
    assert off.value is False and "compile=on needs engine=hf on a CUDA GPU" in off.warning
    assert plan.choose_compile("auto", "hf", p100).value is False  # Triton does not compile for compute capability 6.0
    assert plan.choose_engine("auto", "unsloth", cpu, train=False, roomy=True).value == "hf"  # the CPU: hf whatever the kernel prefers
    with pytest.raises(plan.PlanError, match="engine=unsloth needs a CUDA GPU"):
        plan.choose_engine("unsloth", "hf", cpu, train=True, roomy=True)


LLAMA_31_8B_CONFIG = {"vocab_size": 128256, "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
                      "num_attention_heads": 32, "num_key_value_heads": 8, "tie_word_embeddings": False}


def test_engine_auto_trains_with_compiled_layers_only_where_the_base_fits_dequantized(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from runtime.modeling import read_model_config

    # Llama-3.1-8B has 8,030,261,248 parameters, 266,240 of them in the norms (not counted)
    assert plan.bf16_weight_bytes(SimpleNamespace(**LLAMA_31_8B_CONFIG)) == 2 * (8_030_261_248 - 266_240)
    fits = lambda gib: plan.dequantized_base_fits(LLAMA_31_8B_CONFIG, 32, gib * GIB)  # noqa: E731
    assert not fits(15) and not fits(24) and not fits(40) and fits(80)  # T4, L4, A100 40GB: unsloth; H100: hf compiled
    smol = {"vocab_size": 49152, "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9,
            "num_key_value_heads": 3, "tie_word_embeddings": True}
    assert plan.dequantized_base_fits(smol, 32, 15 * GIB)
    assert plan.dequantized_base_fits(None, 32, 80 * GIB) and not plan.dequantized_base_fits(None, 32, 15 * GIB)

    # the config is read without loading the model: from a folder, from kit's cache; None where nothing answers
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(smol))
    assert read_model_config(str(folder)) == smol
    monkeypatch.setenv("KIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cached = tmp_path / "cache" / "models" / "someone--model"
    cached.mkdir(parents=True)
    (cached / "config.json").write_text(json.dumps(LLAMA_31_8B_CONFIG))
    assert read_model_config("someone/model") == LLAMA_31_8B_CONFIG
    assert read_model_config("nobody/nothing") is None
    assert plan.room_for_dequantized({"dequantize_base": "auto", "r": 32}, plan.PROFILES["cpu"], None) is True  # no GPU: nothing is quantized
