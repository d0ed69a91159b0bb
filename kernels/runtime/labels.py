"""The label tokens: which token the model is trained to give for each class, read in one forward pass.

Each class is a label word that follows the prompt (prompts.PromptTemplate.words). Its token is the first token
the tokenizer gives after the prompt when the whole prompt and the word are split together: a SentencePiece
tokenizer splits "True" after a newline differently from the word alone, and a word that merges with the prompt's
last characters has no token of its own. A word of several tokens is trained and scored on its first, which is
enough as long as no two classes share it. Where they share it because the tokenizer splits off the space (" 4" as
" " + "4"), the names follow the prompt without the space; where the names themselves share it (winner_model_a,
winner_model_b) or a word merges with the prompt, every class gets a code instead (A, B, C, ... or numbers),
listed in the prompt.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from runtime.environment import log
from runtime.prompts import PromptTemplate

# Codes in the order they are tried: each alphabet is used whole or not at all, so classes read A, B, C or 1, 2, 3.
CODE_ALPHABETS = (
    tuple(string.ascii_uppercase),
    tuple(str(i) for i in range(1, 1000)),
    tuple(string.ascii_uppercase) + tuple(string.ascii_lowercase) + tuple(string.digits),
)


@dataclass(frozen=True)
class LabelTokens:
    """The classes, the word the model says for each (a code where the names could not serve), its token, and the
    template that asks for them (the prompt, with the codes listed when there are codes)."""

    classes: tuple[str, ...]
    words: tuple[str, ...]
    token_ids: tuple[int, ...]
    template: PromptTemplate
    coded: bool = False

    def describe(self) -> str:
        """One line: class -> word (token id) for each class."""
        shown = [f"{c} -> {w!r} ({t})" if w.strip() != c else f"{w!r} ({t})" for c, w, t in zip(self.classes, self.words, self.token_ids)]
        listed = ", ".join(shown[:12]) + (f", ... ({len(shown)} classes)" if len(shown) > 12 else "")
        return f"label tokens ({self.template.name} prompt): {listed}"


def split_after(tokenizer, prompt: str, word: str) -> tuple[int, int] | None:
    """(the first token of `word` after `prompt`, how many tokens the word takes) as the tokenizer splits
    prompt + word, or None where the word changes how the prompt itself is split (it merges with its end)."""
    before = tokenizer(prompt, add_special_tokens=False).input_ids
    after = tokenizer(prompt + word, add_special_tokens=False).input_ids
    if len(after) <= len(before) or after[: len(before)] != before:
        return None
    return after[len(before)], len(after) - len(before)


def first_tokens(tokenizer, prompts: list[str], words: tuple[str, ...]) -> tuple[list[int] | None, str]:
    """The label token of each word after every one of `prompts` (the rendered prompts of a few rows), or (None,
    why not): a word that merges with a prompt's end, a token that differs between prompts, two words sharing one."""
    tokens: list[int] = []
    for word in words:
        seen = {split_after(tokenizer, prompt, word) for prompt in prompts}
        if None in seen:
            return None, f"{word!r} merges with the end of the prompt"
        ids = {first for first, _ in seen}
        if len(ids) > 1:
            return None, f"{word!r} starts with a different token after different rows"
        tokens.append(ids.pop())
    if len(set(tokens)) < len(tokens):
        shared = [w for w, t in zip(words, tokens) if tokens.count(t) > 1]
        return None, f"{', '.join(repr(w) for w in shared[:4])} start with the same token"
    return tokens, ""


def choose_label_tokens(tokenizer, template: PromptTemplate, classes: tuple[str, ...], rows: list) -> LabelTokens:
    """The label tokens of `classes` after `template`, checked on the rendered prompts of `rows` (a few mappings of
    column -> text), with the template to use: `template` itself, or the same asking for codes listed in it."""
    words = template.words(classes)
    prompts = [template.render(r) for r in rows]
    tokens, problem = first_tokens(tokenizer, prompts, words)
    if tokens is not None:
        return LabelTokens(tuple(classes), words, tuple(tokens), template)
    bare = tuple(classes)
    if bare != words:  # a tokenizer that splits the space off (digits in SmolLM2: " 4" is " " + "4"): the names right after the prompt
        tokens, _ = first_tokens(tokenizer, prompts, bare)
        if tokens is not None:
            log(f"labels: the class names cannot be told apart by one token after a space ({problem}); they follow the prompt without one")
            return LabelTokens(tuple(classes), bare, tuple(tokens), template)
    for alphabet in CODE_ALPHABETS:
        if len(alphabet) < len(classes):
            continue
        codes = alphabet[: len(classes)]
        coded = template.with_codes(codes, classes)
        prompts = [coded.render(r) for r in rows]
        # after a space as a word would follow, else right after the prompt (a tokenizer that splits off the space)
        for code_words in (tuple(coded.label_word(c) for c in codes), codes):
            code_tokens, _ = first_tokens(tokenizer, prompts, code_words)
            if code_tokens is not None:
                log(f"labels: the class names cannot be told apart by one token ({problem}); the model answers with codes "
                    f"{', '.join(codes[:3])}{', ...' if len(codes) > 3 else ''} instead, listed in the prompt")
                return LabelTokens(tuple(classes), code_words, tuple(code_tokens), coded, coded=True)
    raise ValueError(f"labels: {len(classes)} classes cannot each get a token of their own with this tokenizer ({problem}); "
                     "rename the classes so that each starts with its own token, or use fewer classes")
