"""The rule of each item type that code grades alone: choice, true/false, multi-select, numeric.

Each rule reads the answer the way :mod:`gabay.grading.normalize` says and gives points:

- multiple choice: full points when the one chosen option is ``correct`` (or in ``also_correct``),
  else 0; two options chosen for a one-answer item are wrong;
- true/false: full points when the answer reads as the key's value, else 0;
- multi-select, ``partial``: ``max(0, (right chosen - wrong chosen) / number of right options)``
  of the points; ``all_or_nothing``: full points only for exactly the right set. A piece of the
  answer that names no option counts as a wrong choice; an option chosen twice counts once;
- numeric: full points when ``|answer - value| <= max(abs_tol, rel_tol * |value|)`` (plus 1e-9
  relative, for binary floating point), else 0; an answer that is not a number gets 0.
"""

from __future__ import annotations

from gabay.grading.grade import GradedItem
from gabay.grading.key import KeyItem, MultipleChoiceItem, MultiSelectItem, NumericItem, TrueFalseItem
from gabay.grading.normalize import parse_bool, parse_number, split_choices
from gabay.grading.response import AnswerValue

_FLOAT_SLACK = 1e-9


def is_blank(value: AnswerValue) -> bool:
    """Not answered: no value, blank text, or no option chosen."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list):
        return not any(piece.strip() for piece in value)
    return False


def as_text(value: AnswerValue) -> str:
    """A single text for the answer (``3.5`` for a number, pieces joined by newlines)."""
    if isinstance(value, list):
        return "\n".join(value)
    if isinstance(value, float | int):
        return f"{value:g}"
    return value or ""


def scored(item: KeyItem, fraction: float, *, selected: list[str] | None = None, unrecognised: int = 0,
           answered: bool = True) -> GradedItem:
    """A graded item with ``fraction`` of the item's points, decided by the key."""
    return GradedItem(question_id=item.question_id, type=item.type, max_points=item.max_points,
                      points=round(fraction * item.max_points, 6), status="graded", source="key",
                      answered=answered, selected=selected, unrecognised=unrecognised)


def _chosen(options_item: MultipleChoiceItem | MultiSelectItem, pieces: list[str]) -> tuple[list[str], int]:
    selected: list[str] = []
    unrecognised = 0
    for piece in pieces:
        if not piece.strip():
            continue
        option = options_item.option_named(piece)
        if option is None:
            unrecognised += 1
        elif option not in selected:
            selected.append(option)
    return selected, unrecognised


def grade_multiple_choice(item: MultipleChoiceItem, value: AnswerValue) -> GradedItem:
    pieces = value if isinstance(value, list) else [as_text(value)]
    selected, unrecognised = _chosen(item, pieces)
    right = {item.option_named(o) for o in (item.correct, *item.also_correct)}
    won = len(selected) == 1 and unrecognised == 0 and selected[0] in right
    return scored(item, 1.0 if won else 0.0, selected=selected, unrecognised=unrecognised)


def grade_true_false(item: TrueFalseItem, value: AnswerValue) -> GradedItem:
    pieces = [p for p in value if p.strip()] if isinstance(value, list) else [as_text(value)]
    read = parse_bool(pieces[0]) if len(pieces) == 1 else None
    if read is None:
        return scored(item, 0.0, selected=[], unrecognised=len(pieces))
    return scored(item, 1.0 if read is item.correct else 0.0, selected=["True" if read else "False"])


def grade_multi_select(item: MultiSelectItem, value: AnswerValue) -> GradedItem:
    pieces = value if isinstance(value, list) else split_choices(as_text(value), item.options)
    selected, unrecognised = _chosen(item, pieces)
    right_set = {item.option_named(o) for o in item.correct}
    right = sum(1 for o in selected if o in right_set)
    wrong = len(selected) - right + unrecognised
    if item.scoring == "all_or_nothing":
        fraction = 1.0 if right == len(right_set) and wrong == 0 else 0.0
    else:
        fraction = max(0.0, (right - wrong) / len(right_set))
    return scored(item, fraction, selected=selected, unrecognised=unrecognised)


def within_tolerance(item: NumericItem, number: float) -> bool:
    allowed = max(item.abs_tol, item.rel_tol * abs(item.value)) + _FLOAT_SLACK * max(1.0, abs(item.value))
    return abs(number - item.value) <= allowed


def grade_numeric(item: NumericItem, value: AnswerValue) -> GradedItem:
    if isinstance(value, float | int) and not isinstance(value, bool):
        number: float | None = float(value)
    else:
        number = parse_number(as_text(value))
    if number is None:
        return scored(item, 0.0, unrecognised=1)
    return scored(item, 1.0 if within_tolerance(item, number) else 0.0)
