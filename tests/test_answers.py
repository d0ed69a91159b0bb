"""Generated answers and server mode, piece by piece: extraction rules and the vote, the loss on completions only,
the kernel's own time keeping (fallbacks instead of missed deadlines), and kit's practice gateway, which fails a
notebook with Kaggle's error classes."""

from __future__ import annotations

import sys

import polars as pl
import pytest

from kit.practice.answer_competition import ServerRules, gateway_names, read_solution, score_answers
from kit.practice.competition import init_practice
from runtime.answer_data import fill
from runtime.answers import AnswerRule, answer_of, extract_answer, most_common, read_answer, vote
from runtime.data import collate
from runtime.serve import RowAnswerer, ServerSpec, row_of

RULE = AnswerRule("integer", 0, 99999, "boxed")


@pytest.mark.parametrize("text, rule, marker, expected", [
    ("so it is 12, then 1,234 in all", "last_integer", "", "1234"),
    ("answer: -3 degrees", "last_integer", "", "-3"),
    ("no number here", "last_integer", "", None),
    ("first \\boxed{7} then \\boxed{\\frac{1}{2}} last", "boxed", "", "\\frac{1}{2}"),
    ("\\boxed{42", "boxed", "", None),
    ("Work...\nAnswer: 17 apples\nmore", "after_marker", "Answer:", "17 apples"),
    ("Answer: 1\nAnswer: 2", "after_marker", "Answer:", "2"),
    ("nothing", "after_marker", "Answer:", None),
])
def test_extraction_rules(text, rule, marker, expected):
    assert extract_answer(text, rule, marker) == expected


def test_answers_are_read_as_the_task_says_and_voted_with_ties_to_the_earliest():
    assert read_answer("1,176", RULE) == 1176 and read_answer("12.0", RULE) == 12 and read_answer("$40", RULE) == 40
    assert read_answer("100000", RULE) is None and read_answer("-1", RULE) is None and read_answer("3.5", RULE) is None
    assert read_answer("  Paris ", AnswerRule("text", extract="after_marker", marker="A:")) == "Paris"
    assert answer_of("Thus \\boxed{1176} dollars.", RULE) == 1176
    assert vote([None, 17, 42, 42, 17]) == 17  # 17 and 42 twice each: 17 came first
    assert vote([None, None]) is None
    assert most_common([], RULE) == 0 and most_common([5, 9, 9], RULE) == 9


def test_a_rule_without_extraction_or_marker_names_the_fix():
    assert "extraction rule" in AnswerRule(extract="").problem()
    assert "marker" in AnswerRule(extract="after_marker").problem()
    assert "not one of" in AnswerRule(extract="first_word").problem()
    assert AnswerRule().problem() == ""


def test_the_prompt_fills_columns_and_keeps_literal_braces():
    assert fill("Problem: {problem}\nPut it in \\boxed{{}}.", {"problem": "2+2?"}) == "Problem: 2+2?\nPut it in \\boxed{}."


def test_completion_loss_is_on_the_completion_tokens_only_packed_or_padded():
    rows = [[1, 2, 3, 10, 11], [4, 5, 12, 13, 14]]  # prompts [1,2,3] and [4,5]; completions after them
    for packed in (False, True):
        batch = collate(rows, 0, completion_from=[3, 2], packed=packed)
        flat = batch.input_ids.reshape(-1)
        assert batch.targets.tolist() == [10, 11, 12, 13, 14]
        # each target is predicted from the token just before it
        assert [int(flat[i + 1]) for i in batch.predict_index.tolist()] == [10, 11, 12, 13, 14]


def spec(**overrides) -> ServerSpec:
    return ServerSpec(**{"module": "m", "call_seconds": 10.0, "run_seconds": 100.0, **overrides})


def test_the_server_loads_on_the_first_call_falls_back_and_logs_one_line_per_call(capsys):
    loads = []
    answers = iter([7, None, RuntimeError("CUDA error"), 9])

    def answer(model, row, seconds):
        value = next(answers)
        if isinstance(value, Exception):
            raise value
        return value

    answerer = RowAnswerer(spec(), lambda: loads.append(1) or "model", answer, lambda given: most_common(given, RULE))
    frames = [answerer(pl.Series("id", [i]), pl.Series("problem", ["?"])) for i in range(4)]
    assert loads == [1]
    assert [f["answer"][0] for f in frames] == [7, 7, 7, 9]  # None and the exception get the most common so far
    assert [f["id"][0] for f in frames] == [0, 1, 2, 3] and all(isinstance(f, pl.DataFrame) for f in frames)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("predict ")]
    assert len(lines) == 4 and lines[0].startswith("predict 0: 7 in ") and "model loaded" in lines[0]
    assert "fallback" in lines[1] and "fallback" in lines[2]
    assert answerer.summary()["server_fallbacks"] == 2


def test_a_spent_run_budget_answers_at_once_with_the_fallback():
    called = []
    answerer = RowAnswerer(spec(run_seconds=0.5), lambda: "m", lambda m, r, s: called.append(s) or 5, lambda given: 0)
    answerer.clock.started -= 10  # the run's budget is gone
    frame = answerer(pl.Series("id", [3]), pl.Series("problem", ["?"]))
    assert called == [] and frame["answer"][0] == 0


def test_each_call_gets_its_deadline_less_the_margin_and_its_share_of_the_run():
    answerer = RowAnswerer(spec(call_seconds=30, run_seconds=1000, rows=10), lambda: "m", lambda m, r, s: 1, lambda g: 0)
    assert answerer.clock.budget() == pytest.approx(28, abs=0.1)  # the call's deadline binds
    answerer = RowAnswerer(spec(call_seconds=3000, run_seconds=1000, rows=10), lambda: "m", lambda m, r, s: 1, lambda g: 0)
    assert answerer.clock.budget() == pytest.approx(99.8, abs=0.1)  # a tenth of the run left


def test_rows_arrive_as_series_frames_or_plain_values():
    import pandas as pd

    assert row_of((pl.Series("id", [1]), pl.Series("problem", ["p"])), {}) == ({"id": 1, "problem": "p"}, "polars")
    assert row_of((pd.DataFrame({"id": [2], "problem": ["q"]}),), {}) == ({"id": 2, "problem": "q"}, "pandas")
    assert row_of((), {"id": 3}) == ({"id": 3}, "plain")


# -- kit's practice gateway ------------------------------------------------------------------------------------

KERNEL = '''
import sys, time
sys.path.insert(0, {data!r})
import polars as pl
from kaggle_evaluation.practice_math_inference_server import PracticeMathInferenceServer
calls = []
def predict(id_, problem):
    calls.append(1)
    if {mode!r} == "raise":
        raise ValueError("boom")
    if {mode!r} == "slow" and len(calls) > 1:
        time.sleep(5)
    answer = ["x"] if {mode!r} == "text" else [int(id_[0]) * 2]
    return pl.DataFrame({{"id": id_, "answer": answer}})
PracticeMathInferenceServer(predict).run_local_gateway(({test!r},))
'''


@pytest.fixture
def server_comp(tmp_path):
    return init_practice(tmp_path / "comp", n_train=20, n_test=6, task="answer", rerun_seconds=60,
                         server=ServerRules(call_seconds=1, startup_seconds=3))


@pytest.mark.parametrize("mode, error", [("ok", ""), ("raise", "SERVER_RAISED_EXCEPTION: ValueError: boom"),
                                         ("slow", "SERVER_CONNECTION_FAILED: StatusCode.DEADLINE_EXCEEDED"),
                                         ("text", "INVALID_SUBMISSION: answer must be an integer")])
def test_the_local_gateway_calls_predict_row_by_row_and_fails_with_kaggles_error_classes(server_comp, tmp_path, mode, error):
    import subprocess

    data = server_comp.data_dir
    assert (data / "kaggle_evaluation" / "practice_math_inference_server.py").is_file()
    assert gateway_names("practice-math") == ("practice_math_inference_server", "PracticeMathInferenceServer")
    script = tmp_path / "kernel.py"
    script.write_text(KERNEL.format(data=str(data), test=str(data / "test.csv"), mode=mode))
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    if not error:
        assert done.returncode == 0, done.stderr
        written = pl.read_parquet(tmp_path / "submission.parquet")
        assert sorted(written["id"].to_list()) == list(range(5)) and written["answer"].to_list() == [2 * i for i in written["id"].to_list()]
    else:
        assert done.returncode != 0 and error in done.stderr


def test_answers_are_scored_by_accuracy_on_public_and_private_rows(server_comp, tmp_path):
    solution = read_solution(server_comp.directory / "hidden" / "solution.csv")
    truth = {int(i): a for i, (a, _) in solution.items()}
    path = tmp_path / "submission.parquet"
    pl.DataFrame({"id": list(truth), "answer": [truth[i] if i % 2 else truth[i] + 1 for i in truth]}).write_parquet(path)
    public, private = score_answers(path, solution)
    expect = lambda public_rows: sum(int(i) % 2 == 1 for i, (_, p) in solution.items() if p == public_rows) / sum(  # noqa: E731
        1 for _, p in solution.values() if p == public_rows)
    assert (public, private) == (round(expect(True), 5), round(expect(False), 5))
    assert server_comp.score(path) == (public, private)


def test_the_gateway_refuses_a_value_the_real_relay_refuses():
    from kit.practice.gateway import decode, encode

    assert decode(encode({"a": [1, (2.5, None)], "f": pl.DataFrame({"x": [1]})}))["a"] == [1, (2.5, None)]
    with pytest.raises(TypeError):
        encode({1, 2})
    with pytest.raises(TypeError):
        encode({1: "a"})


# -- the task description: the answer kind and [task.server] ----------------------------------------------------

ANSWER_TASK = {"preset": "answer", "id": "id", "prompt": "Problem: {problem}\nSolution:\n",
               "target": {"column": "answer", "extract": "boxed", "completion": "solution"},
               "server": {"module": "practice_math_inference_server", "call_seconds": 30, "run_seconds": 600}}


def test_an_answer_task_with_a_server_reads_back_from_what_the_kernel_carries():
    from kit.task import Task

    task = Task.from_dict(ANSWER_TASK)
    assert (task.kind, task.answer, task.answer_min, task.answer_max, task.extract) == ("answer", "integer", 0, 99999, "boxed")
    assert task.served and task.submitted_file == "submission.parquet" and task.sub_columns == ("id", "answer")
    assert Task.from_dict(task.to_dict()) == task
    assert not Task.default().served and Task.default().submitted_file == "submission.csv"


@pytest.mark.parametrize("change, problem, fix", [
    ({"target": {"column": "answer"}}, "needs an extraction rule", 'extract = "boxed"'),
    ({"target": {"column": "answer", "extract": "after_marker"}}, "needs the marker", 'marker = "Answer:"'),
    ({"target": {"column": "answer", "extract": "first_line"}}, "unknown task.target.extract", "one of last_integer"),
    ({"target": {"column": "answer", "extract": "boxed", "range": [9, 1]}}, "range", "range = [0, 99999]"),
    ({"prompt": ""}, "needs its prompt", "prompt ="),
    ({"server": {"module": "m", "call_seconds": 700, "run_seconds": 600}}, "more than the whole rerun", "call_seconds = 600 at most"),
    ({"server": {"call_seconds": 7}}, "names no module", "kit init --competition"),
])
def test_bad_answer_tasks_are_refused_in_one_line_with_the_fix(change, problem, fix):
    from kit.task import Task, TaskError

    with pytest.raises(TaskError) as caught:
        Task.from_dict({**ANSWER_TASK, **change})
    assert problem in caught.value.problem and fix in caught.value.fix


def test_an_answer_submission_is_checked_cell_by_cell():
    from kit.task import Task, TaskError, check_submission

    task = Task.from_dict(ANSWER_TASK)
    assert check_submission(task, ["id", "answer"], [["1", "42"], ["2", "0"]], ["1", "2"]) == 2
    for bad in ("4.5", "-1", "100000", "x"):
        with pytest.raises(TaskError, match="not an answer of the task"):
            check_submission(task, ["id", "answer"], [["1", bad], ["2", "0"]], ["1", "2"])


def test_the_plan_says_which_engine_samples_and_why():
    """vLLM where installed on a GPU, else transformers; vllm asked for where it cannot run is refused in one line."""
    import dataclasses

    from kit.workspace.kernel_config import make_config, script_settings
    from runtime.plan import PROFILES, Machine, PlanError, make_plan

    config = script_settings(make_config("infer", {"competition": "c", "model": "HuggingFaceTB/SmolLM2-135M-Instruct"}), generated=True)
    h100 = PROFILES["h100"]
    with_vllm = dataclasses.replace(h100, packages={**h100.packages, "vllm": "0.11"})
    assert make_plan(config, with_vllm, "infer").generation.value == "vllm"
    plan = make_plan(config, h100.without("vllm"), "infer")
    assert plan.generation.value == "transformers" and "vLLM is not installed" in plan.generation.reason
    assert "generation" in plan.table()
    assert "no GPU" in make_plan(config, Machine("cpu"), "infer").generation.reason
    with pytest.raises(PlanError, match="vLLM is not installed here; use generation_engine=auto"):
        make_plan({**config, "generation_engine": "vllm"}, h100.without("vllm"), "infer")
    binary = script_settings(make_config("infer", {"competition": "c"}))  # no sampling settings: no such decision
    assert make_plan(binary, Machine("cpu"), "infer").generation is None
