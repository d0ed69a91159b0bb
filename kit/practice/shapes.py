"""Practice competitions in the shapes LLM competitions on Kaggle have (issue 24): the rows, the [task] that
describes them, and how a submission of that shape is scored.

    multiclass  which topic a math word problem is about (10 topics); a label a row; macro F1
    topk        a science-exam question with options A-E, one of them right; the top 3 letters; MAP@3
    pairwise    a prompt and two responses: which one names a thing of the asked kind (or a tie); one-hot
                winner_model_a/winner_model_b/winner_tie; a probability per class; log loss (LMSYS Arena's shape)
    ordinal     a product review of five sentences scored 1-6 by how many of them praise it; an integer; quadratic
                weighted kappa (Automated Essay Scoring's shape)

Each signal is one a small pretrained model can learn (the topic words of a problem; which word belongs to a
kind, which sentence praises): beating the shape's baseline shows the loop works, not how hard the task is. The
binary shape is the math-answer-verification data of kit/practice/data.py (the default task: no [task] needed).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

from kit.practice.data import FAMILIES

SHAPES = ("binary", "multiclass", "topk", "pairwise", "ordinal")

# Things of ten kinds, each word in one kind only, for the science-exam and the pairwise rows.
KINDS: dict[str, tuple[str, ...]] = {
    "fruit": ("apple", "banana", "cherry", "mango", "pear", "peach", "plum", "grape", "lemon", "kiwi", "melon", "apricot", "papaya", "lime"),
    "animal": ("dog", "cat", "horse", "lion", "tiger", "rabbit", "sheep", "goat", "zebra", "monkey", "elephant", "bear", "wolf", "fox"),
    "color": ("red", "blue", "green", "yellow", "purple", "pink", "brown", "black", "white", "gray", "violet", "teal", "maroon", "beige"),
    "country": ("France", "Japan", "Brazil", "Canada", "Egypt", "India", "Mexico", "Spain", "Kenya", "Italy", "Norway", "Peru", "Chile", "Germany"),
    "musical instrument": ("piano", "guitar", "violin", "drum", "flute", "trumpet", "cello", "harp", "clarinet", "saxophone", "banjo",
                           "trombone", "oboe", "ukulele"),
    "vehicle": ("car", "bus", "truck", "bicycle", "train", "airplane", "boat", "motorcycle", "tractor", "scooter", "helicopter", "van",
                "tram", "ship"),
    "sport": ("soccer", "tennis", "golf", "hockey", "baseball", "basketball", "cricket", "rugby", "volleyball", "boxing", "cycling",
              "swimming", "skiing", "rowing"),
    "body part": ("hand", "foot", "knee", "elbow", "shoulder", "nose", "ear", "eye", "finger", "ankle", "wrist", "neck", "chin", "thumb"),
    "tool": ("hammer", "wrench", "screwdriver", "saw", "drill", "pliers", "chisel", "shovel", "rake", "axe", "ladder", "crowbar",
             "mallet", "trowel"),
    "vegetable": ("carrot", "potato", "onion", "broccoli", "spinach", "cabbage", "pea", "cucumber", "lettuce", "celery", "garlic",
                  "radish", "pumpkin", "turnip"),
}

PRODUCTS = ("phone", "laptop", "blender", "backpack", "camera", "bicycle", "kettle", "headphones", "desk lamp", "vacuum cleaner")
PRAISE = (
    "The battery lasts all day.", "It was easy to set up.", "The build feels solid and well made.", "It is quiet when it runs.",
    "Delivery was fast and the box was intact.", "The price is fair for what you get.", "It looks great on my desk.",
    "Customer support answered within an hour.", "The instructions were clear.", "It works exactly as described.",
    "My whole family loves using it.", "It is light and easy to carry.",
)
COMPLAINTS = (
    "It stopped working after a week.", "The buttons feel cheap and loose.", "It is far too loud.", "The box arrived crushed.",
    "It costs much more than it is worth.", "The manual is confusing.", "It overheats after a few minutes.",
    "Support never answered my emails.", "The color faded quickly.", "It is heavy and awkward to carry.",
    "Half of the features do not work.", "It broke the first time I dropped it.",
)
ANSWER_LETTERS = ("A", "B", "C", "D", "E")


@dataclass(frozen=True)
class Shape:
    """A practice shape: its columns, its [task] table and how to make its rows (each a dict of every column, the
    target's included)."""

    name: str
    train_columns: tuple[str, ...]
    test_columns: tuple[str, ...]  # the id column first
    task: dict
    make: Callable[[random.Random], dict]
    target: Callable[[dict], str]  # a row's class (what the solution holds)
    sample: str  # the value every row of sample_submission holds (per-class shapes: one for each class)

    @property
    def id(self) -> str:
        return self.test_columns[0]


def _topic_row(rng: random.Random) -> dict:
    topic = rng.choice(sorted(FAMILIES))
    return {"question": FAMILIES[topic](rng).question, "topic": topic}


def _exam_row(rng: random.Random) -> dict:
    kind, *others = rng.sample(sorted(KINDS), 5)
    options = [rng.choice(KINDS[kind])] + [rng.choice(KINDS[o]) for o in others]
    order = list(range(5))
    rng.shuffle(order)
    article = "an" if kind[0] in "aeiou" else "a"
    row = {"prompt": f"Which of these is {article} {kind}?"}
    row.update({letter: options[i] for letter, i in zip(ANSWER_LETTERS, order)})
    row["answer"] = ANSWER_LETTERS[order.index(0)]
    return row


def _response(rng: random.Random, kind: str, good: bool) -> str:
    word = rng.choice(KINDS[kind] if good else KINDS[rng.choice([k for k in sorted(KINDS) if k != kind])])
    return rng.choice((f"Sure! One {kind} is the {word}.", f"A good example is {word}.", f"How about {word}?", f"I would say {word}."))


def _preference_row(rng: random.Random) -> dict:
    kind = rng.choice(sorted(KINDS))
    good_a, good_b = rng.random() < 0.5, rng.random() < 0.5
    winner = "winner_tie" if good_a == good_b else ("winner_model_a" if good_a else "winner_model_b")
    row = {"prompt": f"Name {'an' if kind[0] in 'aeiou' else 'a'} {kind}.", "response_a": _response(rng, kind, good_a), "response_b": _response(rng, kind, good_b)}
    row.update({c: int(c == winner) for c in ("winner_model_a", "winner_model_b", "winner_tie")})
    return row


def _review_row(rng: random.Random) -> dict:
    praised = sum(rng.random() < 0.5 for _ in range(5))  # 0-5 praising sentences: scores 1-6, most in the middle
    sentences = rng.sample(PRAISE, praised) + rng.sample(COMPLAINTS, 5 - praised)
    rng.shuffle(sentences)
    return {"full_text": f"My review of the {rng.choice(PRODUCTS)}. " + " ".join(sentences), "score": str(praised + 1)}


SHAPE_DEFINITIONS: dict[str, Shape] = {
    "multiclass": Shape(
        "multiclass", ("id", "question", "topic"), ("id", "question"),
        {"preset": "multiclass", "id": "id", "prompt": "Question: {question}\n\nWhat is this question about? Topic:", "shorten": "question",
         "target": {"column": "topic"}, "submission": {"columns": ["id", "topic"]}, "metric": {"name": "macro_f1"}},
        _topic_row, lambda r: r["topic"], "shopping",
    ),
    "topk": Shape(
        "topk", ("id", "prompt", *ANSWER_LETTERS, "answer"), ("id", "prompt", *ANSWER_LETTERS),
        {"preset": "topk", "id": "id", "prompt": "Question: {prompt}\nA) {A}\nB) {B}\nC) {C}\nD) {D}\nE) {E}\nAnswer:", "shorten": "prompt",
         "target": {"column": "answer", "labels": list(ANSWER_LETTERS)},
         "submission": {"columns": ["id", "prediction"], "output": "top_k", "k": 3, "separator": " "}, "metric": {"name": "map@3"}},
        _exam_row, lambda r: r["answer"], "A B C",
    ),
    "pairwise": Shape(
        "pairwise", ("id", "prompt", "response_a", "response_b", "winner_model_a", "winner_model_b", "winner_tie"),
        ("id", "prompt", "response_a", "response_b"),
        {"preset": "pairwise", "id": "id",
         "prompt": "Prompt: {prompt}\n\nResponse A: {response_a}\n\nResponse B: {response_b}\n\nWhich response is better?",
         "shorten": "response_a", "target": {"one_hot": ["winner_model_a", "winner_model_b", "winner_tie"]},
         "submission": {"output": "probabilities"}, "metric": {"name": "log_loss"}},
        _preference_row, lambda r: next(c for c in ("winner_model_a", "winner_model_b", "winner_tie") if r[c]), "0.333333",
    ),
    "ordinal": Shape(
        "ordinal", ("essay_id", "full_text", "score"), ("essay_id", "full_text"),
        {"preset": "ordinal", "id": "essay_id", "prompt": "Review:\n{full_text}\n\nScore (1 to 6):", "shorten": "full_text",
         "target": {"column": "score"}, "submission": {"columns": ["essay_id", "score"], "output": "number"}, "metric": {"name": "qwk"}},
        _review_row, lambda r: r["score"], "3",
    ),
}


def shape(name: str) -> Shape:
    """The practice shape of that name (not binary: that one is kit/practice/data.py's)."""
    return SHAPE_DEFINITIONS[name]


def generate_rows(shape: Shape, seed: int, n: int) -> list[dict]:
    """`n` rows of `shape`, the same for the same seed; each with its id (0, 1, ...; essays as hex ids, as AES has)."""
    rng = random.Random(f"{seed}-{shape.name}")
    rows = []
    for i in range(n):
        row = shape.make(rng)
        rows.append({shape.id: f"{i:06x}" if shape.id == "essay_id" else str(i), **row})
    return rows
