"""The governance report as one self-contained HTML page: inline style, no scripts, nothing
fetched from the network, every value escaped."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from modelpilot.governance.evidence import Evidence
from modelpilot.governance.report import ControlResult, GovernanceReport

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1040px;margin:2em auto;color:#222;"
    "padding:0 1em}h1{border-bottom:2px solid #4c78a8}table{border-collapse:collapse;"
    "width:100%}td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}"
    ".evidenced{color:#2a7f2a}.gap{color:#b22;font-weight:bold}.not_applicable{color:#777}"
    ".muted{color:#777}code{font-size:90%}"
)
_LABEL = {"evidenced": "evidenced", "gap": "GAP", "not_applicable": "not applicable"}


def render_html(report: GovernanceReport) -> str:
    """The whole page."""
    summary = report.to_dict()["summary"]
    scope = f"model {report.model}" if report.model else "every registered model"
    out = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Governance report: {escape(report.title)}</title><style>{_STYLE}</style>",
        "</head><body>",
        f"<h1>Governance report: {escape(report.title)}</h1>",
        f"<p>{escape(report.document)}; {escape(scope)}; generated {_when(report.generated_ms)}"
        " by modelpilot from its own records. Control titles are paraphrased; read the "
        "standard for the wording.</p>",
        f"<p>{summary['controls']} controls: <span class='evidenced'>{summary['evidenced']} "
        f"evidenced</span>, <span class='gap'>{summary['gaps']} with gaps</span>, "
        f"<span class='not_applicable'>{summary['not_applicable']} not applicable</span>. "
        f"{escape(report.audit.message)}</p>",
        "<h2>Gaps</h2>",
        _gaps(report),
        "<h2>Controls</h2>",
        *(_control(c) for c in report.controls),
        "<h2>Inventory</h2>",
        _inventory(report),
        "</body></html>",
    ]
    return "".join(out)


def _gaps(report: GovernanceReport) -> str:
    if not report.gaps:
        return "<p class='evidenced'>None: every applicable control has evidence.</p>"
    rows = "".join(
        f"<li><a href='#{_anchor(c.control.id)}'>{escape(c.control.id)}</a> "
        f"{escape(f.model or 'workspace')}: {escape(f.message)}</li>"
        for c, f in report.gaps
    )
    return f"<ul>{rows}</ul>"


def _control(result: ControlResult) -> str:
    c = result.control
    head = (
        f"<h3 id='{_anchor(c.id)}'>{escape(c.id)}: {escape(c.title)} "
        f"<span class='{result.status}'>({_LABEL[result.status]})</span></h3>"
        f"<p class='muted'>Source: {escape(c.source)}. Evidence kinds: "
        f"{escape(', '.join(c.evidence))}.</p>"
    )
    rows = []
    for f in result.findings:
        body = _evidence(f.evidence) if f.evidence else escape(f.message)
        rows.append(
            f"<tr><td>{escape(f.model or 'workspace')}</td>"
            f"<td class='{f.status}'>{_LABEL[f.status]}</td><td>{body}</td></tr>"
        )
    table = "<table><tr><th>model</th><th>status</th><th>records</th></tr>" + "".join(rows)
    return head + table + "</table>"


def _evidence(items: tuple[Evidence, ...]) -> str:
    lines = [
        f"<li>{escape(e.kind)}: <b>{escape(e.subject)}</b> {escape(e.summary)}"
        f"{f' ({_when(e.recorded_ms)})' if e.recorded_ms else ''}"
        f"{f', record {e.record_id}' if e.record_id is not None else ''} "
        f"<code>{escape(e.see)}</code></li>"
        for e in items
    ]
    return f"<ul>{''.join(lines)}</ul>"


def _inventory(report: GovernanceReport) -> str:
    rows = []
    for entry in report.inventory:
        if not entry.versions:
            rows.append(
                f"<tr><td>{escape(entry.name)}</td><td colspan='3'>{escape(entry.note)}</td></tr>"
            )
        for v in entry.versions:
            d = v.to_dict()
            detail = ", ".join(d["serving_in"]) or (
                f"{d['retired']} by {d['retired_by']}: {d['retired_reason']}"
                if d["retired"]
                else ""
            )
            rows.append(
                f"<tr><td>{escape(d['ref'])}</td><td>{escape(d['status'])}</td>"
                f"<td>{escape(detail)}</td><td>{_when(d['created_ms'])}</td></tr>"
            )
    return (
        "<table><tr><th>version</th><th>status</th><th>where / why</th><th>registered</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _anchor(control_id: str) -> str:
    return "c-" + "".join(ch if ch.isalnum() else "-" for ch in control_id)


def _when(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


__all__ = ["render_html"]
