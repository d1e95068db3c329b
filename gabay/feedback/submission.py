"""Exam submissions: the contract of ``process_form_response.send(submission)``, validated once.

A submission is untrusted input from the platform (and, inside it, text typed by a student). It is
checked at ``send()`` and again in the worker: JSON types are strict (no ``"1"`` for a number), the
student's address must be a valid email address, names hold no control characters (they end up in
email headers), and sizes are bounded (see the ``MAX_*`` constants). Anything else raises
:class:`gabay.errors.InvalidInput` naming each problem.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import unicodedata
import uuid
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    HttpUrl,
    ValidationError,
    field_validator,
    model_validator,
)

from gabay.errors import InvalidInput, describe_validation
from gabay.store.identity import person_id

#: Bounds of one submission (checked at send() and in the worker).
MAX_SUBMISSION_BYTES = 256 * 1024
MAX_ANSWERS = 200
MAX_QUESTION_CHARS = 2000
MAX_ANSWER_CHARS = 5000
MAX_CHOICES = 20
MAX_NAME_CHARS = 200
MAX_POINTS = 1000.0
#: Problems named in one InvalidInput message (a broken list can have hundreds).
MAX_PROBLEMS = 8

#: Namespace of the ids derived from a response id (job id, email idempotency key).
_NAMESPACE = uuid.UUID("5f0d7c1e-8a51-4e0c-9b7e-6a1f3c2d9e10")

QuestionType = Literal["multiple_choice", "true_false", "short_answer", "essay"]


def _no_control_chars(value: str) -> str:
    """Names and ids end up in email headers: no control, invisible or direction-changing text.

    Bidi overrides (U+202E) and zero-width characters (U+200B) are format characters (Unicode
    category Cf): in a To display name they can make an address look like another.
    """
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError("must not contain control characters such as line breaks")
    for ch in value:
        if unicodedata.category(ch) == "Cf":
            raise ValueError(f"must not contain invisible or direction-changing characters "
                             f"(U+{ord(ch):04X})")
    return value


Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS), AfterValidator(_no_control_chars)]
Ident = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_no_control_chars)]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", str_strip_whitespace=True, frozen=True)


class Form(_Strict):
    id: Ident
    title: Name
    subject: Name


class Person(_Strict):
    name: Name
    email: EmailStr


class Answer(_Strict):
    question_id: Ident
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    type: QuestionType
    choices: list[Annotated[str, Field(max_length=500)]] | None = Field(None, max_length=MAX_CHOICES)
    answer: str | None = Field(None, max_length=MAX_ANSWER_CHARS)
    correct_answer: str | None = Field(None, max_length=MAX_ANSWER_CHARS)
    points: float | None = Field(None, ge=0, le=MAX_POINTS)
    max_points: float = Field(gt=0, le=MAX_POINTS)

    @model_validator(mode="after")
    def _points_within_max(self) -> Answer:
        if self.points is not None and self.points > self.max_points:
            raise ValueError(f"points ({self.points:g}) exceed max_points ({self.max_points:g})")
        return self

    @property
    def is_open(self) -> bool:
        """No answer key (an essay or a free answer): graded by a teacher, not by code."""
        return not (self.correct_answer or "").strip()


class Submission(_Strict):
    response_id: Ident
    form: Form
    student: Person
    teacher: Person | None = None
    answers: list[Answer] = Field(min_length=1, max_length=MAX_ANSWERS)
    submitted_at: dt.datetime
    language: str = Field("en", pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
    #: Where the job's outcome is POSTed, signed, once it succeeded or failed (gabay.callbacks).
    callback_url: HttpUrl | None = None

    @field_validator("answers")
    @classmethod
    def _unique_question_ids(cls, answers: list[Answer]) -> list[Answer]:
        seen: set[str] = set()
        for answer in answers:
            if answer.question_id in seen:
                raise ValueError(f"question_id {answer.question_id!r} appears twice")
            seen.add(answer.question_id)
        return answers

    @property
    def language_code(self) -> str:
        """The primary language subtag in lower case: ``fil-PH`` -> ``fil``."""
        return self.language.replace("_", "-").split("-")[0].lower()

    def as_message(self) -> dict[str, Any]:
        """The JSON-ready form that travels in the Dramatiq message."""
        return self.model_dump(mode="json")


def tenant_of(data: Any, by: str) -> str | None:
    """The fair-share tenant of a submission message: its teacher's pseudonymous id (the form's
    id when it names no teacher) for ``teacher``, the form's id for ``form``; never a name or an
    address. None for ``none`` or a message too malformed to tell (the actor rejects it)."""
    if by == "none" or not isinstance(data, dict):
        return None
    form, teacher = data.get("form"), data.get("teacher")
    form = form if isinstance(form, dict) else {}
    teacher = teacher if isinstance(teacher, dict) else {}
    if by == "teacher" and isinstance(teacher.get("email"), str):
        return person_id(teacher["email"])
    return f"form-{form['id']}" if isinstance(form.get("id"), str) else None


def parse_submission(data: Any) -> Submission:
    """Validate ``data`` (a dict as in the examples); raise InvalidInput naming every problem."""
    if isinstance(data, Submission):
        return data
    if not isinstance(data, dict):
        raise InvalidInput(f"a submission must be a JSON object, not {type(data).__name__}")
    try:
        raw = json.dumps(data, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"the submission is not plain JSON: {exc}") from None
    size = len(raw.encode("utf-8"))
    if size > MAX_SUBMISSION_BYTES:
        raise InvalidInput(f"the submission is {size} bytes; at most {MAX_SUBMISSION_BYTES} are accepted")
    try:
        return Submission.model_validate_json(raw)
    except ValidationError as exc:
        problems = describe_validation(exc, subject="submission", limit=MAX_PROBLEMS)
        raise InvalidInput("invalid submission: " + problems) from None


def fingerprint(submission: Submission) -> str:
    """A digest of the submission's content: tells a re-send from a different submission."""
    canonical = json.dumps(submission.as_message(), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def job_id_for(response_id: str) -> str:
    """The job id of a submission: the same response id always maps to the same job."""
    return "fb-" + uuid.uuid5(_NAMESPACE, "job:" + response_id).hex


def idempotency_key_for(response_id: str) -> str:
    """Brevo's idempotency key for the one feedback email of this response (a UUID)."""
    return str(uuid.uuid5(_NAMESPACE, "email:" + response_id))
