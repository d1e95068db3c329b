"""Sample submissions of one exam (one answer key) with distinct response ids, for the analytics."""

from __future__ import annotations

from typing import Any

from tests.support.feedback_samples import sample

FORM_ID = "form-bio-7-photosynthesis"
#: The samples graded against the same five-item key (with-open-question has a sixth item).
SAME_KEY = ("perfect-score", "mixed-score", "all-wrong", "tagalog")
#: Points of each of SAME_KEY, in order.
POINTS = (5.0, 3.0, 0.0, 3.0)


def exam_submissions(count: int, prefix: str = "resp-an") -> list[dict[str, Any]]:
    """``count`` submissions of the exam, cycling through SAME_KEY, response ids ``<prefix>-<n>``."""
    made = []
    for index in range(count):
        data = sample(SAME_KEY[index % len(SAME_KEY)])
        data["response_id"] = f"{prefix}-{index + 1}"
        made.append(data)
    return made


def expected_points(count: int) -> list[float]:
    return [POINTS[index % len(POINTS)] for index in range(count)]
