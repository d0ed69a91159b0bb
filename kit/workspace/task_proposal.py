"""`kit init --competition SLUG` proposes the [task] from the competition's files: train's columns, test's columns,
and sample_submission's header and values. What it guessed is said, and what only the competition's pages can say
(the metric above all) is listed for a person to check.

    proposal = propose(folder)          # -> Proposal: the [task] text, the guesses, what to check
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from kit.errors import ConfigError
from kit.task import Task, TaskError, read_header, read_rows
from kit.workspace.task_config import task_toml

ANSWER_CLASSES = 30  # more distinct integer targets than this: a generated answer, not an ordinal score
SAMPLE_ROWS = 2000  # rows of train read to see its labels (enough for the classes of every shape we know)
NAMED_PROMPT_FIELDS = ("question", "answer", "solution")  # what the kernels' named prompts read


@dataclass
class Proposal:
    """A proposed [task]: the table (as kit.toml text and as a dict), each guess with its reason, and the checks."""

    table: dict
    guesses: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)

    def toml(self) -> str:
        """The [task] tables as kit.toml text, with a comment saying it was proposed."""
        return task_toml(self.table, "The competition's task, proposed by kit from its files: check it (kit task propose says what to check).")


def find_file(folder: Path, stem: str) -> Path | None:
    """`stem`.csv or `stem`.parquet in `folder` (the first found), else None."""
    for suffix in (".csv", ".parquet"):
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    return None


def propose(folder: Path, gateway_modules: list[str] | None = None) -> Proposal:
    """The [task] the competition's files in `folder` suggest; ConfigError when train or sample_submission is missing.
    A kaggle_evaluation package among them (or `gateway_modules`, the backend's listing) adds [task.server]."""
    folder = Path(folder)
    train, test = find_file(folder, "train"), find_file(folder, "test")
    sample = find_file(folder, "sample_submission")
    if train is None or sample is None:
        missing = " and ".join(n for n, p in (("train", train), ("sample_submission", sample)) if p is None)
        raise ConfigError(f"{folder} has no {missing} file to propose the task from", hint="kit data (downloads the competition's files), then kit init again")
    try:
        proposal = _propose(train, test, sample)
    except TaskError as exc:
        raise ConfigError(exc.problem, hint=exc.fix) from None
    package = folder / "kaggle_evaluation"
    modules = sorted(p.stem for p in package.glob("*_inference_server.py")) or list(gateway_modules or [])
    if modules:
        _propose_server(proposal, modules, package)
    return proposal


def _propose_server(p: Proposal, modules: list[str], package: Path) -> None:
    """[task.server] for a competition whose files ship kaggle_evaluation: its inference server's module, the gateway's
    deadline where its code says it (set_response_timeout_seconds, or the practice gateway's DEADLINE_SECONDS)."""
    deadline = None
    for path in sorted(package.glob("*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        found = re.search(r"set_response_timeout_seconds\(([\d\s*+]+)\)", text) or re.search(r"^DEADLINE_SECONDS = ([\d\s*+.]+)", text, re.M)
        deadline = _sum_of_products(found.group(1)) if found else None
        if deadline:
            break
    p.table["server"] = {"module": modules[0], "call_seconds": deadline or 3600.0, "run_seconds": 9 * 3600.0, "file": "submission.parquet"}
    p.guesses.append(f"kaggle_evaluation/{modules[0]}.py: an inference-server competition; the gateway calls predict and writes submission.parquet")
    p.checks.append("[task.server]: the deadline per call (call_seconds" + (f", {deadline:g} s from the gateway's code" if deadline else ", 3600 s guessed")
                    + ") and the whole rerun's limit (run_seconds, 9 h guessed): the competition's rules say")


def _sum_of_products(text: str) -> float | None:
    """The value of a gateway's `60 * 30` or `9 * 60 * 60 + 30`: numbers joined by * and +, read without eval (the
    competition's code is not run; `9 ** 99 ** 99` would never end); None for anything else."""
    total = 0.0
    for term in text.split("+"):
        product = 1.0
        for factor in term.split("*"):
            try:
                product *= float(factor)  # an empty factor (`**`) or a stray character is refused here
            except ValueError:
                return None
        total += product
    return total


def _propose(train: Path, test: Path | None, sample: Path) -> Proposal:
    train_cols = read_header(train)
    test_cols = read_header(test) if test is not None else []
    sample_cols = read_header(sample)
    sample_rows = [r for _, r in zip(range(50), read_rows(sample))]
    if len(sample_cols) < 2:
        raise TaskError(f"{sample.name} has {len(sample_cols)} column(s): no id and value to learn the submission from", "check the file")
    id_col, values = sample_cols[0], sample_cols[1:]
    p = Proposal({"train": train.name, "test": test.name if test else "test.csv", "id": id_col})
    p.guesses.append(f"id = {id_col!r}: the first column of {sample.name}")
    target: dict = {}
    submission: dict = {"columns": sample_cols}
    inputs = [c for c in (test_cols or train_cols) if c != id_col and c not in values]
    if len(values) > 1:
        preset, metric = _propose_per_class(p, train, train_cols, test_cols, id_col, values, target, submission)
    else:
        _propose_target(p, train, train_cols, test_cols, id_col, values[0], target)
        cells = [r[values[0]].strip() for r in sample_rows if r.get(values[0], "").strip()]
        preset, metric = _propose_shape(p, sample, cells, _target_values(train, target), target, submission)
    p.table["preset"] = preset
    _propose_prompt(p, train, test, train_cols, test_cols, id_col, inputs, preset, target)
    if target.get("one_hot") or "labels" in target or preset != "binary" or target.get("column") != "is_correct":
        p.table["target"] = target
    p.table["submission"] = submission
    p.table["metric"] = {"name": metric}
    if test is not None and id_col not in test_cols:
        p.checks.append(f"the id: {id_col!r} is not a column of {test.name}")
    Task.from_dict(p.table).check_train_columns(train_cols, train.name)  # the proposal holds together
    p.checks.append("then: kit build train -o build/train shows the kernel this task builds")
    return p


def _propose_per_class(p: Proposal, train: Path, train_cols: list[str], test_cols: list[str], id_col: str, values: list[str],
                       target: dict, submission: dict) -> tuple[str, str]:
    """A submission with one column per class (probabilities): one-hot in train (LMSYS), or classes named by a train
    column. Fills `target` and `submission`; (preset, metric)."""
    preset = "pairwise" if all(v in train_cols for v in values) else "multiclass"
    if all(v in train_cols for v in values):
        target["one_hot"] = values
        p.guesses.append(f"the target is one-hot over {', '.join(values)} (train has each), one probability column per class")
    else:
        column = _label_column(train, train_cols, test_cols, id_col, set(values))
        target.update(kind="multiclass", column=column, labels=values)
        p.guesses.append(f"one probability column per class of {column!r}")
    submission["output"] = "probabilities"
    p.checks.append("the metric: per-class probabilities are most often scored by log loss (LMSYS, LLM Classification Finetuning)")
    return preset, "log_loss"


def _propose_target(p: Proposal, train: Path, train_cols: list[str], test_cols: list[str], id_col: str, value: str, target: dict) -> None:
    """The target of a submission with one value column: train's column of that name, train's columns the name joins
    (MAP's Category:Misconception), else the one column train has and test has not."""
    parts = [c for c in re.split(r"[^A-Za-z0-9_]+", value) if c]
    if value in train_cols:
        target["column"] = value
        p.guesses.append(f"the target is train's {value!r} (the submission's column)")
    elif len(parts) > 1 and all(c in train_cols for c in parts):
        target.update(columns=parts, compose=value.replace(parts[0], "{" + parts[0] + "}", 1).replace(parts[-1], "{" + parts[-1] + "}"))
        p.guesses.append(f"the target is {' and '.join(parts)} joined as {value!r} (the submission's column names them)")
    else:
        column = _label_column(train, train_cols, test_cols, id_col, None)
        target["column"] = column
        p.guesses.append(f"the target is train's {column!r}: the one column train has and test has not")


def _propose_shape(p: Proposal, sample: Path, cells: list[str], train_values: set[str], target: dict, submission: dict) -> tuple[str, str]:
    """The shape of a one-value submission from the sample's `cells` and train's target values: ranked labels, a
    generated answer, a probability, an ordinal score, binary or multi-class labels. (preset, metric)."""
    if any(len(c.split()) > 1 for c in cells):
        k = max(len(c.split()) for c in cells)
        submission.update(output="top_k", k=k)
        p.guesses.append(f"a row submits up to {k} labels separated by spaces (as {sample.name} does), best first")
        p.checks.append(f"the metric: ranked labels are most often scored by MAP@k (LLM Science Exam, MAP): kit guessed map@{k}")
        return "topk", f"map@{k}"
    integers = all(re.fullmatch(r"-?\d+", v) for v in train_values)
    if len(train_values) > ANSWER_CLASSES and integers:
        low = min(int(v) for v in train_values)
        target.update(kind="answer", answer="integer", range=[min(low, 0), max(99999, *(int(v) for v in train_values))], extract="boxed")
        submission["output"] = "answer"
        p.guesses.append(f"{len(train_values)} different integers in train's {target['column']!r}: a generated answer, read from \\boxed{{}}")
        p.checks.append("the answer: its range (AIMO: 0-99999) and how it is read from a completion (extract: boxed, last_integer, after_marker)")
        return "answer", "accuracy"
    if cells and all(_is_probability(c) for c in cells) and not all(c in train_values for c in cells):
        submission["output"] = "probability"
        p.guesses.append(f"a row submits a probability (as {sample.name} does)")
        p.checks.append("the metric: a probability is scored by ROC AUC or log loss; per-group AUC is roc_auc_by:<column> (Jigsaw)")
        return "binary", "roc_auc"
    if len(train_values) > 2 and integers:
        p.guesses.append(f"the target is an integer score ({', '.join(sorted(train_values, key=int))}): ordinal")
        p.checks.append("the metric: integer scores are most often scored by quadratic weighted kappa (Automated Essay Scoring)")
        return "ordinal", "qwk"
    if len(train_values) == 2:
        p.guesses.append(f"two labels in train ({', '.join(sorted(train_values))}): binary")
        p.checks.append("the metric: kit guessed accuracy; a competition may score labels by F1 or probabilities by AUC")
        return "binary", "accuracy"
    p.guesses.append(f"{len(train_values)} labels in train: multi-class, one label a row")
    p.checks.append("the metric: kit guessed accuracy (macro_f1 is the other common one)")
    return "multiclass", "accuracy"


def _propose_prompt(p: Proposal, train: Path, test: Path | None, train_cols: list[str], test_cols: list[str], id_col: str,
                    inputs: list[str], preset: str, target: dict) -> None:
    """The prompt: the kernels' named prompts where the inputs are question, answer and solution, else one line per
    input column both files have (a generated answer asks for a worked solution, taught from train's where it has one)."""
    if set(NAMED_PROMPT_FIELDS) <= set(inputs) and len(inputs) == 3:
        p.guesses.append("the prompt: the kernel's named prompts, which read question, answer and solution")
        return
    fields = [c for c in inputs if c in train_cols]
    if not fields:
        raise TaskError(f"no input column is in both {train.name} and {test.name if test else 'test'}", "write [task] prompt by hand")
    prompt = "\n".join(f"{c}: {{{c}}}" for c in fields) + "\n\nAnswer:"
    if preset == "answer":  # a worked solution is generated: ask for it, and teach it where train has one
        prompt = "\n".join(f"{c}: {{{c}}}" for c in fields) + "\nSolve it step by step; put the final answer in \\boxed{{}}.\nSolution:\n"
        worked = [c for c in train_cols if c not in test_cols and c not in (id_col, target.get("column"))]
        if len(worked) == 1:
            target["completion"] = worked[0]
            p.guesses.append(f"train's {worked[0]!r} is taught as the completion (it should end with the answer in \\boxed{{}})")
    p.table["prompt"] = prompt
    longest = _longest_field(train, fields)
    p.table["shorten"] = longest
    p.guesses.append(f"the prompt reads {', '.join(fields)} (test's columns); {longest!r} is the longest, cut to fit max_seq_length")
    p.checks.append("the prompt: write it as you would ask the question; the label follows its last line")


def _label_column(train: Path, train_cols: list[str], test_cols: list[str], id_col: str, classes: set[str] | None) -> str:
    only_train = [c for c in train_cols if c not in test_cols and c != id_col]
    if classes is not None:
        for column in only_train:
            if {r[column] for _, r in zip(range(SAMPLE_ROWS), read_rows(train, [column]))} <= classes:
                return column
    if len(only_train) == 1:
        return only_train[0]
    raise TaskError(f"cannot tell the target among {train.name}'s columns {only_train or train_cols}",
                    'write [task.target] column = "..." by hand')


def _target_values(train: Path, target: dict) -> set[str]:
    task_target = {"column": target["column"]} if "column" in target else {"columns": target["columns"], "compose": target["compose"]}
    task = Task.from_dict({"preset": "multiclass", "target": task_target})
    return {task.target(r) for _, r in zip(range(SAMPLE_ROWS), read_rows(train, task.target_columns()))}


def _longest_field(train: Path, fields: list[str]) -> str:
    totals = dict.fromkeys(fields, 0)
    for _, row in zip(range(200), read_rows(train, fields)):
        for f in fields:
            totals[f] += len(row[f])
    return max(fields, key=lambda f: totals[f])


def _is_probability(cell: str) -> bool:
    try:
        return 0.0 <= float(cell) <= 1.0
    except ValueError:
        return False



TASK_FILES = ("train", "test", "sample_submission")


def competition_files(ws, data_dir: Path | None = None, download: bool = False) -> tuple[Path | None, str]:
    """The folder holding the competition's train and sample_submission files, and a note on where it came from:
    `data_dir`; else data/SLUG/ (kit data's folder) or the practice competition's data; else, with `download` and
    where the backend lists them, train, test and sample_submission downloaded into data/SLUG/. (None, why) when
    there are none."""
    from kit.errors import KitError

    if data_dir is not None:
        if find_file(Path(data_dir), "train") is None or find_file(Path(data_dir), "sample_submission") is None:
            raise ConfigError(f"{data_dir} has no train and sample_submission files", hint="--data FOLDER with the competition's files (kit data downloads them)")
        return Path(data_dir), f"the files in {data_dir}"
    for folder in (ws.root / "data" / ws.competition, ws.practice_dir / "data"):
        if find_file(folder, "train") is not None and find_file(folder, "sample_submission") is not None:
            return folder, f"the files in {folder}"
    if not download:
        return None, f"no files of {ws.competition} here yet"
    from kit.backends.registry import get_backend
    from kit.workspace.layout import ignore

    try:
        backend = get_backend(ws)
        listed = [f.name for f in backend.data_files()]
        wanted = [n for n in listed if Path(n).stem in TASK_FILES and Path(n).suffix in (".csv", ".parquet")]
        if not {Path(n).stem for n in wanted} >= {"train", "sample_submission"}:
            return None, f"{ws.competition} lists no train and sample_submission files"
        dest = ws.root / "data" / ws.competition
        ignore(ws.root / ".gitignore", ["data/"])
        for name in wanted:
            backend.download_data(name, dest)
    except KitError as exc:
        return None, f"the files of {ws.competition} could not be read: {exc.message}"
    return dest, f"{', '.join(sorted(wanted))} downloaded into {dest}"


def propose_task(root: Path, data_dir: Path | None = None, download: bool = False) -> tuple[Proposal | None, str]:
    """The [task] the competition's files suggest for the workspace at `root` (None where there are no files), and a
    note on the files it read."""
    from kit.workspace import layout

    ws = layout.load(root)
    folder, note = competition_files(ws, data_dir, download)
    modules = None
    if folder is not None and download and not (folder / "kaggle_evaluation").is_dir():
        from kit.backends.registry import get_backend

        modules = get_backend(ws).gateway_modules()  # the listing names kaggle_evaluation's files
    return (propose(folder, modules) if folder is not None else None), note


def write_task(root: Path, proposal: Proposal) -> Path:
    """Add the proposed [task] to kit.toml, checked by loading the workspace again (kit.toml is left as it was when
    it does not load); refused where kit.toml has a [task] already."""
    from kit.workspace import layout

    ws = layout.load(root)
    path = ws.root / layout.WORKSPACE_FILE
    if ws.task_table is not None:
        raise ConfigError(f"{path} has a [task] already", hint="edit it, or delete it and run kit task propose --write again")
    return layout.rewrite_checked(ws.root, path.read_text(encoding="utf-8").rstrip("\n") + "\n" + proposal.toml())
