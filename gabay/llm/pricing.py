"""What an LLM call costs, in USD, from its token counts.

Prices are USD per 1M tokens as ``(input, cached input, output)``. Cached input tokens are a
subset of the prompt tokens, so a call costs
``(prompt - cached) * input + cached * cached_input + completion * output``.

Sources (checked 2026-11-29):

- ``gpt-4o-mini``: $0.15 / $0.075 / $0.60, standard tier (OpenAI pricing page as quoted by
  several secondary price lists). The model shuts down on 2027-01-14.
- ``gpt-6-luna`` (its announced replacement): $0.10 / $0.01 / $0.50, from a secondary source only.
- ``deepseek-flash`` (DeepSeek-V4.1-Flash, also served for ``deepseek-v4-flash``): peak and
  off-peak prices; peak hours are 01:00-04:00 and 06:00-10:00 UTC (09:00-12:00 and 14:00-18:00
  Beijing time), Monday to Friday only (by the Beijing date), excluding Chinese public holidays
  (``DEEPSEEK_HOLIDAYS``: the dates, which change every year); off-peak costs half.
  Off-peak $0.15 / $0.003 / $0.60, peak $0.30 / $0.006 / $1.20 (DeepSeek pricing page).
- ``deepseek-v4-pro``: routed to V4.1-Flash and billed at the Flash price since 2026-09-14.

``LLM_PRICES`` (JSON, e.g. ``{"gpt-6-luna": [0.1, 0.01, 0.5]}``) overrides any entry with one flat
price. An unknown model costs 0 and is warned about once per process.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Collection

from gabay.settings import Settings

logger = logging.getLogger(__name__)

Price = tuple[float, float, float]

#: Flat prices: model -> (input, cached input, output), USD per 1M tokens.
FLAT_PRICES: dict[str, Price] = {
    "gpt-4o-mini": (0.15, 0.075, 0.60),
    "gpt-4o-mini-2024-07-18": (0.15, 0.075, 0.60),
    "gpt-6-luna": (0.10, 0.01, 0.50),
}

DEEPSEEK_FLASH_OFF_PEAK: Price = (0.15, 0.003, 0.60)
DEEPSEEK_FLASH_PEAK: Price = (0.30, 0.006, 1.20)
#: Models billed at the DeepSeek Flash schedule.
DEEPSEEK_FLASH_MODELS = frozenset({"deepseek-flash", "deepseek-v4-flash", "deepseek-v4-pro"})
#: Peak hours (UTC), as half-open [start, end) hour ranges.
DEEPSEEK_PEAK_HOURS = ((1, 4), (6, 10))
#: DeepSeek's days are Beijing days (UTC+8): peak applies Monday to Friday there.
DEEPSEEK_TZ = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
#: When the table above was last checked against the providers' pricing pages.
PRICES_CHECKED = dt.date(2026, 12, 3)


def is_deepseek_peak(at: dt.datetime, holidays: Collection[dt.date] = ()) -> bool:
    """True when ``at`` falls in DeepSeek's peak hours: a peak hour (UTC) of a Monday to Friday
    (Beijing date) that is not one of ``holidays``."""
    local = at.astimezone(DEEPSEEK_TZ)
    if local.weekday() >= 5 or local.date() in holidays:
        return False
    hour = at.astimezone(dt.UTC).hour
    return any(start <= hour < end for start, end in DEEPSEEK_PEAK_HOURS)


def price_of(settings: Settings, model: str, at: dt.datetime | None = None) -> Price | None:
    """The price of ``model`` at time ``at`` (now by default), or None when unknown."""
    if model in settings.llm_prices:
        return settings.llm_prices[model]
    if model in DEEPSEEK_FLASH_MODELS:
        at = at or dt.datetime.now(dt.UTC)
        peak = is_deepseek_peak(at, settings.deepseek_holidays)
        return DEEPSEEK_FLASH_PEAK if peak else DEEPSEEK_FLASH_OFF_PEAK
    return FLAT_PRICES.get(model)


def cost_usd(settings: Settings, model: str, prompt_tokens: int, cached_tokens: int,
             completion_tokens: int, at: dt.datetime | None = None) -> float:
    """The cost of one call in USD (0 for an unknown model, with a warning once)."""
    price = price_of(settings, model, at)
    if price is None:
        _warn_unknown(model)
        return 0.0
    cached = min(max(cached_tokens, 0), prompt_tokens)
    input_price, cached_price, output_price = price
    total = (prompt_tokens - cached) * input_price + cached * cached_price
    total += completion_tokens * output_price
    return round(total / 1_000_000, 10)


@functools.lru_cache(maxsize=256)
def _warn_unknown(model: str) -> None:
    logger.warning("No price known for model %r: its calls are recorded at cost 0; "
                   "set LLM_PRICES to price it", model)
