"""The one exception hierarchy of gabay; third-party errors are converted where they enter.

Every error is built whole: what a handler needs (the failed LLM call, how long to wait, whether
an email may have gone out) is a constructor argument, never patched on afterwards.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ValidationError


class GabayError(Exception):
    """Base of every error raised by gabay."""


class ConfigError(GabayError):
    """A setting is missing or has a wrong value; start-up stops with one clear line."""


class RedisUnavailable(GabayError):
    """Redis does not answer (configured, local or embedded)."""


class InvalidInput(GabayError):
    """A request or submission is malformed: final, never retried, dead-lettered with the reason."""


class ProviderError(GabayError):
    """An LLM provider call failed; ``call`` is its gabay.jobs.LLMCall (ok=False) when known.

    ``call`` is typed ``object``: this module sits below gabay.jobs and cannot import it.
    """

    def __init__(self, message: str, *, call: object | None = None) -> None:
        super().__init__(message)
        self.call = call


class ProviderUnavailable(ProviderError):
    """A transient provider failure (5xx, timeout, 429 after retries, bad output): try the other."""


class ProviderRejected(ProviderError):
    """A final provider failure (401, 400, insufficient quota): retrying cannot help."""


# -- LLM spend and provider limits (gabay/llm) --
class ProviderQuotaExhausted(ProviderUnavailable):
    """The account is out of quota or balance (OpenAI 429 ``insufficient_quota``, DeepSeek 402):
    this provider cannot help until someone pays, but the other provider can take over."""


class ProviderHeld(ProviderUnavailable):
    """The provider budget holds this provider x model x key (a 429 until its reset, or no room
    left in its RPM/TPM/concurrency): the call was not made. ``retry_in_ms``: when to try again."""

    def __init__(self, message: str, *, retry_in_ms: int, call: object | None = None) -> None:
        super().__init__(message, call=call)
        self.retry_in_ms = retry_in_ms


class BudgetExhausted(ProviderRejected):
    """The job's token budget (LLM_JOB_TOKEN_BUDGET) is spent: no further paid call for it."""


class CallbackFailed(GabayError):
    """A result callback could not be delivered (connection error or non-2xx answer): retried."""


class EmailError(GabayError):
    """Sending an email failed."""


class EmailRetryable(EmailError):
    """A transient email failure (429, 5xx, connection): retry later.

    ``retry_after``: seconds the server asked us to wait, when it said. ``maybe_sent``: False
    only when the email surely was not accepted (a 429), True when it may have been (no answer).
    """

    def __init__(self, message: str, *, retry_after: float | None = None, maybe_sent: bool = True) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.maybe_sent = maybe_sent


class EmailLogUnavailable(EmailRetryable):
    """The provider's log of sent emails could not be read, so an uncertain email is not re-sent.

    Raised before any send (fail closed): this attempt sent nothing, an earlier one still may have.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message, retry_after=retry_after, maybe_sent=False)


class EmailRejected(EmailError):
    """A final email failure (400, 401, 402): fix the configuration or the input."""


class EmailUncertain(EmailError):
    """An earlier attempt may have sent the email and the provider's log cannot settle it: not re-sent.

    A person checks the provider's logs (the earlier attempt is older than the log can be searched,
    or the recipient has more logged emails than one search reads).
    """


class JobNotFound(GabayError):
    """No job record with this id (never existed or expired)."""


class JobFinished(GabayError):
    """A stage message of a job that already finished: a duplicate, it changes nothing."""


class UnknownQueue(GabayError):
    """A queue name that gabay does not know."""


# -- results store (gabay/store) --

class StoreUnavailable(GabayError):
    """The results database does not answer or refused a write; the job retries the write."""


class SchemaOutdated(GabayError):
    """The results database's schema is older (or newer) than this code: run ``gabay db upgrade``."""



# -- alerts (gabay/alerts) --

class AlertDeliveryFailed(GabayError):
    """An alert channel did not take a notification; ``permanent``: retrying cannot help (a 4xx)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent



# -- scheduled jobs (gabay/schedules) --

class UnknownSchedule(GabayError):
    """A schedule name that the schedules file does not declare."""


# -- backups (gabay/backups) --

class BackupFailed(GabayError):
    """A backup could not be made (pg_dump, BGSAVE, the copy); nothing partial is kept."""


class BackupDamaged(GabayError):
    """A backup is incomplete or a file no longer matches its manifest's checksum: not restored."""


class RestoreRefused(GabayError):
    """The restore target is not empty (without ``--force``) or cannot take the backup."""


# -- privacy: claim check (gabay/cluster/claim_check.py) --

class ClaimCheckFailed(GabayError):
    """A message's payload could not be stored in Redis: the message was not enqueued."""


class PayloadMissing(InvalidInput):
    """A message's payload is gone (expired after CLAIM_CHECK_TTL, or forgotten): dead-lettered."""


# -- client API and callbacks (gabay/client, gabay/callbacks) --

class JobNotFinished(GabayError):
    """``wait`` gave up: the job is still queued or running. ``record`` is its last read (a
    gabay.jobs.JobRecord, typed ``object``: this module sits below gabay.jobs)."""

    def __init__(self, message: str, *, record: object = None) -> None:
        super().__init__(message)
        self.record = record



def describe_validation(exc: ValidationError, *, subject: str, limit: int | None = None,
                        names: Literal["path", "variable"] = "path") -> str:
    """Every problem of ``exc`` on one line: ``answers.0.max_points: Input should be ...; ...``.

    One wording for requests, submissions and settings. ``names="path"`` names a problem by its
    dotted field path (``subject`` when it concerns the whole object); ``"variable"`` by the
    upper-cased top-level field, i.e. the environment variable. Values are never echoed (they may
    be secrets). With ``limit``, at most that many problems, then ``; and N more``.
    """
    errors = exc.errors()
    problems = []
    for error in errors if limit is None else errors[:limit]:
        loc = error["loc"]
        if names == "variable":
            where = (str(loc[0]) if loc else subject).upper()
        else:
            where = ".".join(str(part) for part in loc) or subject
        problems.append(f"{where}: {str(error['msg']).removeprefix('Value error, ')}")
    more = len(errors) - limit if limit is not None else 0
    return "; ".join(problems) + (f"; and {more} more" if more > 0 else "")
