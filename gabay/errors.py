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
    """An LLM provider call failed."""


class ProviderUnavailable(ProviderError):
    """A transient provider failure (5xx, timeout, 429 after retries, bad output): try the other."""


class ProviderRejected(ProviderError):
    """A final provider failure (401, 400, insufficient quota): retrying cannot help."""


class EmailError(GabayError):
    """Sending an email failed."""


class EmailRetryable(EmailError):
    """A transient email failure (429, 5xx, connection): retry later."""


class EmailRejected(EmailError):
    """A final email failure (400, 401, 402): fix the configuration or the input."""


class JobNotFound(GabayError):
    """No job record with this id (never existed or expired)."""


class UnknownQueue(GabayError):
    """A queue name that gabay does not know."""
