"""A statistic that may be undefined: its value, or None with the reason (never a division error)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Measure(BaseModel):
    model_config = ConfigDict(frozen=True)

    value: float | None
    reason: str | None = None

    @classmethod
    def of(cls, value: float) -> Measure:
        return cls(value=value)

    @classmethod
    def undefined(cls, reason: str) -> Measure:
        return cls(value=None, reason=reason)
