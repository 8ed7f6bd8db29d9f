"""Charts of a run's figures, drawn by matplotlib: static SVG for report.html and the web
workspace, PNG for report.docx. No JavaScript; the same chart gives the same bytes (the SVG's ids
are salted with a fixed string and no date is written), so reports stay deterministic.

A chart never stands alone: the figures it draws are in the tables beside it, for readers who
cannot see it, and its ``alt`` text says so."""

from __future__ import annotations

import dataclasses
import io
import re

#: Marker and shade per column (the whole sample first, then each provider): told apart in grey print.
STYLES = (("o", "#000000"), ("s", "#1f5f99"), ("^", "#b34d00"), ("D", "#3d7a3d"), ("v", "#7a3d7a"))
#: Settings that make the output reproducible and its text real text (searchable, accessible).
SETTINGS = {"svg.hashsalt": "qi", "svg.fonttype": "none", "font.size": 9, "font.family": "DejaVu Sans"}


@dataclasses.dataclass
class Chart:
    """A dot-and-whisker chart: for each row (a criterion), each column's percentage with its
    interval. ``columns`` name the groups; each row's ``points`` are (percent, low, high) per
    column, ``None`` where there is no figure."""

    title: str
    axis: str
    alt: str
    columns: list[str]
    rows: list[tuple[str, list[tuple[float, float | None, float | None] | None]]]
    kind: str = "chart"
    #: What the chart's element ids start with inline, so several charts on one page never share one.
    name: str = "criteria"


def _figure(chart: Chart):
    """The chart drawn on a matplotlib Figure (imported here: only runs that draw pay for it)."""
    from matplotlib.figure import Figure
    height = 0.9 + 0.28 * len(chart.rows) * max(1, len(chart.columns)) ** 0.5
    figure = Figure(figsize=(6.4, height), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    offsets = [0.6 * (j - (len(chart.columns) - 1) / 2) / max(1, len(chart.columns)) for j in range(len(chart.columns))]
    for j, column in enumerate(chart.columns):
        marker, colour = STYLES[j % len(STYLES)]
        ys, xs, low, high = [], [], [], []
        for i, (_, points) in enumerate(chart.rows):
            point = points[j] if j < len(points) else None
            if point is None or point[0] is None:
                continue
            ys.append(i + offsets[j])
            xs.append(point[0])
            low.append(point[0] - point[1] if point[1] is not None else 0)
            high.append(point[2] - point[0] if point[2] is not None else 0)
        if xs:
            axes.errorbar(xs, ys, xerr=[low, high], fmt=marker, color=colour, ecolor=colour, elinewidth=1,
                          capsize=2, markersize=4, label=column)
    axes.set_yticks(range(len(chart.rows)), [label for label, _ in chart.rows])
    axes.invert_yaxis()
    axes.set_xlim(-2, 102)
    axes.set_xlabel(chart.axis)
    axes.grid(axis="x", color="#dddddd", linewidth=0.5)
    axes.set_axisbelow(True)
    axes.set_title(chart.title, loc="left", fontsize=10)
    if len(chart.columns) > 1:
        axes.legend(loc="lower center", bbox_to_anchor=(0.5, 1.04), ncols=min(len(chart.columns), 5), frameon=False,
                    fontsize=8)
    return figure


def svg(chart: Chart, inline: bool = False) -> str:
    """The chart as an SVG document (text), without the XML prologue or matplotlib's metadata;
    ``inline`` (inside an HTML page) also without the namespace declarations HTML does not need,
    so a self-contained report names no address anywhere, and with its element ids prefixed by
    the chart's name, so that charts on one page never share an id."""
    import matplotlib
    with matplotlib.rc_context(SETTINGS):
        buffer = io.StringIO()
        _figure(chart).savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text[text.index("<svg"):], flags=re.S)
    text = re.sub(r"<!--.*?-->\s*", "", text, flags=re.S)
    if inline:
        text = re.sub(r'\s+xmlns(?::xlink)?="[^"]*"', "", text)
        text = re.sub(r'(\bid="|url\(#|href="#)', lambda m: m.group(1) + chart.name + "-", text)
    return text


def png(chart: Chart) -> bytes:
    """The chart as PNG, for Word."""
    import matplotlib
    with matplotlib.rc_context(SETTINGS):
        buffer = io.BytesIO()
        _figure(chart).savefig(buffer, format="png", dpi=150, metadata={"Software": None})
    return buffer.getvalue()
