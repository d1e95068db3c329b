"""A throughput chart as inline SVG: one stacked bar per minute, completed below failed.

Drawn on the server so that the page needs no script library and works offline.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT, TOP, BOTTOM = 360, 90, 12, 14


def throughput_svg(points: Sequence[Sequence[int]], label: str) -> Markup:
    """SVG for ``[(minute_epoch, completed, failed), ...]`` (oldest first)."""
    if not points:
        return Markup('<p class="muted">no data</p>')
    peak = max(max(c + f for _, c, f in points), 1)
    bar = WIDTH / len(points)
    plot = HEIGHT - TOP - BOTTOM
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
             f'role="img" aria-label="{escape(label)}">',
             f'<line x1="0" y1="{HEIGHT - BOTTOM}" x2="{WIDTH}" y2="{HEIGHT - BOTTOM}" class="axis"/>',
             f'<text x="0" y="9" class="tick">{peak}/min</text>']
    for i, (minute, completed, failed) in enumerate(points):
        x = round(i * bar + 0.5, 2)
        ok_h = round(plot * completed / peak, 2)
        bad_h = round(plot * failed / peak, 2)
        base = HEIGHT - BOTTOM
        clock = dt.datetime.fromtimestamp(minute).strftime("%H:%M")
        parts.append(f'<g><title>{clock}: {completed} completed, {failed} failed</title>')
        parts.append(f'<rect x="{x}" y="{base - ok_h}" width="{round(bar - 1, 2)}" height="{ok_h}" '
                     'class="ok"/>')
        parts.append(f'<rect x="{x}" y="{base - ok_h - bad_h}" width="{round(bar - 1, 2)}" '
                     f'height="{bad_h}" class="bad"/></g>')
    first = dt.datetime.fromtimestamp(points[0][0]).strftime("%H:%M")
    parts.append(f'<text x="0" y="{HEIGHT - 2}" class="tick">{first}</text>')
    parts.append(f'<text x="{WIDTH}" y="{HEIGHT - 2}" class="tick end">now</text></svg>')
    return Markup("".join(parts))
