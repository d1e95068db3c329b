"""What a student answered, as grading needs it: ids and answers, no name or address.

A :class:`Response` is built from a submission of the feedback contract by
:func:`response_from_submission`, or directly by the platform (then a multi-select answer may be a
list of option texts and a numeric answer a number). Points a submission already carries are kept
apart as ``carried_points``: the key decides every item it can grade, and carried points count only
for items left to the teacher (an essay already marked, see :mod:`gabay.grading.grader`).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gabay.errors import InvalidInput, describe_validation
from gabay.grading.contract import SubmissionLike

Ident = Annotated[str, Field(min_length=1, max_length=200)]
#: A text answer, several chosen options, a number, or nothing (not answered).
AnswerValue = str | list[Annotated[str, Field(max_length=5000)]] | float | None


class Response(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    response_id: Ident
    exam_id: Ident
    answers: dict[str, AnswerValue] = Field(max_length=200)
    carried_points: dict[str, Annotated[float, Field(ge=0, allow_inf_nan=False)]] = Field(
        default_factory=dict, max_length=200)


def response_from_submission(submission: SubmissionLike) -> Response:
    """The answers of a validated submission (``gabay.feedback.submission.Submission``)."""
    return Response(
        response_id=submission.response_id,
        exam_id=submission.form.id,
        answers={a.question_id: a.answer for a in submission.answers},
        carried_points={a.question_id: a.points for a in submission.answers if a.points is not None},
    )


def parse_response(data: Any) -> Response:
    """Validate ``data`` (a dict); raise InvalidInput naming every problem."""
    if isinstance(data, Response):
        return data
    try:
        return Response.model_validate_json(json.dumps(data, allow_nan=False))
    except ValidationError as exc:
        raise InvalidInput("invalid response: " + describe_validation(exc, subject="response",
                                                                      limit=8)) from None
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"the response is not plain JSON: {exc}") from None
