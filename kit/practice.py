"""The practice competition: a Kaggle-like math-answer-verification competition on disk, for the local backend.

`generate` makes synthetic rows shaped like the real data (question, answer, solution, is_correct): word problems
solved with a short Python block and its output, about 40% of them correct. The wrong ones carry the kinds of
mistakes the real data has, from easy to spot (the answer disagrees with the code's output) to hard (a wrong step
whose output then follows consistently, so only re-checking the arithmetic or the question finds it).

`init_practice` writes the competition (data/, hidden/solution.csv with a fixed public/private split,
competition.json, submissions.json); `PracticeCompetition` scores submissions against it like Kaggle does: public
accuracy at once, private accuracy only after `close()`, a daily limit per UTC day that failed submissions don't use.

With `code=True` it is a code competition, as most LLM competitions on Kaggle are: data/test.csv holds only a few
visible rows, the whole test set is in hidden/, and a submission is a kernel, which kit.practice_rerun runs again
on the hidden rows (internet off, within the rerun time limit) before the file it writes is scored.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from kit.errors import KitError, SubmissionError, SubmissionLimitError, WorkspaceError
from kit.fileio import atomic_write_json, atomic_write_text, locked

TRAIN_COLUMNS = ("question", "answer", "solution", "is_correct")
TEST_COLUMNS = ("ID", "question", "answer", "solution")
SUBMISSION_COLUMNS = ("ID", "is_correct")
SOLUTION_COLUMNS = ("ID", "is_correct", "Usage")

CORRECT_FRACTION = 0.4
# Error kinds of the wrong rows and their weights. The first two show in the text (the answer or the printed output
# disagrees with the code); the last three are consistent on their face and need re-checking against the question.
ERROR_WEIGHTS = {
    "wrong_answer": 0.25,  # code and output right, the final answer is not
    "output_slip": 0.20,  # the printed output does not match what the code computes; the answer follows the output
    "wrong_step": 0.30,  # one step of the code is wrong (operator, variable, dropped factor); output follows it
    "misread_number": 0.15,  # a number in the code differs from the question's; output follows it
    "intermediate": 0.10,  # the code stops at an intermediate value and that value is given as the answer
}


# --------------------------------------------------------------------------------------------------- generation


@dataclass(frozen=True)
class Example:
    """One generated row; `family` and `error` ("" when correct) are for analysis and are not written to the CSVs."""

    question: str
    answer: str
    solution: str
    is_correct: bool
    family: str
    error: str


@dataclass(frozen=True)
class _Problem:
    question: str
    steps: tuple[tuple[str, str], ...]  # (variable, expression) in order; the last variable is the result
    conclusion: str  # the "Thus ..." sentence with ANSWER where the boxed value goes


NAMES = (
    ("Paul", "he"), ("Maria", "she"), ("James", "he"), ("Aisha", "she"), ("Chen", "he"), ("Sofia", "she"),
    ("Omar", "he"), ("Emma", "she"), ("Lucas", "he"), ("Priya", "she"), ("Noah", "he"), ("Hana", "she"),
    ("Diego", "he"), ("Grace", "she"), ("Mateo", "he"), ("Zoe", "she"), ("Ivan", "he"), ("Lena", "she"),
    ("Kofi", "he"), ("Mia", "she"), ("Ethan", "he"), ("Nora", "she"), ("Ravi", "he"), ("Julia", "she"),
)


def _person(rng: random.Random, *avoid: str) -> tuple[str, str]:
    while True:
        name, pronoun = rng.choice(NAMES)
        if name not in avoid:
            return name, pronoun


def _shopping(rng: random.Random) -> _Problem:
    name, he = _person(rng)
    (item1, item2) = rng.sample(["shirts", "notebooks", "mugs", "books", "pairs of socks", "candles", "plates"], 2)
    n1, n2 = rng.randint(2, 8), rng.randint(2, 5)
    p1, p2 = rng.choice([4, 5, 6, 8, 10, 12, 15, 20, 25]), rng.choice([3, 5, 7, 9, 12, 18, 30, 40])
    discount = rng.choice([10, 20, 25, 30, 50])
    return _Problem(
        f"{name} buys {n1} {item1} at ${p1} each and {n2} {item2} at ${p2} each. The store takes {discount}% off the "
        f"whole purchase at the register. How much does {name} pay, in dollars?",
        (
            ("first_item_count", f"{n1}"),
            ("first_item_price", f"{p1}"),
            ("second_item_count", f"{n2}"),
            ("second_item_price", f"{p2}"),
            ("total_before_discount", "first_item_count * first_item_price + second_item_count * second_item_price"),
            ("discount_portion", f"{discount} / 100"),
            ("discount_amount", "total_before_discount * discount_portion"),
            ("amount_paid", "total_before_discount - discount_amount"),
        ),
        f"Thus {name} pays \\boxed{{ANSWER}} dollars.",
    )


def _travel(rng: random.Random) -> _Problem:
    name, he = _person(rng)
    v1, h1 = rng.choice([40, 45, 50, 55, 60, 65]), rng.randint(2, 4)
    v2, h2 = rng.choice([30, 35, 40, 50]), rng.randint(1, 3)
    trip = v1 * h1 + v2 * h2 + rng.choice([20, 35, 50, 75, 100, 120])
    return _Problem(
        f"{name} is driving to a town {trip} miles away. {he.capitalize()} drives at {v1} miles per hour for {h1} "
        f"hours, then hits traffic and drives at {v2} miles per hour for {h2} hours. How many miles does {name} "
        f"still have to drive?",
        (
            ("trip_length", f"{trip}"),
            ("first_speed", f"{v1}"),
            ("first_hours", f"{h1}"),
            ("second_speed", f"{v2}"),
            ("second_hours", f"{h2}"),
            ("first_leg", "first_speed * first_hours"),
            ("second_leg", "second_speed * second_hours"),
            ("miles_driven", "first_leg + second_leg"),
            ("miles_left", "trip_length - miles_driven"),
        ),
        f"Thus {name} still has \\boxed{{ANSWER}} miles to drive.",
    )


def _percentages(rng: random.Random) -> _Problem:
    group, sub, subsub = rng.choice(
        [("students", "sing in the choir", "sopranos"), ("employees", "work remotely", "engineers"),
         ("members", "play tennis", "beginners")]
    )
    place = {"students": "a school", "employees": "a company", "members": "a sports club"}[group]
    total = rng.choice([200, 300, 400, 500, 600, 800, 1000, 1200])
    p = rng.choice([10, 20, 25, 30, 40, 50])
    q = rng.choice([10, 20, 25, 50, 75])
    return _Problem(
        f"There are {total} {group} in {place}. {p}% of them {sub}, and {q}% of those are {subsub}. How many of the "
        f"{group} who {sub} are not {subsub}?",
        (
            ("total_people", f"{total}"),
            ("share_in_group", f"{p} / 100"),
            ("people_in_group", "total_people * share_in_group"),
            ("share_of_subgroup", f"{q} / 100"),
            ("people_in_subgroup", "people_in_group * share_of_subgroup"),
            ("people_not_in_subgroup", "people_in_group - people_in_subgroup"),
        ),
        f"Thus \\boxed{{ANSWER}} of the {group} who {sub} are not {subsub}.",
    )


def _garden(rng: random.Random) -> _Problem:
    name, he = _person(rng)
    length, width = rng.randint(6, 30), rng.randint(4, 20)
    fence, seed = rng.choice([2, 3, 4, 5, 8, 10]), rng.choice([1, 2, 3])
    return _Problem(
        f"{name}'s rectangular garden is {length} meters long and {width} meters wide. {he.capitalize()} puts a fence "
        f"around it that costs ${fence} per meter and covers the whole garden with grass seed that costs ${seed} per "
        f"square meter. How much does {he} spend in total?",
        (
            ("length", f"{length}"),
            ("width", f"{width}"),
            ("perimeter", "2 * (length + width)"),
            ("fence_price_per_meter", f"{fence}"),
            ("fence_cost", "perimeter * fence_price_per_meter"),
            ("area", "length * width"),
            ("seed_price_per_square_meter", f"{seed}"),
            ("seed_cost", "area * seed_price_per_square_meter"),
            ("total_cost", "fence_cost + seed_cost"),
        ),
        f"Thus {name} spends \\boxed{{ANSWER}} dollars on the garden.",
    )


def _ages(rng: random.Random) -> _Problem:
    a, _ = _person(rng)
    b, _ = _person(rng, a)
    c, _ = _person(rng, a, b)
    young, times, older, years = rng.randint(3, 12), rng.randint(2, 4), rng.randint(2, 9), rng.randint(2, 10)
    return _Problem(
        f"{a} is {older} years older than {b}. {b} is {times} times as old as {c}, who is {young} years old. What "
        f"will be the sum of their three ages in {years} years?",
        (
            ("youngest_age", f"{young}"),
            ("middle_age", f"{times} * youngest_age"),
            ("oldest_age", f"middle_age + {older}"),
            ("sum_of_ages_now", "youngest_age + middle_age + oldest_age"),
            ("years_later", f"{years}"),
            ("sum_of_ages_later", "sum_of_ages_now + 3 * years_later"),
        ),
        f"Thus in {years} years the sum of their ages will be \\boxed{{ANSWER}}.",
    )


def _sharing(rng: random.Random) -> _Problem:
    name, he = _person(rng)
    friend, _ = _person(rng, name)
    thing = rng.choice(["stickers", "marbles", "cookies", "pencils", "trading cards"])
    denominator = rng.choice([2, 3, 4, 5])
    fraction = {2: "half", 3: "a third", 4: "a quarter", 5: "a fifth"}[denominator]
    classmates = rng.choice([2, 3, 4, 5, 6, 8])
    # a multiple of denominator * classmates, so both the friend's share and the rest split into whole numbers
    total = denominator * classmates * rng.randint(1, 6)
    return _Problem(
        f"{name} has {total} {thing}. {he.capitalize()} gives {fraction} of them to {friend} and shares the rest "
        f"equally among {classmates} classmates. How many {thing} does each classmate get?",
        (
            ("total_items", f"{total}"),
            ("given_to_friend", f"total_items / {denominator}"),
            ("items_left", "total_items - given_to_friend"),
            ("classmates", f"{classmates}"),
            ("items_per_classmate", "items_left / classmates"),
        ),
        f"Thus each classmate gets \\boxed{{ANSWER}} {thing}.",
    )


def _units(rng: random.Random) -> _Problem:
    name, he = _person(rng)
    if rng.random() < 0.5:
        weekday, weekend, weeks = rng.randint(2, 8), rng.randint(5, 15), rng.randint(2, 6)
        return _Problem(
            f"{name} runs {weekday} kilometers on each weekday and {weekend} kilometers on each day of the weekend. "
            f"How many meters does {he} run in {weeks} weeks?",
            (
                ("weekday_km", f"{weekday}"),
                ("weekend_km", f"{weekend}"),
                ("km_per_week", "5 * weekday_km + 2 * weekend_km"),
                ("weeks", f"{weeks}"),
                ("total_km", "km_per_week * weeks"),
                ("meters_per_km", "1000"),
                ("total_meters", "total_km * meters_per_km"),
            ),
            f"Thus {name} runs \\boxed{{ANSWER}} meters.",
        )
    hours, minutes, times = rng.randint(1, 3), rng.choice([5, 10, 15, 20, 25, 30, 40, 45, 50]), rng.randint(2, 6)
    show = rng.choice(["movie", "concert recording", "documentary", "play"])
    return _Problem(
        f"A {show} lasts {hours} hours and {minutes} minutes. {name} watches it {times} times this month. How many "
        f"minutes does {he} spend watching it?",
        (
            ("minutes_per_hour", "60"),
            ("hours", f"{hours}"),
            ("extra_minutes", f"{minutes}"),
            ("length_in_minutes", "hours * minutes_per_hour + extra_minutes"),
            ("times_watched", f"{times}"),
            ("total_minutes", "length_in_minutes * times_watched"),
        ),
        f"Thus {name} spends \\boxed{{ANSWER}} minutes watching the {show}.",
    )


def _fish_food(rng: random.Random) -> _Problem:
    animal = rng.choice(["goldfish", "koi", "rabbits", "chickens", "parrots"])
    place = {"goldfish": "pond", "koi": "pond", "rabbits": "farm", "chickens": "farm", "parrots": "aviary"}[animal]
    count = rng.choice([20, 30, 40, 50, 60, 80, 100])
    food = rng.choice([0.5, 1, 1.5, 2, 2.5, 3])
    share = rng.choice([10, 20, 25, 30, 40, 50])
    price = rng.choice([2, 3, 4, 5, 6])
    days = rng.choice([1, 7, 10, 30])
    period = "per day" if days == 1 else f"for {days} days"
    return _Problem(
        f"There are {count} {animal} at the {place}. Each one eats {food} ounces of food per day. {share}% of the "
        f"{animal} need a special food that costs ${price} an ounce. How much does the special food cost {period}?",
        (
            ("animal_count", f"{count}"),
            ("ounces_per_animal_per_day", f"{food}"),
            ("animals_on_special_diet", f"animal_count * {share / 100}"),
            ("special_ounces_per_day", "animals_on_special_diet * ounces_per_animal_per_day"),
            ("price_per_ounce", f"{price}"),
            ("cost_per_day", "special_ounces_per_day * price_per_ounce"),
            ("days", f"{days}"),
            ("total_cost", "cost_per_day * days"),
        ),
        f"Thus the special food costs \\boxed{{ANSWER}} dollars {period}.",
    )


def _savings(rng: random.Random) -> _Problem:
    name, he = _person(rng)
    wage, hours, days = rng.choice([10, 12, 15, 18, 20, 25]), rng.randint(3, 8), rng.randint(2, 6)
    rent, weeks = rng.choice([20, 25, 30, 40, 50]), rng.randint(2, 8)
    return _Problem(
        f"{name} earns ${wage} an hour and works {hours} hours a day, {days} days a week. Each week {he} spends "
        f"{rent}% of {'his' if he == 'he' else 'her'} pay on rent and saves the rest. How much does {name} save in "
        f"{weeks} weeks?",
        (
            ("hourly_wage", f"{wage}"),
            ("hours_per_day", f"{hours}"),
            ("days_per_week", f"{days}"),
            ("weekly_pay", "hourly_wage * hours_per_day * days_per_week"),
            ("rent_share", f"{rent} / 100"),
            ("weekly_savings", "weekly_pay - weekly_pay * rent_share"),
            ("weeks", f"{weeks}"),
            ("total_savings", "weekly_savings * weeks"),
        ),
        f"Thus {name} saves \\boxed{{ANSWER}} dollars.",
    )


def _schedule(rng: random.Random) -> _Problem:
    name, he = _person(rng)
    leave = rng.randint(5, 8)
    start_hour, start_minute = rng.randint(1, leave - 3), rng.choice([0, 15, 30, 45])
    tasks = [rng.choice([15, 20, 25, 30, 40, 45]) for _ in range(3)]
    return _Problem(
        f"{name} has to leave for a party at {leave} pm. {he.capitalize()} starts getting ready at "
        f"{start_hour}:{start_minute:02d} pm. {he.capitalize()} spends {tasks[0]} minutes cleaning, {tasks[1]} minutes "
        f"cooking and {tasks[2]} minutes wrapping a present. How many minutes does {he} have left to get dressed?",
        (
            ("minutes_per_hour", "60"),
            ("start_in_minutes", f"{start_hour} * minutes_per_hour + {start_minute}"),
            ("leave_in_minutes", f"{leave} * minutes_per_hour"),
            ("minutes_available", "leave_in_minutes - start_in_minutes"),
            ("minutes_on_tasks", f"{tasks[0]} + {tasks[1]} + {tasks[2]}"),
            ("minutes_left", "minutes_available - minutes_on_tasks"),
        ),
        f"Thus {name} has \\boxed{{ANSWER}} minutes left to get dressed.",
    )


FAMILIES: dict[str, Callable[[random.Random], _Problem]] = {
    "shopping": _shopping,
    "travel": _travel,
    "percentages": _percentages,
    "garden": _garden,
    "ages": _ages,
    "sharing": _sharing,
    "units": _units,
    "fish_food": _fish_food,
    "savings": _savings,
    "schedule": _schedule,
}

_LITERAL = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")
_NAME = re.compile(r"\b[a-z_][a-z_]*\b")
_OPERATOR = re.compile(r" ([-+*/]) ")
_SWAPPED = {"+": "-", "-": "+", "*": "/", "/": "*"}


def _run(steps: tuple[tuple[str, str], ...]) -> dict[str, float]:
    """Execute the steps like the Python the solution shows; the values are what its print-out would be."""
    scope: dict[str, float] = {}
    for name, expr in steps:
        scope[name] = eval(expr, {"__builtins__": {}}, scope)  # only our own generated arithmetic
    return scope


def format_answer(value: float) -> str:
    """The `answer` column's spelling of a value: "45" for 45.0, "3.5", at most two decimals."""
    if abs(value - round(value)) < 1e-9:
        return str(int(round(value)))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _output_text(value: float) -> str:
    return repr(value)


def _perturb(rng: random.Random, value: float) -> float:
    """A plausible wrong number near `value`: off by a little, by a factor of ten, or by a slipped digit."""
    whole = abs(value - round(value)) < 1e-9
    for _ in range(20):
        kind = rng.random()
        if kind < 0.5:
            delta = max(1, round(abs(value) * rng.uniform(0.02, 0.3)))
            step = 10 ** max(0, len(str(int(abs(value)))) - 2)  # 188000 becomes 152000, not 152083
            delta = max(step, round(delta / step) * step)
            wrong = value + rng.choice([-1, 1]) * delta
        elif kind < 0.65:
            wrong = value * rng.choice([10, 0.1, 2, 0.5])
        elif kind < 0.85:
            digits = list(str(int(round(abs(value)))))
            if len(digits) < 2:
                continue
            i = rng.randrange(len(digits) - 1)
            digits[i], digits[i + 1] = digits[i + 1], digits[i]
            wrong = float("".join(digits)) * (1 if value >= 0 else -1)
        else:
            wrong = value + rng.choice([-10, 10, -100, 100, -5, 5])
        if isinstance(value, float) and whole:
            wrong = float(round(wrong))
        elif isinstance(value, float):
            wrong = round(wrong, 4)  # a slip looks like a plausible print-out, not 0.35000000000000003
        elif isinstance(value, int):
            wrong = int(round(wrong))
        if format_answer(wrong) != format_answer(value):
            return wrong
    return value + 1


def _mutate_step(rng: random.Random, steps: tuple[tuple[str, str], ...], kind: str) -> tuple[tuple[str, str], ...] | None:
    """One plausible mistake in the code: a swapped operator, a wrong variable, a dropped factor, a misread number."""
    names = [name for name, _ in steps]
    candidates = []
    for i, (name, expr) in enumerate(steps):
        if kind == "misread_number":
            # the numbers copied from the question (and unit constants like 60 or 1000)
            candidates += [(i, "literal", m) for m in _LITERAL.finditer(expr)]
            continue
        if not _NAME.search(expr):
            continue
        candidates += [(i, "operator", m) for m in _OPERATOR.finditer(expr)]
        candidates += [(i, "variable", m) for m in _NAME.finditer(expr) if m.group() in names[:i]]
        candidates += [(i, "factor", m) for m in re.finditer(r"\w+(?:\.\d+)? \* ", expr)]
    if not candidates:
        return None
    i, how, match = rng.choice(candidates)
    name, expr = steps[i]
    if how == "literal":
        text = match.group()
        number = float(text) if "." in text else int(text)
        wrong = _perturb(rng, number)
        replacement = repr(wrong) if isinstance(wrong, float) else str(wrong)
        if isinstance(wrong, float) and wrong <= 0 or isinstance(wrong, int) and wrong <= 0:
            return None
    elif how == "operator":
        replacement = f" {_SWAPPED[match.group(1)]} "
    elif how == "variable":
        others = [n for n in names[:i] if n != match.group()]
        if not others:
            return None
        replacement = rng.choice(others)
    else:
        replacement = ""
    new_expr = expr[: match.start()] + replacement + expr[match.end():]
    return steps[:i] + ((name, new_expr),) + steps[i + 1:]


def _render(steps: tuple[tuple[str, str], ...], shown_variable: str, output: str, conclusion: str, boxed: str) -> str:
    code = "\n".join(f"{name} = {expr}" for name, expr in steps) + f"\n{shown_variable}"
    return (
        "Let's solve this problem using Python code.\n"
        f"<llm-code>\n{code}\n</llm-code>\n"
        f"<llm-code-output>\n{output}\n</llm-code-output>\n"
        f"{conclusion.replace('ANSWER', boxed)}"
    )


def _example(rng: random.Random) -> Example:
    family = rng.choice(sorted(FAMILIES))
    problem = FAMILIES[family](rng)
    steps = problem.steps
    final = steps[-1][0]
    truth = _run(steps)[final]
    if rng.random() < CORRECT_FRACTION:
        answer = format_answer(truth)
        solution = _render(steps, final, _output_text(truth), problem.conclusion, answer)
        return Example(problem.question, answer, solution, True, family, "")
    error = rng.choices(list(ERROR_WEIGHTS), weights=list(ERROR_WEIGHTS.values()))[0]
    if error == "wrong_answer":
        answer = format_answer(_perturb(rng, truth))
        # mostly the boxed value is wrong too; sometimes only the given answer disagrees with a right solution
        boxed = answer if rng.random() < 0.7 else format_answer(truth)
        solution = _render(steps, final, _output_text(truth), problem.conclusion, boxed)
        return Example(problem.question, answer, solution, False, family, error)
    if error == "output_slip":
        shown = _perturb(rng, truth)
        answer = format_answer(shown)
        solution = _render(steps, final, _output_text(shown), problem.conclusion, answer)
        return Example(problem.question, answer, solution, False, family, error)
    if error == "intermediate":
        values = _run(steps)
        computed = [name for name, expr in steps[:-1] if _NAME.search(expr)
                    and format_answer(values[name]) != format_answer(truth)]
        if computed:
            shown_variable = rng.choice(computed)
            kept = steps[: [name for name, _ in steps].index(shown_variable) + 1]
            answer = format_answer(values[shown_variable])
            solution = _render(kept, shown_variable, _output_text(values[shown_variable]), problem.conclusion, answer)
            return Example(problem.question, answer, solution, False, family, error)
        error = "wrong_step"
    for _ in range(30):  # wrong_step and misread_number: the output follows the wrong code consistently
        wrong_steps = _mutate_step(rng, steps, error)
        if wrong_steps is None:
            continue
        try:
            value = _run(wrong_steps)[final]
        except ZeroDivisionError:
            continue
        if format_answer(value) != format_answer(truth):
            answer = format_answer(value)
            solution = _render(wrong_steps, final, _output_text(value), problem.conclusion, answer)
            return Example(problem.question, answer, solution, False, family, error)
    answer = format_answer(_perturb(rng, truth))  # no mistake changed the result: fall back to a wrong answer
    solution = _render(steps, final, _output_text(truth), problem.conclusion, answer)
    return Example(problem.question, answer, solution, False, family, "wrong_answer")


def generate(seed: int, n_train: int, n_test: int) -> tuple[list[Example], list[Example]]:
    """Synthetic train and test rows, the same for the same seed; about 40% of each are correct."""
    rng = random.Random(seed)
    rows = [_example(rng) for _ in range(n_train + n_test)]
    return rows[:n_train], rows[n_train:]


# --------------------------------------------------------------------------------------------------- competition

COMPETITION_FILE = "competition.json"
SUBMISSIONS_FILE = "submissions.json"
VISIBLE_TEST_ROWS = 5  # code competitions: test rows a kernel sees before its rerun, as Kaggle shows a few
DEFAULT_RERUN_SECONDS = 9 * 3600  # Kaggle's usual code-competition limit


def _csv_text(header: tuple[str, ...], rows: list[tuple]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def init_practice(
    directory: Path,
    slug: str = "practice-math",
    seed: int = 0,
    n_train: int = 20000,
    n_test: int = 2000,
    public_fraction: float = 0.5,
    daily_limit: int = 5,
    force: bool = False,
    code: bool = False,
    rerun_seconds: int = DEFAULT_RERUN_SECONDS,
) -> PracticeCompetition:
    """Write a practice competition (data, hidden solution, empty submissions) into `directory`; with `code`, a code
    competition whose kernels are rerun on the hidden test rows within `rerun_seconds`."""
    directory = Path(directory)
    if (directory / COMPETITION_FILE).exists() and not force:
        raise WorkspaceError(
            f"a practice competition already exists in {directory}",
            hint="use it as it is, or pass --force to replace it (its submissions are lost)",
        )
    if n_test < 2 or n_train < 1:
        raise KitError(f"bad sizes: n_train={n_train}, n_test={n_test}", hint="use n_train >= 1 and n_test >= 2")
    if not 0 < public_fraction < 1:
        raise KitError(f"bad public_fraction {public_fraction}", hint="use a fraction between 0 and 1, e.g. 0.5")
    if daily_limit < 1:
        raise KitError(f"bad daily_limit {daily_limit}", hint="use a daily limit of at least 1")
    if code and rerun_seconds < 1:
        raise KitError(f"bad rerun limit {rerun_seconds} s", hint="give the rerun at least 1 second, e.g. --rerun-limit 600")
    train, test = generate(seed, n_train, n_test)
    data_dir, hidden_dir = directory / "data", directory / "hidden"
    atomic_write_text(
        data_dir / "train.csv",
        _csv_text(TRAIN_COLUMNS, [(r.question, r.answer, r.solution, str(r.is_correct)) for r in train]),
    )
    test_rows = [(i, r.question, r.answer, r.solution) for i, r in enumerate(test)]
    # A code competition shows its kernels only a few test rows; the whole test set waits in hidden/ for the rerun.
    visible = test_rows[:VISIBLE_TEST_ROWS] if code else test_rows
    atomic_write_text(data_dir / "test.csv", _csv_text(TEST_COLUMNS, visible))
    atomic_write_text(data_dir / "sample_submission.csv", _csv_text(SUBMISSION_COLUMNS, [(row[0], "True") for row in visible]))
    if code:
        atomic_write_text(hidden_dir / "test.csv", _csv_text(TEST_COLUMNS, test_rows))
        atomic_write_text(hidden_dir / "sample_submission.csv", _csv_text(SUBMISSION_COLUMNS, [(i, "True") for i in range(n_test)]))
    # the public/private split, fixed by the seed but independent of the row order
    public_rows = max(1, min(n_test - 1, round(n_test * public_fraction)))
    public_ids = set(random.Random(f"{seed}-split").sample(range(n_test), public_rows))
    atomic_write_text(
        hidden_dir / "solution.csv",
        _csv_text(
            SOLUTION_COLUMNS,
            [(i, str(r.is_correct), "Public" if i in public_ids else "Private") for i, r in enumerate(test)],
        ),
    )
    atomic_write_json(directory / SUBMISSIONS_FILE, {"submissions": []})
    atomic_write_json(
        directory / COMPETITION_FILE,
        {
            "slug": slug,
            "seed": seed,
            "n_train": n_train,
            "n_test": n_test,
            "public_rows": public_rows,
            "public_fraction": public_fraction,
            "daily_limit": daily_limit,
            "code": code,
            "rerun_seconds": rerun_seconds if code else None,
            "closed": False,
            "created": _utc_now().replace(microsecond=0).isoformat(),
            "closed_at": None,
        },
    )
    return PracticeCompetition(directory)


@dataclass(frozen=True)
class PracticeSubmission:
    """A submission as the practice competition reports it; `private_score` is None until the competition closes."""

    ref: str
    date: str  # ISO-8601, UTC
    description: str
    file_name: str
    # "complete"; a file that cannot be scored is refused and not recorded. Code competitions: "pending" until the
    # rerun ends, "error" when it fails (the error says why; a failed rerun uses none of the day's submissions).
    status: str
    public_score: float | None
    private_score: float | None
    late: bool = False  # made after close(); scored, as Kaggle scores late submissions
    error: str = ""
    size: int | None = None  # the file's size in bytes, as Kaggle lists it (None for records from before kit kept it)


class PracticeCompetition:
    """A practice competition on disk: its data, and the submissions scored against its hidden solution."""

    def __init__(self, directory: Path, clock: Callable[[], datetime] = _utc_now):
        self.directory = Path(directory)
        self._clock = clock  # tests move the day forward; the limit resets at 00:00 UTC
        meta_path = self.directory / COMPETITION_FILE
        if not meta_path.is_file():
            raise KitError(f"no practice competition in {self.directory}", hint="kit practice init")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise WorkspaceError(f"{meta_path} cannot be read: {exc}", hint="kit practice init --force") from None
        self.slug: str = meta["slug"]
        self.public_rows: int = int(meta["public_rows"])
        self.daily_limit: int = int(meta["daily_limit"])
        self.code: bool = bool(meta.get("code", False))
        self.rerun_seconds: float = float(meta.get("rerun_seconds") or DEFAULT_RERUN_SECONDS)
        self._solution: dict[str, tuple[bool, bool]] | None = None  # ID -> (is_correct, public)

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def closed(self) -> bool:
        """Whether close() has run; read from disk each time, since another process may close it."""
        return bool(self._meta().get("closed"))

    def _meta(self) -> dict:
        return json.loads((self.directory / COMPETITION_FILE).read_text(encoding="utf-8"))

    def _load_solution(self) -> dict[str, tuple[bool, bool]]:
        if self._solution is None:
            path = self.directory / "hidden" / "solution.csv"
            if not path.is_file():
                raise KitError(f"{path} is missing", hint="kit practice init --force")
            with open(path, newline="", encoding="utf-8") as fh:
                self._solution = {
                    row["ID"]: (row["is_correct"] == "True", row["Usage"] == "Public") for row in csv.DictReader(fh)
                }
        return self._solution

    def score(self, csv_path: Path) -> tuple[float, float]:
        """Public and private accuracy of a submission file; SubmissionError if it cannot be scored."""
        csv_path = Path(csv_path)
        solution = self._load_solution()
        try:
            text = csv_path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise SubmissionError(f"cannot read {csv_path}: {exc}", hint="submit a UTF-8 CSV with columns ID,is_correct") from None
        reader = csv.DictReader(io.StringIO(text))
        missing = [c for c in SUBMISSION_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise SubmissionError(
                f"{csv_path.name}: no column {missing[0]!r} (header: {','.join(reader.fieldnames or [])})",
                hint="the header must be ID,is_correct, as in data/sample_submission.csv",
            )
        predictions: dict[str, bool] = {}
        for line, row in enumerate(reader, start=2):
            row_id = (row["ID"] or "").strip()
            value = (row["is_correct"] or "").strip().lower()
            if value not in ("true", "false"):
                raise SubmissionError(
                    f"{csv_path.name} line {line}: is_correct {row['is_correct']!r} is not True or False",
                    hint="write True or False in every row",
                )
            if row_id not in solution:
                raise SubmissionError(f"{csv_path.name} line {line}: unknown ID {row_id!r}", hint="use the IDs of data/test.csv")
            if row_id in predictions:
                raise SubmissionError(f"{csv_path.name} line {line}: ID {row_id} appears twice", hint="write each ID once")
            predictions[row_id] = value == "true"
        if len(predictions) != len(solution):
            absent = next(i for i in solution if i not in predictions)
            raise SubmissionError(
                f"{csv_path.name}: {len(solution) - len(predictions)} of {len(solution)} test IDs missing (e.g. {absent})",
                hint="predict every row of data/test.csv",
            )
        right = {True: 0, False: 0}
        for row_id, (label, public) in solution.items():
            right[public] += predictions[row_id] == label
        private_rows = len(solution) - self.public_rows
        return round(right[True] / self.public_rows, 5), round(right[False] / private_rows, 5)

    def _read_records(self) -> list[dict]:
        path = self.directory / SUBMISSIONS_FILE
        if not path.exists():
            return []
        return json.loads(path.read_text(encoding="utf-8"))["submissions"]

    def _used_today(self, records: list[dict]) -> int:
        today = self._clock().astimezone(timezone.utc).date()
        return sum(1 for r in records if r["status"] != "error" and datetime.fromisoformat(r["date"]).astimezone(timezone.utc).date() == today)

    def _view(self, record: dict, closed: bool) -> PracticeSubmission:
        return PracticeSubmission(
            ref=record["ref"],
            date=record["date"],
            description=record["description"],
            file_name=record["file_name"],
            status=record["status"],
            public_score=record["public_score"],
            private_score=record["private_score"] if closed else None,
            late=record.get("late", False),
            error=record.get("error", ""),
            size=record.get("size"),
        )

    def submit(self, csv_path: Path, message: str) -> PracticeSubmission:
        """Score `csv_path` and record it; SubmissionLimitError when today's submissions are used up."""
        if self.code:
            raise SubmissionError(f"{self.slug} is a code competition: it takes kernels, not files",
                                  hint="kit submit RUN submits the run's kernel, which is rerun on the hidden test set")
        csv_path = Path(csv_path)
        public, private = self.score(csv_path)  # a file that cannot be scored raises here and is never counted
        path = self.directory / SUBMISSIONS_FILE
        with locked(path):
            records = self._read_records()
            if self._used_today(records) >= self.daily_limit:
                raise SubmissionLimitError(
                    f"the {self.daily_limit} submissions of today (UTC) are used",
                    hint="submit again after 00:00 UTC",
                )
            closed = self.closed
            record = {
                "ref": str(max((int(r["ref"]) for r in records), default=0) + 1),
                "date": self._clock().astimezone(timezone.utc).replace(microsecond=0).isoformat(),
                "description": message,
                "file_name": csv_path.name,
                "size": csv_path.stat().st_size,
                "status": "complete",
                "public_score": public,
                "private_score": private,
                "late": closed,
            }
            atomic_write_json(path, {"submissions": records + [record]})
        return self._view(record, closed)

    def submit_code(self, kernel_dir: Path, sources: dict[str, Path], file_name: str, message: str) -> PracticeSubmission:
        """Record a pending code submission of the kernel in `kernel_dir` and start its rerun on the hidden test
        rows (kit.practice_rerun, a detached process); `sources` are its attached inputs by folder name. The rerun
        scores the `file_name` the kernel writes and completes the record."""
        from kit import practice_rerun

        if not self.code:
            raise SubmissionError(f"{self.slug} is not a code competition: it takes files",
                                  hint="kit practice init --code --force makes a code competition (its submissions are lost)")
        path = self.directory / SUBMISSIONS_FILE
        with locked(path):
            records = self._read_records()
            if self._used_today(records) >= self.daily_limit:
                raise SubmissionLimitError(f"the {self.daily_limit} submissions of today (UTC) are used", hint="submit again after 00:00 UTC")
            closed = self.closed
            record = {
                "ref": str(max((int(r["ref"]) for r in records), default=0) + 1),
                "date": self._clock().astimezone(timezone.utc).replace(microsecond=0).isoformat(),
                "description": message,
                "file_name": file_name,
                "status": "pending",
                "public_score": None,
                "private_score": None,
                "late": closed,
                "kernel": str(kernel_dir),
            }
            practice_rerun.lay_out(self, record["ref"], Path(kernel_dir), sources)
            atomic_write_json(path, {"submissions": records + [record]})
        practice_rerun.start(self, record["ref"])
        return self._view(record, closed)

    def finish_rerun(self, ref: str, scores: tuple[float, float] | None, error: str) -> None:
        """Complete pending submission `ref` with its rerun's (public, private) scores, or fail it with `error`."""
        path = self.directory / SUBMISSIONS_FILE
        with locked(path):
            records = self._read_records()
            for record in records:
                if record["ref"] == ref and record["status"] == "pending":
                    record["status"] = "error" if scores is None else "complete"
                    record["public_score"], record["private_score"] = scores or (None, None)
                    record["error"] = error
            atomic_write_json(path, {"submissions": records})

    def submissions(self) -> list[PracticeSubmission]:
        """Every submission, newest first (as Kaggle lists them); private scores only once closed."""
        closed = self.closed
        return [self._view(r, closed) for r in reversed(self._read_records())]

    def remaining_today(self) -> int:
        """Submissions still allowed today (UTC)."""
        return max(0, self.daily_limit - self._used_today(self._read_records()))

    def board(self) -> list[tuple[str, float, str, bool]]:
        """The public board as (team, public score, date, is you), best first: your best submission next to
        the host's baselines (every row True, every row False), scored on the public rows like any file."""
        public = [label for label, is_public in self._load_solution().values() if is_public]
        true_share = round(sum(public) / len(public), 5)
        created = str(self._meta().get("created") or "")
        entries = [("baseline: all True", true_share, created, False), ("baseline: all False", round(1 - true_share, 5), created, False)]
        scored = [s for s in self.submissions() if s.public_score is not None]
        if scored:
            best = max(scored, key=lambda s: (s.public_score, s.date))
            entries.append(("you", best.public_score, best.date, True))
        # Ties keep the earlier entry first, as Kaggle ranks an earlier submission of the same score higher.
        return sorted(entries, key=lambda e: (-e[1], e[2]))

    def close(self) -> None:
        """End the competition: private scores of every submission become visible; later ones are late."""
        path = self.directory / COMPETITION_FILE
        with locked(path):
            meta = self._meta()
            if not meta.get("closed"):
                meta["closed"] = True
                meta["closed_at"] = self._clock().astimezone(timezone.utc).replace(microsecond=0).isoformat()
                atomic_write_json(path, meta)
