"""The evaluation as one self-contained HTML page: tables and inline SVG, no script, no network.

Charts are a few lines of hand-written SVG (interval bars, reliability diagram, importance
bars) rather than a plotting library: the page must open offline from a CI artifact, and
three chart shapes do not justify a dependency.

>>> "<svg" in reliability_svg([(0.1, 0.12, 50), (0.5, 0.45, 80)])
True
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelpilot.evaluation.bootstrap import MetricValue
    from modelpilot.evaluation.comparison import Difference
    from modelpilot.evaluation.result import EvaluationResult

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}h3{font-size:15px}
table{border-collapse:collapse;margin:8px 0}td,th{padding:3px 10px;border-bottom:1px solid #ddd}
th{text-align:left;background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#777}.warn{background:#fff4e0;border-left:4px solid #f0a030;padding:6px 10px}
tr.small td{color:#999}.bad{color:#a3211b}.good{color:#1d5c19}
"""
_BLUE, _RED, _GREY = "#4c78a8", "#e45756", "#999"


def _num(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}g}"


def _interval(mv: MetricValue | None) -> str:
    if mv is None:
        return "–"
    if mv.lower is None or mv.upper is None:
        return _num(mv.value)
    return f"{_num(mv.value)} [{_num(mv.lower)}, {_num(mv.upper)}]"


def _table(
    header: Sequence[str], rows: Sequence[Sequence[str]], classes: Sequence[str] = ()
) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        css = f" class='{classes[i]}'" if i < len(classes) and classes[i] else ""
        cells = "".join(f"<td>{cell}</td>" for cell in row)
        body.append(f"<tr{css}>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def interval_svg(rows: Sequence[tuple[str, float, float | None, float | None]]) -> str:
    """Horizontal bars (value) with interval whiskers, on a shared 0..max scale."""
    if not rows:
        return ""
    hi = max([max(v, u or v) for _, v, _, u in rows] + [1e-12])
    lo = min([min(v, lw if lw is not None else v) for _, v, lw, _ in rows] + [0.0])
    width, label_w, row_h = 560, 160, 22
    plot_w = width - label_w - 70

    def x(v: float) -> float:
        return label_w + plot_w * (v - lo) / ((hi - lo) or 1.0)

    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' "
        f"height='{row_h * len(rows) + 10}' role='img'>"
    ]
    for i, (label, value, lower, upper) in enumerate(rows):
        y = 5 + i * row_h
        parts.append(f"<text x='0' y='{y + 14}' font-size='12'>{escape(label)}</text>")
        parts.append(
            f"<rect x='{x(min(0.0, value)):.1f}' y='{y + 4}' "
            f"width='{abs(x(value) - x(0.0)):.1f}' height='12' fill='{_BLUE}'/>"
        )
        if lower is not None and upper is not None:
            parts.append(
                f"<line x1='{x(lower):.1f}' x2='{x(upper):.1f}' y1='{y + 10}' "
                f"y2='{y + 10}' stroke='#222' stroke-width='2'/>"
            )
        parts.append(
            f"<text x='{label_w + plot_w + 6}' y='{y + 14}' font-size='12'>{_num(value)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def reliability_svg(points: Sequence[tuple[float, float, int]]) -> str:
    """Reliability diagram: (mean predicted, observed frequency, count) per non-empty bin."""
    size, pad = 300, 36

    def px(v: float) -> float:
        return pad + (size - 2 * pad) * v

    def py(v: float) -> float:
        return size - pad - (size - 2 * pad) * v

    biggest = max([c for _, _, c in points] + [1])
    line = " ".join(f"{px(c):.1f},{py(o):.1f}" for c, o, _ in points)
    dots = "".join(
        f"<circle cx='{px(c):.1f}' cy='{py(o):.1f}' r='{2 + 5 * (n / biggest) ** 0.5:.1f}' "
        f"fill='{_RED}' fill-opacity='0.7'><title>{n} rows</title></circle>"
        for c, o, n in points
    )
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{size}' height='{size}' role='img'>"
        f"<rect x='{pad}' y='{pad}' width='{size - 2 * pad}' height='{size - 2 * pad}' "
        f"fill='none' stroke='{_GREY}'/>"
        f"<line x1='{px(0)}' y1='{py(0)}' x2='{px(1)}' y2='{py(1)}' stroke='#bbb' "
        "stroke-dasharray='4'/>"
        f"<polyline points='{line}' fill='none' stroke='{_RED}' stroke-width='2'/>{dots}"
        f"<text x='{size / 2 - 50}' y='{size - 8}' font-size='11'>mean predicted</text>"
        f"<text x='10' y='{size / 2 + 40}' font-size='11' "
        f"transform='rotate(-90 10 {size / 2 + 40})'>observed frequency</text></svg>"
    )


def render_html(result: EvaluationResult) -> str:
    """The evaluation as one HTML document (what :meth:`EvaluationResult.save_html` writes)."""
    versus = f" vs {escape(result.baseline_name)}" if result.baseline_name else ""
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>modelpilot evaluation</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Evaluation: {escape(result.model_name)}{versus}</h1>",
        f"<p class='muted'>{result.task} task, target '{escape(result.target)}', "
        f"{result.n_rows:,} rows, {len(result.features)} features; {result.confidence:.0%} "
        f"percentile-bootstrap intervals from {result.n_bootstrap} resamples (seed "
        f"{result.seed}).</p>",
    ]
    parts += [f"<p class='warn'>{escape(w)}</p>" for w in result.warnings]
    parts += _metrics(result) + _comparison(result) + _slices(result) + _calibration(result)
    parts += _fairness(result) + _robustness(result) + _explanations(result)
    parts += _model_risks(result)
    shown_above = set(result.explanations.notes) if result.explanations else set()
    notes = [n for n in result.notes if n not in shown_above]
    if notes:
        parts.append("<h2>Notes</h2><ul>")
        parts += [f"<li class='muted'>{escape(n)}</li>" for n in notes]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _metrics(result: EvaluationResult) -> list[str]:
    rows = [
        (k, v.value, v.lower, v.upper) for k, v in result.metrics.items() if v.value is not None
    ]
    table = _table(
        ["metric", "value [interval]"],
        [[escape(k), _interval(v)] for k, v in result.metrics.items()],
    )
    return ["<h2>Metrics</h2>", table, interval_svg(rows)]


def _comparison(result: EvaluationResult) -> list[str]:
    if result.comparison is None:
        return []
    primary = [d for d in result.comparison.slices if d.metric == result.primary_metric]
    others = [d for d in result.comparison.slices if d.metric != result.primary_metric]
    out = [
        "<h2>Comparison with the baseline</h2>",
        "<p class='muted'>Paired bootstrap of model − baseline on the same resamples; green or "
        "red where the whole interval lies on the better or worse side.</p>",
        _difference_table(list(result.comparison.metrics.values())),
    ]
    if primary:
        out += [f"<h3>{escape(result.primary_metric)} by slice</h3>", _difference_table(primary)]
    if others:
        out += [
            "<details><summary>Other metrics by slice</summary>",
            _difference_table(others),
            "</details>",
        ]
    return out


def _difference_table(diffs: Sequence[Difference]) -> str:
    rows, classes = [], []
    for d in diffs:
        where = "overall" if d.column is None else f"{d.column}={d.group}"
        ci = "" if d.lower is None else f"[{_num(d.lower)}, {_num(d.upper)}]"
        cells = [d.metric, where, _num(d.model), _num(d.baseline), _num(d.difference), ci]
        rows.append([escape(c) for c in cells])
        classes.append(_verdict_class(d))
    return _table(["metric", "where", "model", "baseline", "difference", "interval"], rows, classes)


def _verdict_class(d: Difference) -> str:
    if d.lower is None or d.upper is None:
        return ""
    low, high = (d.lower, d.upper) if d.higher_is_better else (-d.upper, -d.lower)
    return "good" if low > 0 else "bad" if high < 0 else ""


def _slices(result: EvaluationResult) -> list[str]:
    if not result.slices:
        return []
    names = list(result.slices[0].metrics)
    rows = [
        [
            escape(s.column),
            escape(s.group),
            f"{s.n:,}",
            *(_interval(s.metrics[m]) for m in names),
            escape(s.warning or ""),
        ]
        for s in result.slices
    ]
    classes = ["small" if s.is_small else "" for s in result.slices]
    header = ["column", "slice", "rows", *names, "warning"]
    return ["<h2>Slices</h2>", _table(header, rows, classes)]


def _calibration(result: EvaluationResult) -> list[str]:
    cal = result.calibration
    if cal is None:
        return []
    rows = [
        [
            f"[{b.lower:.2f}, {b.upper:.2f})",
            f"{b.count:,}",
            _num(b.mean_predicted),
            _num(b.fraction_positive),
        ]
        for b in cal.bins
    ]
    return [
        "<h2>Calibration</h2>",
        f"<p>Expected calibration error ({cal.kind.replace('_', ' ')}, {cal.n_bins} bins): "
        f"{_interval(cal.ece)}; maximum calibration error {_num(cal.mce)}.</p>",
        cal.to_svg(),
        _table(["bin", "rows", "mean predicted", "observed"], rows),
    ]


def _fairness(result: EvaluationResult) -> list[str]:
    if not result.fairness:
        return []
    out = ["<h2>Fairness</h2>"]
    for attribute, f in result.fairness.items():
        out.append(f"<h3>{escape(attribute)}</h3>")
        if f.demographic_parity_difference is not None:
            out.append(
                f"<p>Demographic parity difference {_interval(f.demographic_parity_difference)} "
                f"(ratio {_num(f.demographic_parity_ratio)}); equalized odds difference "
                f"{_interval(f.equalized_odds_difference)} "
                f"(ratio {_num(f.equalized_odds_ratio)}).</p>"
            )
        if f.note:
            out.append(f"<p class='muted'>{escape(f.note)}</p>")
        names = list(f.groups[0].metrics) if f.groups else []
        rows = [
            [
                escape(g.group),
                f"{g.n:,}",
                _num(g.selection_rate),
                _num(g.true_positive_rate),
                _num(g.false_positive_rate),
                *(_num(g.metrics[m]) for m in names),
            ]
            for g in f.groups
        ]
        out.append(_table(["group", "rows", "selection rate", "TPR", "FPR", *names], rows))
    return out


def _robustness(result: EvaluationResult) -> list[str]:
    if not result.robustness:
        return []
    rows = [
        [
            escape(r.name),
            escape(r.status),
            escape(r.metric),
            _num(r.clean_value),
            _num(r.value),
            _num(r.change),
            escape(r.message or ""),
        ]
        for r in result.robustness
    ]
    classes = ["bad" if r.status == "failed" else "" for r in result.robustness]
    header = ["scenario", "status", "metric", "clean", "perturbed", "change", "message"]
    return ["<h2>Robustness</h2>", _table(header, rows, classes)]


def _explanations(result: EvaluationResult) -> list[str]:
    ex = result.explanations
    if ex is None:
        return []
    rows = [
        (f.feature, f.importance, f.importance - f.std, f.importance + f.std)
        for f in ex.permutation[:20]
    ]
    out = [
        "<h2>Explanations</h2>",
        f"<p>Permutation importance: drop in {escape(ex.metric)} when a feature is shuffled "
        "(mean ± sd over repeats; top 20).</p>",
        interval_svg(rows),
    ]
    if ex.shap is not None:
        top = sorted(ex.shap.items(), key=lambda kv: -kv[1])[:20]
        out.append(f"<p>Mean |SHAP| ({escape(ex.shap_method or '')}).</p>")
        out.append(interval_svg([(k, v, None, None) for k, v in top]))
    out += [f"<p class='muted'>{escape(n)}</p>" for n in ex.notes]
    return out


def _model_risks(result: EvaluationResult) -> list[str]:
    """The opt-in adversarial and membership-inference sections (docs/governance.md)."""
    out = []
    adv = result.adversarial
    if adv is not None:
        top = sorted(adv.by_feature.items(), key=lambda kv: -kv[1])[:10]
        median = adv.median_min_perturbation
        shown_median = "–" if median is None else f"{median:.1%}"
        out += [
            "<h2>Adversarial robustness</h2>",
            f"<p><b>{adv.flip_share:.1%}</b> of {adv.rows} rows change class under a "
            f"perturbation within {adv.budget:.1%} of each numeric feature's observed range "
            f"(median smallest flipping perturbation among flipped rows: "
            f"{shown_median}; searched up to {adv.searched_up_to:.0%}).</p>",
            _table(["what flipped the class", "rows"], [[escape(k), f"{v:,}"] for k, v in top]),
        ]
        out += [f"<p class='muted'>{escape(n)}</p>" for n in adv.notes]
    mem = result.membership
    if mem is not None:
        css = "bad" if mem.auc > 0.6 else "good" if mem.auc < 0.55 else ""
        out += [
            "<h2>Membership-inference risk</h2>",
            f"<p>Loss-threshold attack AUC <b class='{css}'>{mem.auc:.3f}</b> (0.5 = the "
            f"attack cannot tell training rows from others), advantage {mem.advantage:.3f}, on "
            f"{mem.members:,} training and {mem.non_members:,} holdout rows; mean {mem.loss} "
            f"{_num(mem.mean_member_loss)} (training) vs {_num(mem.mean_non_member_loss)} "
            "(holdout).</p>",
        ]
    return out
