"""Named prompt templates: how a row (question, answer, solution) becomes the text the model labels True or False.

A template's text ends exactly where the label goes; `labels` are the label words as they follow that text
(with a leading space where the template ends on a colon). The model is scored on the first token of each.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PromptTemplate:
    """A prompt: `text` with {question}, {answer} and {solution} fields, and the (True, False) label words."""

    name: str
    text: str
    labels: tuple[str, str] = (" True", " False")
    source: str = ""

    def head_and_tail(self, question: str, answer: str) -> tuple[str, str]:
        """The text before and after the solution, with the question and answer filled in."""
        head, sep, tail = self.text.partition("{solution}")
        if not sep or "{solution}" in tail:
            raise ValueError(f"prompt {self.name!r} must contain {{solution}} exactly once")
        return head.format(question=question, answer=answer), tail.format()

    def render(self, question: str, answer: str, solution: str) -> str:
        """The whole prompt for one row, up to where the label goes."""
        head, tail = self.head_and_tail(question, answer)
        return head + solution + tail


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
