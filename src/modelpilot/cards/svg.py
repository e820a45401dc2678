"""Tiny inline-SVG charts for self-contained HTML pages (no JavaScript, no network).

Hand-written rather than matplotlib: a card needs three chart shapes, and a few lines of
SVG keep the page small and the package free of a plotting dependency.
"""

from __future__ import annotations

from collections.abc import Sequence
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
