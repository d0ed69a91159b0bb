"""Prompts: how a row of the competition's data becomes the text the model labels.

A template's text has {column} fields and ends exactly where the label goes. One field, `shorten`, is the one cut
to fit max_seq_length (the named templates below: {solution}). The task description (runtime/task.py) brings its
own template; a task without one (today's binary task) uses the named template of the `prompt` setting.

The label word of a class is the class name as it follows the text: after a space where the text ends on a
character ("...Answer True or False:" + " True"), right after it where the text ends on whitespace ("...\n" +
"True"). runtime/labels.py checks each against the tokenizer and falls back to codes listed in the prompt.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, replace
from typing import Mapping


@dataclass(frozen=True)
class PromptTemplate:
    """A prompt: `text` with {column} fields, the field cut to fit (`shorten`), and the (True, False) label words of
    the named binary templates (None: the words follow from the class names, see label_word)."""

    name: str
    text: str
    labels: tuple[str, str] | None = (" True", " False")
    source: str = ""
    shorten: str = "solution"

    def fields(self) -> tuple[str, ...]:
        """The {column} fields of the text, in order, each once."""
        names = [field for _, field, _, _ in string.Formatter().parse(self.text) if field]
        return tuple(dict.fromkeys(names))

    def parts(self, row: Mapping[str, str]) -> tuple[str, str, str]:
        """(the text before the shortened field, its value, the text after it) for one row, every field filled."""
        if not self.shorten:
            return self.text.format_map(row), "", ""
        head, sep, tail = self.text.partition("{" + self.shorten + "}")
        if not sep or "{" + self.shorten + "}" in tail:
            raise ValueError(f"prompt {self.name!r} must contain {{{self.shorten}}} exactly once (the field shortened to fit)")
        return head.format_map(row), str(row[self.shorten]), tail.format_map(row)

    def render(self, row: Mapping[str, str]) -> str:
        """The whole prompt for one row, up to where the label goes."""
        head, value, tail = self.parts(row)
        return head + value + tail

    def label_word(self, label: str) -> str:
        """What follows the text when the answer is `label`: a space first unless the text ends on whitespace."""
        return label if not self.text or self.text[-1].isspace() else " " + label

    def words(self, classes: tuple[str, ...]) -> tuple[str, ...]:
        """The label word of each class; a named binary template's own words for (True, False)."""
        if self.labels is not None and tuple(classes) == ("True", "False"):
            return tuple(self.labels)
        return tuple(self.label_word(c) for c in classes)

    def with_codes(self, codes: tuple[str, ...], classes: tuple[str, ...]) -> "PromptTemplate":
        """This template asking for a code per class: the codes are listed on a line before the text's last line,
        so the text still ends where the label goes."""
        listing = "Labels: " + ", ".join(f"{code} = {label}" for code, label in zip(codes, classes))
        listing = listing.replace("{", "{{").replace("}", "}}")
        head, newline, last = self.text.rpartition("\n")
        text = f"{head}{newline}{listing}\n{last}" if newline else f"{listing}\n{self.text}"
        return replace(self, text=text, labels=None)


def task_template(text: str, shorten: str) -> PromptTemplate:
    """The template a task description brings (its `prompt` and `shorten`)."""
    return PromptTemplate(name="task", text=text, labels=None, source="the task's prompt", shorten=shorten)


# Short and plain, for small models: the answer comes right before the solution so that a model comparing it
# with the solution's boxed value finds both close together.
GRADER = PromptTemplate(
    name="grader",
    text=(
        "Decide whether the given answer to the math question is correct.\n\n"
        "Question: {question}\n"
        "Given answer: {answer}\n"
        "Solution:\n{solution}\n\n"
        "Is the given answer correct? Answer True or False:"
    ),
    source="kit default",
)

SEED_000 = PromptTemplate(
    name="seed000",
    text=(
        "You are a math grader tasked with evaluating whether a given answer to a math question is correct or not. "
        "Respond with 'True' if the answer is correct and 'False' if it is incorrect.\n\n"
        "Below are the Question, the given Answer, and the Explanation of the Answer.\n\n"
        "```\n"
        "### Question: {question}\n"
        "### Answer: {answer}\n"
        "### Explanation: {solution}\n"
        "```\n\n"
        "It's very important to grade the Answer accurately, so you must:\n\n"
        "- 1. Carefully read and understand the Question.\n"
        "- 2. Review the given Answer and compare it against the Explanation provided.\n"
        "- 3. If the Explanation correctly justifies the Answer, respond with 'True'.\n"
        "- 4. If the Explanation is incorrect or does not logically support the Answer, respond with 'False'.\n\n"
        "```\n"
        "### Grading ('True' or 'False'):"
    ),
    source="seed 000, report appendix A.1",
)

BINARYBEATS = PromptTemplate(
    name="binarybeats",
    text=(
        "You are a highly skilled mathematician tasked with evaluating a mathematical solution. Carefully analyze "
        "each step of the solution, and determine if the answer is correct.\n\n"
        "Your response should:\n"
        "1. Identify any incorrect steps in the solution.\n"
        "2. Note any missing information from the question that could affect the answer.\n"
        "3. Confirm the accuracy of the given answer.\n\n"
        "After your analysis, respond in the output with:\n"
        '- "True" if the answer and solution are correct and complete, with no mistakes.\n'
        '- "False" if there are any errors in the steps, missing information, or if the final answer is incorrect.\n\n'
        "Below is the Question, Answer, Solution, and Correctness Indicator for your analysis:\n\n"
        "### Question:\n{question}\n\n"
        "### Given Answer:\n{answer}\n\n"
        "### Solution:\n{solution}\n\n"
        "### Output:\n"
    ),
    labels=("True", "False"),
    source="BinaryBeats (competition.md 3.2)",
)

MIDTERM = PromptTemplate(
    name="midterm",
    text=(
        "Review the provided math question, its solution, and the final answer. Verify the accuracy of the solution "
        "steps and the correctness of the final answer based on the calculations provided.\n"
        "Please analyze the information below and explicitly state 'True' if the solution accurately solves the "
        "problem and the answer matches, or 'False' if it does not. Do not provide additional information or "
        "explanation in your response.\n\n"
        "### Math Question:\n{question}\n\n"
        "### Provided Answer:\n{answer}\n\n"
        "### Detailed Solution:\n{solution}\n\n"
        "Answer is correct (True/False only):"
    ),
    labels=("True", "False"),
    source="deep-learning-midterm (competition.md 3.3)",
)

PROMPTS: dict[str, PromptTemplate] = {p.name: p for p in (GRADER, SEED_000, BINARYBEATS, MIDTERM)}


def get_prompt(name: str) -> PromptTemplate:
    """The template of that name, or a ValueError listing the known names."""
    try:
        return PROMPTS[name]
    except KeyError:
        raise ValueError(f"unknown prompt {name!r}; known prompts: {', '.join(sorted(PROMPTS))}") from None
