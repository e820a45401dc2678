"""Tiny inline-SVG charts for self-contained HTML pages (no JavaScript, no network).

Hand-written rather than matplotlib: a card needs three chart shapes, and a few lines of
SVG keep the page small and the package free of a plotting dependency.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from html import escape

WIDTH = 520
BAR_HEIGHT = 22


def interval_bars(
    rows: Sequence[tuple[str, float, float | None, float | None]],
    *,
    lo: float = 0.0,
    hi: float = 1.0,
) -> str:
    """Horizontal bars with optional interval whiskers: (label, value, lower, upper).

    >>> "<svg" in interval_bars([("auc", 0.9, 0.88, 0.92)])
    True
    """
    label_w, plot_w = 150, WIDTH - 200
    height = BAR_HEIGHT * len(rows) + 20
    span = (hi - lo) or 1.0

    def x(v: float) -> float:
        return label_w + plot_w * (min(max(v, lo), hi) - lo) / span

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" role="img">'
    ]
    for i, (label, value, lower, upper) in enumerate(rows):
        y = 10 + i * BAR_HEIGHT
        parts.append(f'<text x="0" y="{y + 14}" font-size="12">{escape(label)}</text>')
        parts.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{x(value) - label_w:.1f}" height="14" '
            'fill="#4c78a8"/>'
        )
        if lower is not None and upper is not None:
            parts.append(
                f'<line x1="{x(lower):.1f}" x2="{x(upper):.1f}" y1="{y + 10}" y2="{y + 10}" '
                'stroke="#222" stroke-width="2"/>'
            )
        parts.append(
            f'<text x="{label_w + plot_w + 6}" y="{y + 14}" font-size="12">{value:.4g}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def reliability_diagram(confidence: Sequence[float], observed: Sequence[float]) -> str:
    """Mean predicted probability vs observed frequency per bin, with the diagonal.

    >>> "polyline" in reliability_diagram([0.1, 0.5, 0.9], [0.12, 0.48, 0.85])
    True
    """
    size, pad = 260, 30

    def px(v: float) -> float:
        return pad + (size - 2 * pad) * v

    def py(v: float) -> float:
        return size - pad - (size - 2 * pad) * v

    points = " ".join(f"{px(c):.1f},{py(o):.1f}" for c, o in zip(confidence, observed, strict=True))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" role="img">'
        f'<rect x="{pad}" y="{pad}" width="{size - 2 * pad}" height="{size - 2 * pad}" fill="none" stroke="#999"/>'
        f'<line x1="{px(0)}" y1="{py(0)}" x2="{px(1)}" y2="{py(1)}" stroke="#bbb" stroke-dasharray="4"/>'
        f'<polyline points="{points}" fill="none" stroke="#e45756" stroke-width="2"/>'
        + "".join(
            f'<circle cx="{px(c):.1f}" cy="{py(o):.1f}" r="3" fill="#e45756"/>'
            for c, o in zip(confidence, observed, strict=True)
        )
        + f'<text x="{size / 2 - 40}" y="{size - 6}" font-size="11">predicted probability</text>'
        + f'<text x="2" y="{pad - 8}" font-size="11">observed frequency</text></svg>'
    )


def quantile_strip(quantiles: Sequence[float], lo: float, hi: float) -> str:
    """A one-line box plot from quantiles (1%, 5%, 25%, 50%, 75%, 95%, 99%).

    >>> quantile_strip([1, 2, 3, 4, 5, 6, 7], 0, 8).count("<line")
    2
    """
    width, height = 220, 18
    span = (hi - lo) or 1.0

    def x(v: float) -> float:
        return 4 + (width - 8) * (v - lo) / span

    q = list(quantiles) + [quantiles[-1]] * (7 - len(quantiles))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">'
        f'<line x1="{x(q[0]):.1f}" x2="{x(q[6]):.1f}" y1="9" y2="9" stroke="#777"/>'
        f'<rect x="{x(q[2]):.1f}" y="3" width="{max(x(q[4]) - x(q[2]), 1):.1f}" height="12" fill="#9ecae9" '
        'stroke="#4c78a8"/>'
        f'<line x1="{x(q[3]):.1f}" x2="{x(q[3]):.1f}" y1="3" y2="15" stroke="#08306b" stroke-width="2"/></svg>'
    )


# Series are told apart by colour and by dash pattern, so a chart reads without colour too.
_PALETTE = ("#4c78a8", "#e45756", "#54a24b", "#b279a2", "#f58518",
            "#72b7b2", "#9d755d", "#eeca3b", "#ff9da6", "#79706e")  # fmt: skip
_DASHES = ("", "6 3", "2 2", "8 3 2 3", "1 4")
_LEGEND_COLUMN = 210


def series_style(index: int) -> tuple[str, str]:
    """Colour and dash pattern of the ``index``-th series (50 distinct pairs).

    >>> series_style(0), series_style(11)
    (('#4c78a8', ''), ('#e45756', '6 3'))
    """
    return _PALETTE[index % len(_PALETTE)], _DASHES[(index // len(_PALETTE)) % len(_DASHES)]


@dataclass(frozen=True)
class Band:
    """A shaded interval around a line: ``lows[i]`` to ``highs[i]`` at ``xs[i]`` (an
    estimate's confidence interval), named in the legend."""

    label: str
    xs: Sequence[float]
    lows: Sequence[float]
    highs: Sequence[float]


@dataclass(frozen=True)
class Marks:
    """Points drawn as a triangle, named in the legend: windows judged drifted, say. A shape
    and a word, so the chart reads without colour."""

    label: str
    xs: Sequence[float]
    ys: Sequence[float]


def line_chart(
    series: Sequence[tuple[str, Sequence[float], Sequence[float]]],
    *,
    title: str = "",
    x_label: str = "step",
    width: int = 640,
    height: int = 220,
    x_format: Callable[[float], str] = "{:.6g}".format,
    dashes: Sequence[str] = (),
    bands: Sequence[Band] = (),
    marks: Sequence[Marks] = (),
) -> str:
    """Overlaid lines ``(label, xs, ys)`` with min/max axis labels and a legend; scales to
    its container's width (``viewBox``); ``x_format`` writes the x axis' end labels (a time,
    for example). ``dashes[i]`` overrides the ``i``-th line's dash pattern (``""`` solid),
    ``bands`` shade intervals under the lines and ``marks`` draw triangles on points. A
    lone point is drawn as a dot. Downsample long series first
    (:func:`modelpilot.cards.downsample.downsample_min_max`).

    >>> svg = line_chart([("auc", [0, 1, 2], [0.5, 0.7, 0.8])], title="auc")
    >>> svg.count("<polyline"), "auc" in svg
    (1, True)
    >>> banded = line_chart([("est", [0, 1], [0.5, 0.6])], bands=[Band("95%", [0, 1], [0.4, 0.5],
    ...     [0.6, 0.7])], marks=[Marks("drifted", [1], [0.6])])
    >>> banded.count("<polygon"), "drifted" in banded, ">0.7<" in banded
    (3, True, True)
    """
    pad_l, pad_r, pad_t, pad_b = 64, 12, 10, 34
    entries = len(series) + len(bands) + len(marks)
    per_row = max(1, (width - pad_l) // _LEGEND_COLUMN)
    legend_h = 16 * -(-entries // per_row) if entries > 1 else 0
    total_h = height + legend_h
    xs_all = [x for _, xs, _ in series for x in xs] + [x for b in bands for x in b.xs] or [0.0]
    ys_all = [y for _, _, ys in series for y in ys] + [
        y for b in bands for y in (*b.lows, *b.highs)
    ] or [0.0]
    x0, x1 = min(xs_all), max(xs_all)
    y0, y1 = min(ys_all), max(ys_all)
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b

    def px(x: float) -> float:
        return pad_l + plot_w * ((x - x0) / (x1 - x0) if x1 > x0 else 0.5)

    def py(y: float) -> float:
        return pad_t + plot_h * (1 - ((y - y0) / (y1 - y0) if y1 > y0 else 0.5))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {total_h}" width="100%" '
        f'class="chart" role="img" aria-label="{escape(title or "chart")}">',
        f"<title>{escape(title)}</title>",
        f'<rect x="{pad_l}" y="{pad_t}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>',
        f'<text x="{pad_l - 4}" y="{pad_t + 10}" font-size="11" text-anchor="end">{y1:.4g}</text>',
        f'<text x="{pad_l - 4}" y="{pad_t + plot_h}" font-size="11" text-anchor="end">{y0:.4g}</text>',
        f'<text x="{pad_l}" y="{height - 18}" font-size="11">{escape(x_format(x0))}</text>',
        f'<text x="{pad_l + plot_w}" y="{height - 18}" font-size="11" text-anchor="end">{escape(x_format(x1))}</text>',
        f'<text x="{pad_l + plot_w / 2}" y="{height - 4}" font-size="11" text-anchor="middle">{escape(x_label)}</text>',
    ]

    def legend(i: int, symbol: Callable[[float, float], str], label: str) -> None:
        if legend_h:
            lx = pad_l + (i % per_row) * _LEGEND_COLUMN
            ly = height + 16 * (i // per_row) + 8
            parts.append(symbol(lx, ly))
            parts.append(
                f'<text x="{lx + 30}" y="{ly + 4}" font-size="11">{escape(label[:30])}</text>'
            )

    for i, band in enumerate(bands):
        upper = [f"{px(x):.1f},{py(y):.1f}" for x, y in zip(band.xs, band.highs, strict=True)]
        lower = [f"{px(x):.1f},{py(y):.1f}" for x, y in zip(band.xs, band.lows, strict=True)]
        parts.append(
            f'<polygon points="{" ".join(upper + lower[::-1])}" fill="{_BAND}">'
            f"<title>{escape(band.label)}</title></polygon>"
        )
        legend(i, _band_symbol, band.label)
    for i, (label, xs, ys) in enumerate(series):
        colour, dash = series_style(i)
        dash = dashes[i] if i < len(dashes) else dash
        points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xs, ys, strict=True))
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.5"'
            f"{_dashed(dash)}><title>{escape(label)}</title></polyline>"
        )
        if len(xs) == 1:
            parts.append(
                f'<circle cx="{px(xs[0]):.1f}" cy="{py(ys[0]):.1f}" r="3" fill="{colour}"/>'
            )
        legend(len(bands) + i, partial(_line_symbol, colour, dash), label)
    for i, mark in enumerate(marks):
        for x, y in zip(mark.xs, mark.ys, strict=True):
            parts.append(
                f'<polygon points="{_triangle(px(x), py(y))}" fill="{_MARK}">'
                f"<title>{escape(mark.label)}</title></polygon>"
            )
        legend(len(bands) + len(series) + i, _mark_symbol, mark.label)
    parts.append("</svg>")
    return "".join(parts)


_BAND = "#c6dbef"  # light blue, under the lines
_MARK = "#222"


def _dashed(dash: str) -> str:
    return f' stroke-dasharray="{dash}"' if dash else ""


def _triangle(x: float, y: float) -> str:
    """An upward triangle 8 px wide with its tip 6 px above ``(x, y)``."""
    return f"{x:.1f},{y - 6:.1f} {x - 4:.1f},{y + 2:.1f} {x + 4:.1f},{y + 2:.1f}"


def _band_symbol(x: float, y: float) -> str:
    return f'<rect x="{x}" y="{y - 4}" width="24" height="8" fill="{_BAND}"/>'


def _line_symbol(colour: str, dash: str, x: float, y: float) -> str:
    return (
        f'<line x1="{x}" x2="{x + 24}" y1="{y}" y2="{y}" stroke="{colour}" stroke-width="2"'
        f"{_dashed(dash)}/>"
    )


def _mark_symbol(x: float, y: float) -> str:
    return f'<polygon points="{_triangle(x + 12, y + 2)}" fill="{_MARK}"/>'
