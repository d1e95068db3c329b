"""The health page: Jinja templates (autoescaped) rendered from the overview data."""

from __future__ import annotations

import datetime as dt
import time
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from gabay.web.chart import throughput_svg

STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".svg": "image/svg+xml"}


def when(value: Any) -> str:
    """An epoch time (or ISO text) as local ``YYYY-MM-DD HH:MM:SS``."""
    if value is None or value == "":
        return "-"
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value).strftime("%Y-%m-%d %H:%M:%S")
    return str(value).replace("T", " ")[:19]


def ago(value: Any, now: float | None = None) -> str:
    """How long ago an epoch time was, such as ``3 s ago``."""
    if not isinstance(value, int | float):
        return when(value)
    return duration((now or time.time()) - value) + " ago"


def duration(seconds: Any) -> str:
    seconds = max(0, int(seconds or 0))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def build_environment() -> Environment:
    env = Environment(loader=PackageLoader("gabay.web", "templates"),
                      autoescape=select_autoescape(["html"]), undefined=StrictUndefined)
    env.filters.update(when=when, ago=ago, duration=duration)
    env.globals.update(chart=throughput_svg)
    return env


def load_static() -> dict[str, tuple[bytes, str]]:
    """The page's own stylesheet and script, read once (no CDN: the page works offline)."""
    files = {}
    for entry in resources.files("gabay.web").joinpath("static").iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if suffix in STATIC_TYPES:
            files[entry.name] = (entry.read_bytes(), STATIC_TYPES[suffix])
    return files


class Pages:
    """Renders the full page and the live part that the page reloads every few seconds."""

    def __init__(self) -> None:
        self.env = build_environment()

    def index(self, data: dict[str, Any], **context: Any) -> str:
        return self.env.get_template("index.html").render(data=data, **context)

    def live(self, data: dict[str, Any], **context: Any) -> str:
        return self.env.get_template("_live.html").render(data=data, **context)

    def exam(self, form_id: str, stored: dict[str, Any] | None, **context: Any) -> str:
        """One exam's analytics (``stored``: the API's document; None: not analysed yet)."""
        return self.env.get_template("exam.html").render(form_id=form_id, stored=stored, **context)
