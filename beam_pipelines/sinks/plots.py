"""Histograms drawn with matplotlib for the pages, as `<img>` elements with an SVG data URI: no file, no script,
no font fetched, and each plot's SVG ids stay inside its own image.

The SVG is deterministic for the same counts (fixed hash salt, no date), so a page is byte-identical across
runners and worker counts; text stays text (`svg.fonttype none`), drawn in a local sans-serif font. Figures are
made without pyplot (no global state) and with a fixed layout (a tight layout would triple the time per plot).
"""

from __future__ import annotations

import base64
import html
import io

GREEN, RED, GREY, BLUE = "#1a7f37", "#b00020", "#8c959f", "#1a5fb4"
LABEL_COLOURS = {"+": GREEN, "-": RED, "neutral": GREY}
SERIES_COLOURS = ("#1a5fb4", "#e66100", "#26a269", "#a51d2d", "#613583", "#865e3c", "#c061cb", "#63452c", "#9a9996")
_STYLE = {
    "svg.hashsalt": "vgr-etl",
    "svg.fonttype": "none",
    "font.size": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def bar_chart(
    title: str, labels: list[str], series: dict[str, list[int]], colours: dict[str, str] | None = None
) -> str:
    """One histogram as an `<img>` element: a bar per bin, the series stacked (a legend names them when there
    is more than one), the total over each bar when there is room."""
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    names = list(series)
    palette = colours or {name: SERIES_COLOURS[i % len(SERIES_COLOURS)] for i, name in enumerate(names)}
    totals = [sum(counts) for counts in zip(*series.values(), strict=True)]
    with matplotlib.rc_context(_STYLE):
        figure = Figure(figsize=(3.6 if len(names) > 1 else 3.4, 2.2))
        figure.subplots_adjust(left=0.14, right=0.97 if len(names) == 1 else 0.72, top=0.86, bottom=0.3)
        axes = figure.add_subplot()
        positions = list(range(len(labels)))
        bottom = [0] * len(labels)
        for name in names:
            counts = series[name]
            axes.bar(positions, counts, bottom=bottom, color=palette.get(name, BLUE), width=0.85, label=name)
            bottom = [b + n for b, n in zip(bottom, counts, strict=True)]
        axes.set_title(f"{title} (n={sum(totals):,})", loc="left")
        every = 1 if len(labels) <= 12 else -(-len(labels) // 10)  # past twelve bins, about ten tick labels
        shown = [label if i % every == 0 else "" for i, label in enumerate(labels)]
        axes.set_xticks(
            positions, shown, rotation=45 if len(labels) > 6 else 0, ha="right" if len(labels) > 6 else "center"
        )
        axes.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
        axes.margins(x=0.02)
        if len(labels) <= 12:
            for x, total in zip(positions, totals, strict=True):
                if total:
                    axes.annotate(f"{total:,}", (x, total), ha="center", va="bottom", fontsize=6)
        if len(names) > 1:
            axes.legend(fontsize=6, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        out = io.StringIO()
        figure.savefig(out, format="svg", metadata={"Date": None})
    data = base64.b64encode(out.getvalue().encode("utf-8")).decode("ascii")
    return f'<img class="plot" alt="{html.escape(title)}" src="data:image/svg+xml;base64,{data}">'
