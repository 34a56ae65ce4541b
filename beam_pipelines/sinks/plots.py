"""Histograms for the pages, written as SVG by hand and embedded as `<img>` elements with a data URI: no file, no
script, no font fetched, and no ids that could clash between plots.

A plot is a few dozen rectangles and labels, so it is written directly (about a millisecond) rather than through
a plotting library, whose import and rendering cost more than the rest of the run's last step. The SVG depends
only on the counts, so a page is byte-identical across runners and worker counts.
"""

from __future__ import annotations

import base64
import html
import math

GREEN, RED, GREY, BLUE = "#1a7f37", "#b00020", "#8c959f", "#1a5fb4"
LABEL_COLOURS = {"+": GREEN, "-": RED, "neutral": GREY}
SERIES_COLOURS = ("#1a5fb4", "#e66100", "#26a269", "#a51d2d", "#613583", "#865e3c", "#c061cb", "#63452c", "#9a9996")
HEIGHT, TOP, BOTTOM, LEFT = 212, 30, 62, 46
WIDTH_ONE, WIDTH_LEGEND, LEGEND = 330, 350, 96
FONT = 'font-family="DejaVu Sans, Arial, sans-serif"'


def _ticks(top: int) -> list[int]:
    """At most five integer ticks from 0 that cover `top`, in steps of 1, 2 or 5 times a power of ten."""
    if top <= 0:
        return [0, 1]
    rough = top / 4
    power = 10 ** math.floor(math.log10(rough)) if rough >= 1 else 1
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= rough)
    return list(range(0, top + step, step)) if top % step else list(range(0, top + 1, step))


def _text(x: float, y: float, text: str, size: int = 10, anchor: str = "middle", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{extra}>{html.escape(text)}</text>'


def bar_chart(
    title: str, labels: list[str], series: dict[str, list[int]], colours: dict[str, str] | None = None
) -> str:
    """One histogram as an `<img>` element: a bar per bin, the series stacked (a legend names them when there
    is more than one), the total over each bar when there are at most twelve."""
    names = list(series)
    palette = colours or {name: SERIES_COLOURS[i % len(SERIES_COLOURS)] for i, name in enumerate(names)}
    totals = [sum(counts) for counts in zip(*series.values(), strict=True)]
    width = WIDTH_LEGEND + LEGEND if len(names) > 1 else WIDTH_ONE
    right = width - (LEGEND if len(names) > 1 else 10)
    ticks = _ticks(max(totals, default=0))
    plot_h = HEIGHT - TOP - BOTTOM
    scale = plot_h / ticks[-1]
    slot = (right - LEFT) / max(1, len(labels))
    parts = [_text(4, 14, f"{title} (n={sum(totals):,})", 11, "start")]
    for tick in ticks:
        y = TOP + plot_h - tick * scale
        parts.append(f'<line x1="{LEFT - 3}" y1="{y:.1f}" x2="{LEFT}" y2="{y:.1f}" stroke="#444"/>')
        parts.append(_text(LEFT - 5, y + 3.5, f"{tick:,}", 9, "end"))
    every = 1 if len(labels) <= 12 else -(-len(labels) // 10)  # past twelve bins, about ten labels
    rotate = len(labels) > 6
    for i, label in enumerate(labels):
        x = LEFT + i * slot
        bottom = 0
        for name in names:
            count = series[name][i]
            if count:
                y = TOP + plot_h - (bottom + count) * scale
                parts.append(
                    f'<rect x="{x + slot * 0.075:.1f}" y="{y:.1f}" width="{slot * 0.85:.1f}" '
                    f'height="{count * scale:.1f}" fill="{palette.get(name, BLUE)}"/>'
                )
            bottom += count
        centre, base = x + slot / 2, TOP + plot_h
        if i % every == 0:
            turn = f' transform="rotate(-45 {centre:.1f} {base + 12:.1f})"' if rotate else ""
            parts.append(_text(centre, base + 12, label, 9, "end" if rotate else "middle", turn))
        if len(labels) <= 12 and totals[i]:
            parts.append(_text(centre, TOP + plot_h - totals[i] * scale - 2, f"{totals[i]:,}", 8))
    parts.append(f'<path d="M{LEFT} {TOP - 4} V{TOP + plot_h} H{right}" fill="none" stroke="#444" stroke-width="1"/>')
    if len(names) > 1:
        for i, name in enumerate(names):
            y = TOP + i * 14
            parts.append(f'<rect x="{right + 8}" y="{y}" width="9" height="9" fill="{palette.get(name, BLUE)}"/>')
            parts.append(_text(right + 21, y + 8.5, name, 9, "start"))
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{HEIGHT}" '
        f'viewBox="0 0 {width} {HEIGHT}" {FONT} fill="#222"><rect width="100%" height="100%" fill="#fff"/>'
        + "".join(parts)
        + "</svg>"
    )
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return f'<img class="plot" alt="{html.escape(title)}" src="data:image/svg+xml;base64,{data}">'
