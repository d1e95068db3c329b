"""The submission contract: every sample is valid; bad input is a clear InvalidInput."""

from __future__ import annotations

from typing import Any

import pytest

from gabay.errors import InvalidInput
from gabay.feedback.submission import (
    MAX_ANSWER_CHARS,
    MAX_ANSWERS,
    MAX_SUBMISSION_BYTES,
    idempotency_key_for,
    job_id_for,
    parse_submission,
)
from tests.support.feedback_samples import SAMPLE_NAMES, sample


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_every_sample_is_a_valid_submission(name: str) -> None:
    submission = parse_submission(sample(name))

    assert submission.response_id == sample(name)["response_id"]
    assert submission.answers and submission.student.email


def test_the_tagalog_sample_is_in_tagalog() -> None:
    assert parse_submission(sample("tagalog")).language_code == "tl"


def test_a_response_id_always_maps_to_the_same_job_and_idempotency_key() -> None:
    assert job_id_for("resp-0001") == job_id_for("resp-0001") != job_id_for("resp-0002")
    key = idempotency_key_for("resp-0001")
    assert key == idempotency_key_for("resp-0001") and len(key) == 36 and key[14] == "5"  # a UUIDv5


def broken(change: Any) -> dict[str, Any]:
    data = sample("mixed-score")
    change(data)
    return data


@pytest.mark.parametrize(("data", "reason"), [
    (broken(lambda d: d.pop("response_id")), "response_id: Field required"),
    (broken(lambda d: d["student"].pop("email")), "student.email: Field required"),
    (broken(lambda d: d["student"].update(email="not-an-address")), "student.email: value is not a valid"),
    (broken(lambda d: d["answers"][0].update(max_points="1")), "answers.0.max_points"),
    (broken(lambda d: d["answers"][0].update(points=2)), "exceed max_points"),
    (broken(lambda d: d["answers"][1].update(question_id="q1")), "appears twice"),
    (broken(lambda d: d.update(answers=[])), "answers: List should have at least 1 item"),
    (broken(lambda d: d.update(answers="all of them")), "answers"),
    (broken(lambda d: d["student"].update(name="Eve\r\nBcc: all@school.example")), "control characters"),
    (broken(lambda d: d["answers"][0].update(type="dance")), "answers.0.type"),
    (broken(lambda d: d.update(submitted_at="yesterday")), "submitted_at"),
    (broken(lambda d: d.update(language="<script>")), "language"),
])
def test_bad_input_is_rejected_with_the_field_named(data: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason):
        parse_submission(data)


def test_sizes_are_bounded() -> None:
    too_many = sample("mixed-score")
    too_many["answers"] = [dict(too_many["answers"][0], question_id=f"q{i}") for i in range(MAX_ANSWERS + 1)]
    with pytest.raises(InvalidInput, match="at most 200 items"):
        parse_submission(too_many)

    too_long = sample("mixed-score")
    too_long["answers"][0]["answer"] = "x" * (MAX_ANSWER_CHARS + 1)
    with pytest.raises(InvalidInput, match=r"answers\.0\.answer"):
        parse_submission(too_long)

    too_big = sample("mixed-score")
    too_big["teacher"]["notes"] = "x" * MAX_SUBMISSION_BYTES
    with pytest.raises(InvalidInput, match="bytes; at most"):
        parse_submission(too_big)


def test_non_json_values_and_non_objects_are_rejected() -> None:
    with pytest.raises(InvalidInput, match="JSON object"):
        parse_submission(["a", "list"])
    with pytest.raises(InvalidInput, match="not plain JSON"):
        parse_submission(broken(lambda d: d.update(submitted_at=object())))


def test_the_message_names_at_most_eight_problems_then_counts_the_rest() -> None:
    data = sample("mixed-score")
    for answer in data["answers"]:
        answer.update(max_points="1", points="x")

    with pytest.raises(InvalidInput) as raised:
        parse_submission(data)

    message = str(raised.value)
    assert message.startswith("invalid submission: answers.0.points: Input should be a valid number; "
                              "answers.0.max_points: Input should be a valid number; ")
    assert message.endswith("; answers.3.max_points: Input should be a valid number; and 2 more")
    assert message.count(": Input should be") == 8


def test_the_fair_share_tenant_is_a_pseudonym_of_the_teacher_or_the_form() -> None:
    from gabay.feedback.submission import tenant_of

    data = sample("mixed-score")
    data["teacher"] = {"name": "Ms. Reyes", "email": "Reyes@School.example"}
    by_teacher = tenant_of(data, "teacher")
    assert by_teacher is not None and by_teacher.startswith("st-")
    assert "reyes" not in by_teacher.lower()  # an id, never the name or the address
    assert by_teacher == tenant_of({**data, "teacher": {"email": "reyes@school.example"}}, "teacher")
    assert tenant_of(data, "form") == f"form-{data['form']['id']}"
    assert tenant_of({k: v for k, v in data.items() if k != "teacher"}, "teacher") == \
        f"form-{data['form']['id']}"
    assert tenant_of(data, "none") is None
    assert tenant_of("not a submission", "teacher") is None
