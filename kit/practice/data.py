"""The practice competition's data: synthetic rows shaped like a real math-answer-verification set.

`generate` makes rows (question, answer, solution, is_correct): word problems solved with a short Python block and
its output, about 40% of them correct. The wrong ones carry the kinds of mistakes the real data has, from easy to
spot (the answer disagrees with the code's output) to hard (a wrong step whose output then follows consistently, so
only re-checking the arithmetic or the question finds it). kit/practice/competition.py writes them to disk.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Callable

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


@dataclass(frozen=True)
class SolvedProblem:
    """A word problem with its exact integer answer and a worked solution that ends in \\boxed{answer}."""

    problem: str
    solution: str
    answer: int
    family: str


def solved_problems(seed: int, n: int, largest: int = 99999) -> list[SolvedProblem]:
    """`n` problems whose answers are whole numbers in [0, largest] (the others are skipped), the same for the same
    seed; the solution is the correct row's text of `generate`, computed by running its code, so the answer is exact."""
    rng = random.Random(f"{seed}-answers")
    out: list[SolvedProblem] = []
    while len(out) < n:
        family = rng.choice(sorted(FAMILIES))
        problem = FAMILIES[family](rng)
        final = problem.steps[-1][0]
        truth = _run(problem.steps)[final]
        if abs(truth - round(truth)) > 1e-9 or not 0 <= round(truth) <= largest:
            continue
        answer = int(round(truth))
        solution = _render(problem.steps, final, _output_text(truth), problem.conclusion, str(answer))
        out.append(SolvedProblem(problem.question, solution, answer, family))
    return out
