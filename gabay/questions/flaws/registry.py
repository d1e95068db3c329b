"""The registry of item-writing-flaw rules, and :func:`find_flaws`, which runs them all."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from gabay.questions.flaws import options, statements, stems
from gabay.questions.models import Draft


@dataclass(frozen=True)
class FlawContext:
    """What some rules need besides the draft: the document's titles and the passages' texts.

    ``titles``: the request's title and the document's top-level headings.
    """

    titles: list[str] = field(default_factory=list)
    passages: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Flaw:
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.message}"


Rule = Callable[[Draft, FlawContext], "str | None"]

#: Rule name -> check; the names are what the README, the verdicts and the bench report show.
RULES: dict[str, Rule] = {
    "longest_answer": lambda d, c: options.longest_answer(d),
    "catch_all_option": lambda d, c: options.catch_all_option(d),
    "overlapping_options": lambda d, c: options.overlapping_options(d),
    "grammatical_cue": lambda d, c: options.grammatical_cue(d),
    "answer_repeats_stem": lambda d, c: options.answer_repeats_stem(d),
    "implausible_distractor": lambda d, c: options.implausible_distractor(d),
    "unemphasised_negative": lambda d, c: stems.unemphasised_negative(d),
    "not_a_question": lambda d, c: stems.not_a_question(d),
    "blank_is_title_or_stop_word": lambda d, c: statements.blank_is_title_or_stop_word(d, c.titles),
    "blank_without_context": lambda d, c: statements.blank_without_context(d),
    "copied_verbatim": lambda d, c: statements.copied_verbatim(d, c.passages),
    "dangling_pronoun": lambda d, c: statements.dangling_pronoun(d),
}


def find_flaws(draft: Draft, context: FlawContext) -> list[Flaw]:
    """Every flaw the rules find in ``draft`` (empty: none found), in the registry's order."""
    found = []
    for name, rule in RULES.items():
        message = rule(draft, context)
        if message:
            found.append(Flaw(name, message))
    return found
