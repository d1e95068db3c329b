"""The statistics of one item: difficulty, discrimination (two indices), distractors.

- difficulty p = mean of points / max_points over the grades where the item is graded (for a
  right/wrong item the proportion correct); high p = easy.
- point-biserial discrimination: Pearson r between the item's points and the rest score (the
  total minus this item) over the complete grades (the corrected item-total correlation; for a
  right/wrong item it is the point-biserial r). Undefined below 2 grades or with zero variance.
- upper/lower index D = p(upper) - p(lower): the item's mean fraction of points among the 27%
  with the highest totals minus among the 27% with the lowest (see
  :func:`gabay.analytics.matrix.group_size`).
- distractors (choice items): per option, the count and share of the respondents choosing it,
  and the share within the upper and lower groups; a good distractor draws more of the lower group.
"""

from __future__ import annotations

import math

from gabay.analytics.matrix import ScoreTable
from gabay.analytics.measure import Measure
from gabay.analytics.models import Distractors, ItemReport, OptionShare
from gabay.analytics.stats import mean, pearson
from gabay.grading.grade import Grade
from gabay.grading.key import KeyItem, MultipleChoiceItem, MultiSelectItem, TrueFalseItem


def item_report(table: ScoreTable, item: KeyItem) -> ItemReport:
    graded = table.graded_items(item.question_id)
    fractions = [(i.points or 0.0) / item.max_points for i in graded]
    difficulty = mean(fractions)
    if difficulty.value is None:
        difficulty = Measure.undefined("the item is graded in no submission yet")
    return ItemReport(
        question_id=item.question_id, type=item.type, max_points=item.max_points, graded=len(graded),
        answered=sum(1 for i in graded if i.answered), dichotomous=is_dichotomous(fractions),
        difficulty=difficulty, point_biserial=point_biserial(table, item.question_id),
        upper_lower=upper_lower(table, item), distractors=distractors(table, item),
    )


def is_dichotomous(fractions: list[float]) -> bool:
    """Every observed score is 0 or full marks."""
    return all(math.isclose(f, 0.0, abs_tol=1e-9) or math.isclose(f, 1.0) for f in fractions)


def point_biserial(table: ScoreTable, question_id: str) -> Measure:
    scores = [table.points(g, question_id) for g in table.complete]
    rest = [table.total(g) - s for g, s in zip(table.complete, scores, strict=True)]
    return pearson(scores, rest, x_name="item score", y_name="rest score (total minus the item)")


def _group_fraction(table: ScoreTable, group: list[Grade], item: KeyItem) -> float:
    return math.fsum(table.points(g, item.question_id) for g in group) / (len(group) * item.max_points)


def upper_lower(table: ScoreTable, item: KeyItem) -> Measure:
    upper, lower = table.groups()
    if not upper:
        return Measure.undefined(f"needs at least 2 complete submissions, has {len(table.complete)}")
    return Measure.of(_group_fraction(table, upper, item) - _group_fraction(table, lower, item))


def _options(item: KeyItem) -> list[tuple[str, bool]] | None:
    if isinstance(item, MultipleChoiceItem):
        right = {item.option_named(o) for o in (item.correct, *item.also_correct)}
        return [(o, o in right) for o in item.options]
    if isinstance(item, MultiSelectItem):
        right = {item.option_named(o) for o in item.correct}
        return [(o, o in right) for o in item.options]
    if isinstance(item, TrueFalseItem):
        return [("True", item.correct), ("False", not item.correct)]
    return None


def _share_in(group: list[Grade], question_id: str, option: str) -> float | None:
    if not group:
        return None
    chosen = 0
    for grade in group:
        item = grade.item(question_id)
        if item is not None and option in (item.selected or []):
            chosen += 1
    return chosen / len(group)


def distractors(table: ScoreTable, item: KeyItem) -> Distractors | None:
    options = _options(item)
    if options is None:
        return None
    known = [i for i in table.graded_items(item.question_id) if i.selected is not None]
    upper, lower = table.groups()
    shares = []
    for option, correct in options:
        count = sum(1 for i in known if option in (i.selected or []))
        shares.append(OptionShare(option=option, correct=correct, count=count,
                                  share=count / len(known) if known else 0.0,
                                  upper_share=_share_in(upper, item.question_id, option),
                                  lower_share=_share_in(lower, item.question_id, option)))
    blank = sum(1 for i in known if not i.answered)
    return Distractors(respondents=len(known), options=shares, no_answer=blank,
                       no_answer_share=blank / len(known) if known else 0.0,
                       unrecognised=sum(1 for i in known if i.unrecognised))

