"""Generated answers: from a completion's text to the answer it gives, and from N completions to one answer.

    extract_answer("... so the total is \\boxed{42}.", "boxed")       # -> "42"
    read_answer("42", AnswerRule("integer", lo=0, hi=99999))         # -> 42 (None: not an answer in range)
    vote([42, 17, 42, 17])                                            # -> 42 (majority, ties to the earliest)

The rules are named, so that a task says which one it uses and kit checks the name before anything runs:
- last_integer: the last integer in the text ("-3", "1,234" read as 1234);
- boxed: the content of the last \\boxed{...} (nested braces kept), as AIMO solutions write it;
- after_marker: the text after the last occurrence of a marker ("Answer:"), up to the end of its line.
Stdlib only. The rules' names and the answer types are the task's (task.py), which kit checks before anything runs.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from runtime.task import ANSWER_TYPES, EXTRACT_RULES, TEXT_ANSWER_MAX

# an integer standing alone: not part of a word or a decimal ("3.5" holds none), thousands commas allowed
_INTEGER = re.compile(r"(?<![\w.])-?\d{1,3}(?:,\d{3})+(?!\d|\.\d)|(?<![\w.])-?\d+(?!\d|\.\d)")


@dataclass(frozen=True)
class AnswerRule:
    """What an answer is and how it is read from a completion: an integer in [lo, hi] or a short text, the
    extraction rule's name and its marker (after_marker), and the answer given when none can be read."""

    type: str = "integer"
    lo: int = 0
    hi: int = 99999
    extract: str = "boxed"
    marker: str = ""
    fallback: str = ""  # "" = the task's valid default: lo for integers, "" for text

    def problem(self) -> str:
        """What is wrong with the rule ("" when nothing): an unknown type or rule, a marker missing, an empty range."""
        if self.type not in ANSWER_TYPES:
            return f"answer type {self.type!r} is not one of {', '.join(ANSWER_TYPES)}"
        if not self.extract:
            return "a generated answer needs an extraction rule (extract = " + " | ".join(EXTRACT_RULES) + ")"
        if self.extract not in EXTRACT_RULES:
            return f"extraction rule {self.extract!r} is not one of {', '.join(EXTRACT_RULES)}"
        if self.extract == "after_marker" and not self.marker.strip():
            return "extraction rule after_marker needs a marker (marker = \"Answer:\")"
        if self.type == "integer" and self.lo > self.hi:
            return f"the answer range [{self.lo}, {self.hi}] is empty"
        return ""

    def default(self):
        """The answer given when no completion yields one: the fallback setting, else the range's low end or ""."""
        if self.fallback != "":
            value = read_answer(self.fallback, self)
            if value is not None:
                return value
        return self.lo if self.type == "integer" else ""


def extract_answer(text: str, rule: str, marker: str = "") -> str | None:
    """The answer's text in a completion by the named rule, or None where the completion gives none."""
    if rule == "last_integer":
        found = _INTEGER.findall(text)
        return found[-1].replace(",", "") if found else None
    if rule == "boxed":
        return _last_boxed(text)
    if rule == "after_marker":
        at = text.rfind(marker) if marker else -1
        if at < 0:
            return None
        rest = text[at + len(marker):].strip().splitlines()
        return rest[0].strip() if rest and rest[0].strip() else None
    raise ValueError(f"unknown extraction rule {rule!r}; known rules: {', '.join(EXTRACT_RULES)}")


def _last_boxed(text: str) -> str | None:
    """The content of the last \\boxed{...}, braces inside it balanced; None without a closed one."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 1, start + len("\\boxed{")
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i:j].strip()
    return None


def read_answer(text: str | None, rule: AnswerRule):
    """An extracted text as the task's answer: an int in [lo, hi] (an integer in the text, "1,234" and "12.0" read
    as integers), or a short text; None where it is not one."""
    if text is None:
        return None
    if rule.type == "text":
        text = " ".join(text.split())
        return text if 0 < len(text) <= TEXT_ANSWER_MAX else None
    cleaned = text.replace(",", "").replace("$", "").strip()
    match = re.fullmatch(r"-?\d+(?:\.0+)?", cleaned)
    if match is None:  # "42 dollars", "x = 42": the last integer inside, as a person would read it
        found = _INTEGER.findall(cleaned)
        if len(found) != 1:
            return None
        cleaned = found[0].replace(",", "")
    value = int(float(cleaned))
    return value if rule.lo <= value <= rule.hi else None


def answer_of(completion: str, rule: AnswerRule):
    """One completion's answer (None where it gives none the task accepts)."""
    return read_answer(extract_answer(completion, rule.extract, rule.marker), rule)


def vote(answers: list):
    """The majority answer of the valid ones (None left out), ties to the one given first; None if there is none."""
    valid = [a for a in answers if a is not None]
    if not valid:
        return None
    counts = Counter(valid)
    best = max(counts.values())
    return next(a for a in valid if counts[a] == best)


def most_common(answers: list, rule: AnswerRule):
    """The fallback of a row that runs out of time: the answer given most often so far in this run (ties to the
    earliest), else the task's valid default."""
    found = vote(answers)
    return rule.default() if found is None else found
