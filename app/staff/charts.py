"""Small server-drawn SVG charts: no JavaScript, readable by screen readers, a table beside them.

Each chart is an <svg role="img"> named by its <title> and summarised by its <desc>; the page
puts the same numbers in a table, which is what assistive technology and print use.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import count

from markupsafe import Markup, escape

WIDTH, HEIGHT = 720, 220
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 44, 8, 10, 28
X_LABELS = 6  # at most this many bucket labels under the axis, evenly spaced

_ids = count(1)


@dataclass(frozen=True)
class Series:
    name: str  # shown in the legend and each bar's tooltip, e.g. "People"
    css_class: str  # colours the bars: "human" or "machine"
    values: list[int]


def grouped_bars(title: str, description: str, labels: list[str], series: list[Series]) -> Markup:
    """Draw, for each label, one bar per series side by side, as an accessible SVG.

    Side by side, not stacked: the series may count the same recipient (a person whose mail
    was also fetched by a scanner), so their sum means nothing. Every (label, series) pair gets
    a <rect class="bar …">, zero-height for 0, so there are always len(labels) × len(series).
    """
    chart_id = f"chart-{next(_ids)}"
    plot_width = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_height = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    top = max((max(s.values, default=0) for s in series), default=0) or 1
    slot = plot_width / max(len(labels), 1)
    bar_width = max(slot * 0.8 / max(len(series), 1), 0.5)
    baseline = MARGIN_TOP + plot_height

    parts = [
        f'<svg role="img" aria-labelledby="{chart_id}-title {chart_id}-desc" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" class="bar-chart">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>',
        f'<line class="axis" x1="{MARGIN_LEFT}" y1="{baseline}" '
        f'x2="{WIDTH - MARGIN_RIGHT}" y2="{baseline}" stroke="currentColor"/>',
        f'<text class="tick" x="{MARGIN_LEFT - 6}" y="{MARGIN_TOP + 10}" '
        f'text-anchor="end" font-size="11">{top}</text>',
        f'<text class="tick" x="{MARGIN_LEFT - 6}" y="{baseline}" '
        f'text-anchor="end" font-size="11">0</text>',
    ]
    for n, label in enumerate(labels):
        x = MARGIN_LEFT + n * slot + slot * 0.1
        for s in series:
            value = s.values[n]
            height = plot_height * value / top
            parts.append(
                f'<rect class="bar {escape(s.css_class)}" x="{x:.1f}" y="{baseline - height:.1f}" '
                f'width="{bar_width:.1f}" height="{height:.1f}" data-value="{value}">'
                f"<title>{escape(label)}: {value} {escape(s.name)}</title></rect>"
            )
            x += bar_width
    every = max(1, -(-len(labels) // X_LABELS))
    for n in range(0, len(labels), every):
        x = MARGIN_LEFT + n * slot + slot / 2
        parts.append(
            f'<text class="tick" x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="middle" '
            f'font-size="11">{escape(labels[n])}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
