"""Server-side SVG charts for survey results. Every chart has a title and a text
alternative, and the page always shows the same numbers in a table beside it."""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

BAR_COLOUR = "#1d5fa8"  # 6.6:1 on white
TEXT_COLOUR = "#1a1a1a"


def bar_chart(*, title: str, labels: list[str], counts: list[int], width: int = 320) -> SafeString:
    """Horizontal bars, one per option; the label sits above each bar so long Korean labels fit a phone."""
    row = 34
    height = max(1, len(labels)) * row + 8
    top = max(counts, default=0) or 1
    bar_space = width - 60
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for index, (label, count) in enumerate(zip(labels, counts, strict=True)):
        y = index * row + 4
        length = round(bar_space * count / top)
        parts.append(f'<text x="0" y="{y + 10}" font-size="11" fill="{TEXT_COLOUR}">{escape(label[:60])}</text>')
        parts.append(f'<rect x="0" y="{y + 14}" width="{max(length, 1)}" height="12" fill="{BAR_COLOUR}"/>')
        parts.append(f'<text x="{length + 4}" y="{y + 24}" font-size="11" fill="{TEXT_COLOUR}">{count}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text piece is escaped above


def interval_chart(*, title: str, mean: float | None, low: float | None, high: float | None,
                   scale_min: float, scale_max: float, width: int = 320) -> SafeString:
    """A mean as a dot with its 95 % confidence interval as a whisker on the answer scale."""
    if mean is None:
        return mark_safe("")
    span = (scale_max - scale_min) or 1.0
    pad = 16

    def x(value: float) -> float:
        clamped = min(max(value, scale_min), scale_max)
        return round(pad + (width - 2 * pad) * (clamped - scale_min) / span, 1)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} 48" width="100%" '
        f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>',
        f'<line x1="{pad}" y1="30" x2="{width - pad}" y2="30" stroke="#767676"/>',
        f'<text x="{pad}" y="46" font-size="10" fill="{TEXT_COLOUR}">{scale_min:g}</text>',
        f'<text x="{width - pad}" y="46" font-size="10" text-anchor="end" fill="{TEXT_COLOUR}">{scale_max:g}</text>',
    ]
    if low is not None and high is not None:
        parts.append(f'<line x1="{x(low)}" y1="20" x2="{x(high)}" y2="20" stroke="{BAR_COLOUR}" stroke-width="2"/>')
        for end in (low, high):
            parts.append(f'<line x1="{x(end)}" y1="14" x2="{x(end)}" y2="26" stroke="{BAR_COLOUR}" stroke-width="2"/>')
    parts.append(f'<circle cx="{x(mean)}" cy="20" r="5" fill="{BAR_COLOUR}"/>')
    parts.append(f'<text x="{x(mean)}" y="10" font-size="10" text-anchor="middle" fill="{TEXT_COLOUR}">{mean:.2f}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - numbers and escaped text only
