"""The one exception hierarchy of gabay; third-party errors are converted where they enter."""


class GabayError(Exception):
    """Base of every error raised by gabay."""


class ConfigError(GabayError):
    """A setting is missing or has a wrong value; start-up stops with one clear line."""


class RedisUnavailable(GabayError):
    """Redis does not answer (configured, local or embedded)."""


class InvalidInput(GabayError):
    """A request or submission is malformed: final, never retried, dead-lettered with the reason."""


class ProviderError(GabayError):
    """An LLM provider call failed; ``call`` is its gabay.jobs.LLMCall (ok=False) when known."""

    call: object | None = None


class ProviderUnavailable(ProviderError):
    """A transient provider failure (5xx, timeout, 429 after retries, bad output): try the other."""


class ProviderRejected(ProviderError):
    """A final provider failure (401, 400, insufficient quota): retrying cannot help."""


class CallbackFailed(GabayError):
    """A result callback could not be delivered (connection error or non-2xx answer): retried."""


class EmailError(GabayError):
    """Sending an email failed."""


class EmailRetryable(EmailError):
    """A transient email failure (429, 5xx, connection): retry later.

    ``retry_after``: seconds the server asked us to wait, when it said. ``maybe_sent``: False
    only when the email surely was not accepted (a 429), True when it may have been (no answer).
    """

    retry_after: float | None = None
    maybe_sent: bool = True


class EmailRejected(EmailError):
    """A final email failure (400, 401, 402): fix the configuration or the input."""


class EmailUncertain(EmailError):
    """An earlier attempt may have sent the email and its idempotency key expired: not re-sent."""


class JobNotFound(GabayError):
    """No job record with this id (never existed or expired)."""


class UnknownQueue(GabayError):
    """A queue name that gabay does not know."""
