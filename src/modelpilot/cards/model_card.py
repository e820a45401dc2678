"""Model cards: what a version is for, what it was trained on, how it was judged.

Built on demand from the records (version, run, datasets, evaluations, gate verdicts), so a
card is never stale. The fields a person writes (intended use, limitations, …) are stored as
``card_fields`` records and merged newest-last, so regenerating never loses them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from modelpilot.artifacts import ArtifactStore
from modelpilot.cards import svg
from modelpilot.cards.markdown import markdown_table
from modelpilot.data import get_dataset
from modelpilot.errors import InvalidInput
from modelpilot.lineage import lineage
from modelpilot.models import read_manifest
from modelpilot.registry import get_version
from modelpilot.registry.records import add_record, list_records, model_records
from modelpilot.store import Store

EDITABLE_FIELDS = ("intended_use", "limitations", "ethical_considerations", "caveats", "owners")
_PLACEHOLDER = "_Not written yet. Add it with `mp.update_model_card(ref, {field}=...)`._"


@dataclass(frozen=True)
class Card:
    """A card in JSON form, renderable as Markdown or self-contained HTML."""

    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The card as JSON-able data."""
        return self.data

    def to_json(self) -> str:
        """The card as JSON text."""
        return json.dumps(self.data, indent=2, default=str)

    def to_markdown(self) -> str:
        """The card as Markdown."""
        raise NotImplementedError

    def to_html(self) -> str:
        """The card as one self-contained HTML page."""
        raise NotImplementedError

    def save(self, path: str | Path) -> Path:
        """Write the card; the suffix (.md, .html, .json) picks the format."""
        target = Path(path)
        renderers = {
            ".md": self.to_markdown,
            ".html": self.to_html,
            ".htm": self.to_html,
            ".json": self.to_json,
        }
        render = renderers.get(target.suffix.lower())
        if render is None:
            raise InvalidInput(
                f"Cannot write a card to {target.name}: use a .md, .html or .json file name.",
                field="path",
            )
        target.write_text(render(), encoding="utf-8")
        return target


class ModelCard(Card):
    """The card of one model version."""

    def to_markdown(self) -> str:
        """The card as Markdown."""
        return _markdown(self.data)

    def to_html(self) -> str:
        """The card as one self-contained HTML page with inline SVG plots."""
        return _html(self.data)


def update_card_fields(
    store: Store, ref: str, fields: dict[str, str], *, actor: str | None = None
) -> dict[str, str]:
    """Store person-written card fields for a version; returns the merged fields."""
    unknown = sorted(set(fields) - set(EDITABLE_FIELDS))
    if unknown:
        raise InvalidInput(
            f"Unknown model card field(s) {', '.join(unknown)}; editable fields are "
            f"{', '.join(EDITABLE_FIELDS)}.",
            field=f"fields.{unknown[0]}" if unknown[0] else "fields",
        )
    add_record(store, ref, "card_fields", {k: str(v) for k, v in fields.items()}, actor=actor)
    return card_fields(store, ref)


def card_fields(store: Store, ref: str) -> dict[str, str]:
    """Person-written fields, newest value per field."""
    merged: dict[str, str] = {}
    for record in reversed(list_records(store, ref, "card_fields")):
        merged.update(record.payload)
    return merged


def build_model_card(store: Store, artifacts: ArtifactStore, ref: str) -> ModelCard:
    """Assemble the card for the version behind ``ref``."""
    mv = get_version(store, ref)
    manifest = read_manifest(artifacts, mv.package_digest)
    trace = lineage(store, mv.ref)
    datasets = []
    for ds in trace.datasets:
        version = get_dataset(store, f"{ds['name']}@{ds['digest']}")
        datasets.append(
            {
                "name": version.name,
                "version": version.version,
                "rows": version.num_rows,
                "source": version.source,
                "profile": version.profile,
                "role": ds["role"],
            }
        )
    evaluations = list_records(store, mv.ref, "evaluation")
    gates = list_records(store, mv.ref, "gate")
    optimizations = list_records(store, mv.ref, "optimization")
    images = list_records(store, mv.ref, "image")
    profiles = list_records(store, mv.ref, "profile")
    loop_notes: dict[str, dict[str, Any]] = {}
    for note in list_records(store, mv.ref, "loop"):  # newest first: keep each decision's last
        loop_notes.setdefault(note.payload["decision"], {"recorded": iso(note.created_ms),
                                                         **note.payload})  # fmt: skip
    data = {
        "model": {
            "name": mv.name,
            "version": mv.version,
            "ref": mv.ref,
            "flavor": mv.flavor,
            "aliases": list(mv.aliases),
            "description": mv.description,
            "tags": mv.tags,
            "created": iso(mv.created_ms),
            "requirements": manifest.get("requirements", []),
            "size_bytes": manifest.get("size_bytes"),
            "signature": mv.signature,
        },
        "fields": card_fields(store, mv.ref),
        "training_metrics": mv.metrics,
        "training_data": datasets,
        "evaluation": None
        if not evaluations
        else {
            "recorded": iso(evaluations[0].created_ms),
            "by": evaluations[0].actor,
            **evaluations[0].payload,
        },
        "gates": [{"recorded": iso(g.created_ms), "by": g.actor, **g.payload} for g in gates],
        "continuous_training": list(loop_notes.values()),
        "optimization": optimizations[0].payload if optimizations else None,
        "profile": None
        if not profiles
        else {"recorded": iso(profiles[0].created_ms), **profiles[0].payload},
        "risk_register": risk_register(store, mv.name),
        "images": [{"recorded": iso(i.created_ms), "by": i.actor, **i.payload} for i in images],
        "lineage": trace.to_dict(),
        "generated": datetime.now(tz=UTC).isoformat(timespec="seconds"),
    }
    return ModelCard(data)


def risk_register(store: Store, name: str) -> dict[str, Any] | None:
    """The newest revision of the model's risk register (``modelpilot models risk edit``),
    with its revision number, or None: it belongs to the model, so every version's card
    shows it, and a regenerated card keeps it (it is a record, not part of the card)."""
    records = model_records(store, name, "risk_register")
    if not records:
        return None
    newest = records[0]
    return {"revision": len(records), "recorded": iso(newest.created_ms), "by": newest.actor,
            **newest.payload}  # fmt: skip


def risk_lines(register: dict[str, Any] | None) -> list[str]:
    """The register as plain lines, for the card's Markdown and HTML.

    >>> risk_lines({"revision": 2, "intended_use": "retention calls", "out_of_scope_uses": [],
    ...   "affected_groups": ["customers"], "risks": [{"risk": "r", "likelihood": "low",
    ...   "impact": "high", "mitigation": "m", "owner": "o"}]})[-1]
    'Risk: r (likelihood low, impact high); mitigation: m; owner: o'
    """
    if not register:
        return []
    lines = [
        f"Revision {register['revision']}. Intended use: {register.get('intended_use', '')}",
        f"Out-of-scope uses: {'; '.join(register.get('out_of_scope_uses') or []) or 'none listed'}",
        f"Affected groups: {'; '.join(register.get('affected_groups') or []) or 'none listed'}",
    ]
    lines += [
        f"Risk: {r['risk']} (likelihood {r['likelihood']}, impact {r['impact']}); "
        f"mitigation: {r['mitigation']}; owner: {r['owner']}"
        for r in register.get("risks") or []
    ]
    return lines


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds")


def metric_rows(
    evaluation: dict[str, Any] | None,
) -> list[tuple[str, float, float | None, float | None]]:
    """(name, value, lower, upper) from an evaluation payload's ``metrics``.

    Accepts ``{"auc": 0.9}`` and ``{"auc": {"value": 0.9, "lower": 0.88, "upper": 0.92}}``.

    >>> metric_rows({"metrics": {"auc": {"value": 0.9, "lower": 0.8, "upper": 0.95}, "f1": 0.7}})
    [('auc', 0.9, 0.8, 0.95), ('f1', 0.7, None, None)]
    """
    if not evaluation:
        return []
    rows = []
    for name, entry in (evaluation.get("metrics") or {}).items():
        if isinstance(entry, dict) and isinstance(entry.get("value"), (int, float)):
            rows.append(
                (name, float(entry["value"]), _num(entry.get("lower")), _num(entry.get("upper")))
            )
        elif isinstance(entry, (int, float)):
            rows.append((name, float(entry), None, None))
    return rows


def reliability_points(evaluation: dict[str, Any] | None) -> tuple[list[float], list[float]] | None:
    """Per-bin (mean confidence, observed frequency) from an evaluation's calibration, if any."""
    calibration = (evaluation or {}).get("calibration") or {}
    bins = calibration.get("bins")
    if isinstance(bins, list) and bins and isinstance(bins[0], dict):
        keys = ("mean_predicted", "confidence", "mean_confidence")
        obs_keys = ("fraction_positive", "observed", "accuracy")
        conf = [next((b[k] for k in keys if k in b), None) for b in bins]
        obs = [next((b[k] for k in obs_keys if k in b), None) for b in bins]
        pairs = [
            (float(c), float(o))
            for c, o in zip(conf, obs, strict=True)
            if c is not None and o is not None
        ]
        if pairs:
            return [p[0] for p in pairs], [p[1] for p in pairs]
    conf_list = calibration.get("mean_predicted")
    obs_list = calibration.get("fraction_positive")
    if isinstance(conf_list, list) and isinstance(obs_list, list) and conf_list:
        return [float(v) for v in conf_list], [float(v) for v in obs_list]
    return None


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _markdown(data: dict[str, Any]) -> str:
    m = data["model"]
    lines = [f"# Model card: {m['ref']}", "", m["description"] or "", ""]
    lines += [
        f"- **Flavor:** {m['flavor']}",
        f"- **Aliases:** {', '.join(m['aliases']) or 'none'}",
        f"- **Created:** {m['created']}",
        f"- **Requirements:** {', '.join(m['requirements'])}",
        "",
    ]
    for field in EDITABLE_FIELDS:
        title = field.replace("_", " ").capitalize()
        lines += [
            f"## {title}",
            "",
            data["fields"].get(field) or _PLACEHOLDER.format(field=field),
            "",
        ]
    lines += ["## Risk register", ""]
    lines += [f"- {line}" for line in risk_lines(data.get("risk_register"))] or [
        "_No risk register. Write one with `modelpilot models risk edit NAME --file risk.yaml`._"
    ]
    lines += ["", "## Data", ""]
    for ds in data["training_data"]:
        lines.append(
            f"- `{ds['name']}@{ds['version']}` ({ds['role']}): {ds['rows']:,} rows, source {ds['source'] or 'logged frame'}"
        )
    if not data["training_data"]:
        lines.append("_No dataset versions were recorded for this version._")
    lines += ["", "## Evaluation", ""]
    rows = metric_rows(data["evaluation"])
    if rows:
        lines += markdown_table(
            ["metric", "value", "95% interval"],
            [
                [n, f"{v:.4g}", "" if lo is None else f"{lo:.4g} – {hi:.4g}"]
                for n, v, lo, hi in rows
            ],
        )
    else:
        lines.append("_No evaluation recorded. Run `mp.evaluate(...)` to add one._")
    if data["training_metrics"]:
        lines += [
            "",
            "Metrics logged during training: "
            + ", ".join(f"{k} = {v:.4g}" for k, v in sorted(data["training_metrics"].items())),
        ]
    lines += ["", "## Promotion gates", ""]
    for gate in data["gates"]:
        lines.append(
            f"- {gate['recorded']}: {'PASSED' if gate.get('passed') else 'FAILED'} "
            f"({gate.get('policy_file') or gate.get('policy', 'policy')})"
        )
    if not data["gates"]:
        lines.append("_No gate has judged this version yet._")
    decisions = _loop_lines(data)
    if decisions:
        lines += ["", "## Continuous training", ""] + [f"- {line}" for line in decisions]
    table = optimization_rows(data.get("optimization"))
    if table:
        lines += [
            "",
            "## Optimisation",
            "",
            "Measured by `modelpilot optimize` on this machine.",
            "",
        ]
        lines += markdown_table(table[0], table[1:])
    profile = profile_rows(data.get("profile"))
    if profile:
        recorded = (data.get("profile") or {}).get("recorded")
        lines += [
            "",
            "## Deployment profile",
            "",
            f"Measured by `modelpilot profile`, {recorded}.",
            "",
        ]
        lines += markdown_table(profile[0], profile[1:])
    images = image_lines(data.get("images"))
    if images:
        lines += ["", "## Container images", ""] + [f"- {line}" for line in images]
    run = data["lineage"].get("run")
    lines += ["", "## Lineage", ""]
    if run:
        lines.append(
            f"Run `{run['id']}` ({run['name']}) in experiment `{run['experiment']}`, code "
            f"`{run['code_revision'] or 'unknown'}`, Python {run['python']}."
        )
    else:
        lines.append("Registered outside a tracked run.")
    lines += ["", f"_Generated {data['generated']} by modelpilot._", ""]
    return "\n".join(lines)


def image_lines(images: list[dict[str, Any]] | None) -> list[str]:
    """One line per image built from the version (``modelpilot package image``), newest first.

    >>> image_lines([{"recorded": "2026-01-01T00:00:00+00:00", "tag": "churn:4",
    ...               "image_id": "sha256:ab", "size_bytes": 2**20, "build_s": 3.0}])
    ['churn:4 (sha256:ab), 1.0 MiB, built in 3.0 s, 2026-01-01T00:00:00+00:00']
    """
    return [
        f"{i.get('tag')} ({i.get('image_id')}), {float(i.get('size_bytes') or 0) / 2**20:.1f} "
        f"MiB, built in {float(i.get('build_s') or 0):.1f} s, {i.get('recorded')}"
        for i in images or []
    ]


_OPTIMIZATION_HEADER = [
    "version", "target", "status", "size", "load memory", "p50 ms @1", "p99 ms @1",
    "rows/s @64", "agreement", "max |Δp|", "holdout metric", "Δ metric [95% CI]", "Pareto",
]  # fmt: skip


def optimization_rows(payload: dict[str, Any] | None) -> list[list[str]]:
    """The candidate table of an ``optimization`` record as text cells, header first."""
    if not payload or not payload.get("rows"):
        return []

    def num(value: object, spec: str = ".4g") -> str:
        return "-" if not isinstance(value, (int, float)) else format(value, spec)

    out = [_OPTIMIZATION_HEADER]
    for row in payload["rows"]:
        speed = row.get("speed") or {}
        parts = [f for f in (row.get("fidelity_data"), row.get("fidelity_holdout")) if f]
        agreements = [f["agreement"] for f in parts if f.get("agreement") is not None]
        metric = row.get("metric")
        out.append(
            [
                str(row["ref"]),
                str(row["target"]),
                str(row["status"]),
                _megabytes(row.get("size_bytes")),
                _megabytes(row.get("load_peak_bytes")),
                num(speed.get("p50_ms_1")),
                num(speed.get("p99_ms_1")),
                num(speed.get("rows_per_s_64"), ",.0f"),
                num(min(agreements)) if agreements else "-",
                num(max(f["max_abs_proba_diff"] for f in parts)) if parts else "-",
                "-" if metric is None else f"{metric} {num(row.get('holdout_metric'))}",
                num(row.get("metric_diff"), "+.4g") + _interval(row),
                {True: "yes", False: "no"}.get(row.get("pareto"), "-"),
            ]
        )
    return out


def _megabytes(value: object) -> str:
    return f"{value / 1e6:.3g} MB" if isinstance(value, (int, float)) else "-"


def _interval(row: dict[str, Any]) -> str:
    """`` [low, high]``: the paired-bootstrap 95% interval of the metric difference, if any."""
    low, high = row.get("metric_diff_lower"), row.get("metric_diff_upper")
    if not isinstance(low, (int, float)) or not isinstance(high, (int, float)):
        return ""
    return f" [{low:+.2g}, {high:+.2g}]"


_PROFILE_HEADER = [
    "target", "cores", "p50 ms", "p99 ms", "memory MB", "req/s", "cold start s", "cost / 1M",
]  # fmt: skip


def profile_rows(payload: dict[str, Any] | None) -> list[list[str]]:
    """The newest ``profile`` record as text cells, header first.

    >>> profile_rows({"rows": [{"target": "edge", "cores": 1, "p50_ms": 0.5, "p99_ms": 1.0,
    ...     "memory_mb": 150.0, "req_per_s": 2000.0, "cold_start_s": 1.2,
    ...     "cost_per_million": 0.006944}]})[1]
    ['edge', '1', '0.5', '1', '150', '2,000', '1.2', '0.006944']
    """
    if not payload or not payload.get("rows"):
        return []

    def num(value: object, spec: str = ".3g") -> str:
        return "-" if not isinstance(value, (int, float)) else format(value, spec)

    out = [_PROFILE_HEADER]
    for row in payload["rows"]:
        out.append(
            [
                str(row["target"]),
                str(row["cores"]),
                num(row.get("p50_ms")),
                num(row.get("p99_ms")),
                num(row.get("memory_mb"), ",.0f"),
                num(row.get("req_per_s"), ",.0f"),
                num(row.get("cold_start_s"), ".2g"),
                num(row.get("cost_per_million"), ".4g"),
            ]
        )
    return out


def _loop_lines(data: dict[str, Any]) -> list[str]:
    """One line per continuous-training decision this version was the candidate of."""
    return [
        f"{note['recorded']}: decision {note['decision'][:8]} on {note['deployment']} "
        f"(trigger {note['trigger']}): {note['state']}: {note['reason']} (modelpilot loop show "
        f"{note['decision'][:8]})"
        for note in data.get("continuous_training") or []
    ]


STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:880px;margin:2em auto;color:#222;padding:0 1em}"
    "h1{border-bottom:2px solid #4c78a8}table{border-collapse:collapse}td,th{border:1px solid #ddd;"
    "padding:4px 8px;text-align:left}.muted{color:#777}.pass{color:#2a7f2a}.fail{color:#b22}"
)


def _html(data: dict[str, Any]) -> str:
    m = data["model"]
    out = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>Model card {escape(m['ref'])}</title>"
        f"<style>{STYLE}</style></head><body>",
        f"<h1>Model card: {escape(m['ref'])}</h1>",
    ]
    out.append(
        f"<p>{escape(m['description'] or '')}</p><ul><li>Flavor: {escape(m['flavor'])}</li>"
        f"<li>Aliases: {escape(', '.join(m['aliases']) or 'none')}</li>"
        f"<li>Created: {escape(m['created'])}</li>"
        f"<li>Requirements: {escape(', '.join(m['requirements']))}</li></ul>"
    )
    for field in EDITABLE_FIELDS:
        text = data["fields"].get(field)
        body = (
            escape(text)
            if text
            else f"<span class='muted'>Not written yet (mp.update_model_card(ref, {field}=…)).</span>"
        )
        out.append(f"<h2>{field.replace('_', ' ').capitalize()}</h2><p>{body}</p>")
    register = risk_lines(data.get("risk_register"))
    out.append("<h2>Risk register</h2>")
    out.append(
        "<ul>" + "".join(f"<li>{escape(line)}</li>" for line in register) + "</ul>"
        if register
        else "<p class='muted'>No risk register (modelpilot models risk edit).</p>"
    )
    out.append("<h2>Data</h2>")
    for ds in data["training_data"]:
        out.append(
            f"<h3>{escape(ds['name'])}@{escape(ds['version'])} — {ds['rows']:,} rows ({escape(ds['role'])})</h3>"
        )
        out.append(profile_table(ds["profile"]))
    out.append("<h2>Evaluation</h2>")
    rows = metric_rows(data["evaluation"])
    if rows:
        unit = all(0.0 <= v <= 1.0 for _, v, _, _ in rows)
        out.append(svg.interval_bars(rows) if unit else "")
        out.append(
            "<table><tr><th>metric</th><th>value</th><th>95% interval</th></tr>"
            + "".join(
                f"<tr><td>{escape(n)}</td><td>{v:.4g}</td><td>{'' if lo is None else f'{lo:.4g} – {hi:.4g}'}</td></tr>"
                for n, v, lo, hi in rows
            )
            + "</table>"
        )
        points = reliability_points(data["evaluation"])
        if points:
            out.append(
                "<h3>Calibration (reliability diagram)</h3>" + svg.reliability_diagram(*points)
            )
    else:
        out.append("<p class='muted'>No evaluation recorded yet.</p>")
    if data["training_metrics"]:
        out.append(
            "<p>Metrics logged during training: "
            + escape(
                ", ".join(f"{k} = {v:.4g}" for k, v in sorted(data["training_metrics"].items()))
            )
            + "</p>"
        )
    out.append("<h2>Promotion gates</h2>")
    for gate in data["gates"]:
        css = "pass" if gate.get("passed") else "fail"
        out.append(
            f"<p class='{css}'>{escape(gate['recorded'])}: {'PASSED' if gate.get('passed') else 'FAILED'}</p>"
        )
    if not data["gates"]:
        out.append("<p class='muted'>No gate has judged this version yet.</p>")
    table = optimization_rows(data.get("optimization"))
    if table:
        out.append("<h2>Optimisation</h2><table>")
        out.append("<tr>" + "".join(f"<th>{escape(h)}</th>" for h in table[0]) + "</tr>")
        out += ["<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in table[1:]]
        out.append("</table>")
    profile = profile_rows(data.get("profile"))
    if profile:
        out.append("<h2>Deployment profile</h2><table>")
        out.append("<tr>" + "".join(f"<th>{escape(h)}</th>" for h in profile[0]) + "</tr>")
        out += ["<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in profile[1:]]
        out.append("</table>")
    images = image_lines(data.get("images"))
    if images:
        out.append("<h2>Container images</h2><ul>")
        out += [f"<li>{escape(line)}</li>" for line in images]
        out.append("</ul>")
    decisions = _loop_lines(data)
    if decisions:
        out.append("<h2>Continuous training</h2><ul>")
        out += [f"<li>{escape(line)}</li>" for line in decisions]
        out.append("</ul>")
    run = data["lineage"].get("run")
    out.append(
        "<h2>Lineage</h2><p>"
        + (
            escape(
                f"Run {run['id']} ({run['name']}) in experiment {run['experiment']}, code "
                f"{run['code_revision'] or 'unknown'}, Python {run['python']}."
            )
            if run
            else "Registered outside a run."
        )
        + "</p>"
    )
    out.append(
        f"<p class='muted'>Generated {escape(data['generated'])} by modelpilot.</p></body></html>"
    )
    return "".join(out)


def profile_table(profile: dict[str, Any]) -> str:
    rows = [
        "<table><tr><th>column</th><th>type</th><th>nulls</th><th>distribution</th><th>range / top</th></tr>"
    ]
    for name, stats in profile.get("columns", {}).items():
        quantiles = list((stats.get("quantiles") or {}).values())
        if stats.get("kind") == "numeric" and quantiles and stats.get("min") is not None:
            shape = svg.quantile_strip(quantiles, stats["min"], stats["max"])
            summary = f"{stats['min']:.4g} … {stats['max']:.4g}"
        else:
            shape = ""
            summary = ", ".join(f"{k} ({v})" for k, v in list((stats.get("top") or {}).items())[:4])
        rows.append(
            f"<tr><td>{escape(name)}</td><td>{escape(str(stats.get('dtype', '')))}</td>"
            f"<td>{stats.get('nulls', 0)}</td><td>{shape}</td><td>{escape(summary)}</td></tr>"
        )
    rows.append("</table>")
    return "".join(rows)
