"""Rate specifications such as ``10/m``: parsed once, shared by settings and the rate-limit middleware."""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_PATTERN = re.compile(r"^\s*(\d+)\s*/\s*(?:(\d+(?:\.\d+)?)\s*s|([smh]))\s*$")


@dataclass(frozen=True)
class Rate:
    """At most ``limit`` starts in any window of ``window_seconds``."""

    limit: int
    window_seconds: float

    @property
    def window_ms(self) -> int:
        return round(self.window_seconds * 1000)

    def __str__(self) -> str:
        return f"{self.limit}/{self.window_seconds:g}s"


def parse_rate(text: str | Rate) -> Rate:
    """Parse ``N/s``, ``N/m``, ``N/h`` or ``N/<seconds>s`` into a :class:`Rate`.

    Raises ValueError with a message fit for an operator when the text is not a rate.
    """
    if isinstance(text, Rate):
        return text
    match = _PATTERN.match(str(text))
    if not match:
        raise ValueError(
            f"invalid rate {text!r}: expected N/s, N/m, N/h or N/<seconds>s, such as 10/m or 5/2s"
        )
    limit = int(match.group(1))
    window = float(match.group(2)) if match.group(2) else _UNITS[match.group(3)]
    if limit < 1 or window <= 0:
        raise ValueError(f"invalid rate {text!r}: the count and the window must be positive")
    return Rate(limit=limit, window_seconds=window)
