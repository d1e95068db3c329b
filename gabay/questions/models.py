"""The question pipeline's typed data: the request, what each stage hands to the next, the result.

The request is validated with pydantic at ``send()`` and again in the worker. Stage messages carry
only what the next stage needs: retrieval passes on the selected passages (with their ids), never
the whole document.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError, field_validator

from gabay.errors import InvalidInput, describe_validation

QuestionType = Literal["multiple_choice", "true_false", "short_answer"]
Difficulty = Literal["easy", "medium", "hard"]
#: Bloom's (revised) cognitive levels, lowest first; "analyze" is accepted for "analyse".
BloomLevel = Literal["remember", "understand", "apply", "analyse", "evaluate", "create"]
BLOOM_LEVELS: tuple[BloomLevel, ...] = ("remember", "understand", "apply", "analyse", "evaluate", "create")
ALL_TYPES: tuple[QuestionType, ...] = ("multiple_choice", "true_false", "short_answer")
MAX_DOCUMENT_CHARS = 200_000
MAX_COUNT = 50
_ALLOWED_CONTROLS = {"\n", "\r", "\t"}


def check_text(value: str, what: str) -> str:
    """Reject control characters (other than newline, tab) and non-characters: text only."""
    for char in value:
        if char in _ALLOWED_CONTROLS:
            continue
        if unicodedata.category(char) in ("Cc", "Cs", "Co", "Cn"):
            raise ValueError(f"{what} contains a control or non-text character ({ord(char):#06x})")
    return value


class Document(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    id: str = Field(min_length=1, max_length=200)
    title: str = Field("", max_length=500)
    text: str = Field(max_length=MAX_DOCUMENT_CHARS)

    @field_validator("id", "title")
    @classmethod
    def _plain(cls, value: str) -> str:
        return check_text(value, "document id/title")

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("document text is empty")
        return check_text(value, "document text")


class QuestionRequest(BaseModel):
    """What the platform sends to ``generate_questions``; JSON types are strict (no ``"5"``)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    request_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_.:\-]{1,100}$")
    document: Document
    count: int = Field(5, ge=1, le=MAX_COUNT)
    question_types: list[QuestionType] = Field(default_factory=lambda: list(ALL_TYPES), min_length=1)
    difficulty: Difficulty = "medium"
    topic: str | None = Field(None, max_length=500)
    language: str = Field("en", pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
    callback_url: HttpUrl | None = None
    regenerate: bool = False  # run a finished job of this request_id again (see gabay.actors.questions)
    #: The share of questions wanted at each Bloom level, e.g. {"remember": 0.4, "apply": 0.6}.
    bloom_mix: dict[BloomLevel, float] | None = None

    @field_validator("bloom_mix", mode="before")
    @classmethod
    def _american_spelling(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {("analyse" if k == "analyze" else k): v for k, v in value.items()}
        return value

    @field_validator("bloom_mix")
    @classmethod
    def _shares(cls, value: dict[BloomLevel, float] | None) -> dict[BloomLevel, float] | None:
        if not value:
            return None
        if any(share < 0 for share in value.values()) or not 0.99 <= sum(value.values()) <= 1.01:
            raise ValueError("bloom_mix shares must be >= 0 and add up to 1")
        return {level: share for level, share in value.items() if share > 0}

    @field_validator("question_types")
    @classmethod
    def _unique(cls, value: list[QuestionType]) -> list[QuestionType]:
        return list(dict.fromkeys(value))

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return check_text(value, "topic").strip() or None


def parse_request(data: Any) -> QuestionRequest:
    """Validate a request; InvalidInput with every problem on one line."""
    if isinstance(data, QuestionRequest):
        return data
    try:
        return QuestionRequest.model_validate(data)
    except ValidationError as exc:
        problems = describe_validation(exc, subject="request")
        raise InvalidInput("invalid question request: " + problems) from None


class Passage(BaseModel):
    """A piece of the document along its structure, with its heading path."""

    id: str
    headings: list[str] = Field(default_factory=list)
    text: str


class Draft(BaseModel):
    """A candidate question: it cites its passage and carries its answer key."""

    id: str
    type: QuestionType
    question: str
    options: list[str] = Field(default_factory=list)
    answer: str
    passage_id: str
    evidence: str = ""
    bloom_level: BloomLevel | None = None  # what the writer meant; the tagger decides when None


class RoundTrip(BaseModel):
    """A blind answer: what an answerer that never saw the key answered, and whether it agrees."""

    answer: str
    agreed: bool
    by: str  # "offline" (term overlap over the passages) or "provider:model"


class Quality(BaseModel):
    """The scores a question was accepted (or rejected) with."""

    flaws: list[str] = Field(default_factory=list)  # "rule: message" of each item-writing flaw
    round_trip: RoundTrip | None = None
    bloom_level: BloomLevel | None = None


class Rejection(BaseModel):
    draft_id: str
    question: str
    reason: str
    quality: Quality | None = None


class Question(BaseModel):
    """A validated question, as returned to the platform."""

    id: str
    type: QuestionType
    question: str
    options: list[str] = Field(default_factory=list)
    answer: str
    passage_id: str
    headings: list[str] = Field(default_factory=list)
    evidence: str = ""
    bloom_level: BloomLevel | None = None
    quality: Quality | None = None


class QuestionTask(BaseModel):
    """What a stage hands to the next: the brief, the passages, and the work so far."""

    job_id: str
    document_id: str
    title: str = ""
    count: int
    question_types: list[QuestionType]
    difficulty: Difficulty
    topic: str | None = None
    language: str = "en"
    callback_url: str | None = None
    bloom_mix: dict[BloomLevel, float] | None = None
    round: int = 1
    passages: list[Passage]
    drafts: list[Draft] = Field(default_factory=list)
    accepted: list[Question] = Field(default_factory=list)
    rejected: list[Rejection] = Field(default_factory=list)

    @classmethod
    def from_request(cls, job_id: str, request: QuestionRequest, passages: list[Passage]) -> QuestionTask:
        return cls(job_id=job_id, document_id=request.document.id, title=request.document.title,
                   count=request.count, question_types=request.question_types,
                   difficulty=request.difficulty, topic=request.topic, language=request.language,
                   callback_url=str(request.callback_url) if request.callback_url else None,
                   bloom_mix=request.bloom_mix, passages=passages)

    def passage(self, passage_id: str) -> Passage | None:
        return next((p for p in self.passages if p.id == passage_id), None)

    @property
    def drafts_wanted(self) -> int:
        """More drafts than needed, so that validation can reject some."""
        missing = self.count - len(self.accepted)
        return int(missing * 1.5) + 2


class BloomMix(BaseModel):
    """Questions per Bloom level: what the request asked for (None: no mix asked) and what came."""

    requested: dict[BloomLevel, int] | None = None
    achieved: dict[BloomLevel, int]


class QuestionResult(BaseModel):
    """The job's result: exactly ``count`` questions, or fewer with the shortfall's reason."""

    document_id: str
    count: int
    questions: list[Question]
    shortfall: str | None = None
    rejected: int = 0
    bloom: BloomMix | None = None


def normalize(text: str) -> str:
    """Lower case, single spaces, no punctuation: for comparing texts."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.findall(r"\w+", text))
