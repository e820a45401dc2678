"""Dataset cards: schema, profile, provenance and who used a dataset version."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Any

from sqlalchemy import select

from modelpilot.cards.markdown import markdown_table
from modelpilot.cards.model_card import STYLE, Card, iso, profile_table
from modelpilot.data import get_dataset
from modelpilot.data.risks import DataRisks
from modelpilot.store import Store
from modelpilot.store.schema import run_inputs, runs, version_datasets


class DatasetCard(Card):
    """The card of one dataset version."""

    def to_markdown(self) -> str:
        """The card as Markdown."""
        d = self.data
        lines = [
            f"# Dataset card: {d['ref']}",
            "",
            f"- **Rows:** {d['rows']:,}",
            f"- **Content hash:** `{d['digest']}`",
            f"- **Stored as:** {d['storage']}",
            f"- **Source:** {d['source'] or 'a logged DataFrame'}",
            f"- **Logged:** {d['created']}",
            "",
            "## Schema",
            "",
        ]
        lines += markdown_table(
            ["column", "dtype", "nullable"],
            [[c["name"], c["dtype"], c["nullable"]] for c in d["schema"]],
        )
        lines += ["", "## Data risks", ""]
        lines += [f"- {line}" for line in d["risks"]] or ["_Not assessed._"]
        lines += ["", "## Used by", ""]
        lines += [f"- run `{r['run_id']}` ({r['name']}, {r['role']})" for r in d["runs"]]
        lines += [f"- model `{m}`" for m in d["models"]]
        if not d["runs"] and not d["models"]:
            lines.append("_Not used by any run or model version yet._")
        return "\n".join([*lines, ""])

    def to_html(self) -> str:
        """The card as one self-contained HTML page with inline SVG distribution strips."""
        d = self.data
        used = "".join(
            f"<li>run {escape(r['run_id'][:8])} ({escape(r['name'])}, {escape(r['role'])})</li>"
            for r in d["runs"]
        ) + "".join(f"<li>model {escape(m)}</li>" for m in d["models"])
        risks = (
            "<ul>" + "".join(f"<li>{escape(line)}</li>" for line in d["risks"]) + "</ul>"
            if d["risks"]
            else "<p>Not assessed.</p>"
        )
        return (
            f"<!doctype html><html><head><meta charset='utf-8'><title>Dataset card {escape(d['ref'])}</title>"
            f"<style>{STYLE}</style></head><body><h1>Dataset card: {escape(d['ref'])}</h1>"
            f"<ul><li>Rows: {d['rows']:,}</li><li>Content hash: <code>{escape(d['digest'])}</code></li>"
            f"<li>Source: {escape(d['source'] or 'a logged DataFrame')}</li><li>Logged: {escape(d['created'])}"
            f"</li></ul><h2>Data risks</h2>{risks}"
            f"<h2>Profile</h2>{profile_table(d['profile'])}<h2>Used by</h2>"
            f"<ul>{used or '<li>not used yet</li>'}</ul></body></html>"
        )


def build_dataset_card(store: Store, ref: str) -> DatasetCard:
    """Assemble the card for a dataset version (``name@version`` or ``name``)."""
    version = get_dataset(store, ref)
    with store.read() as conn:
        used_by = conn.execute(
            select(run_inputs.c.run_id, run_inputs.c.role, runs.c.name)
            .join(runs, runs.c.id == run_inputs.c.run_id)
            .where(
                run_inputs.c.dataset_name == version.name,
                run_inputs.c.dataset_digest == version.digest,
            )
        ).all()
        models = conn.execute(
            select(version_datasets.c.model_name, version_datasets.c.version).where(
                version_datasets.c.dataset_name == version.name,
                version_datasets.c.dataset_digest == version.digest,
            )
        ).all()
    data: dict[str, Any] = {
        "ref": version.ref,
        "name": version.name,
        "version": version.version,
        "digest": version.digest,
        "rows": version.num_rows,
        "storage": version.storage,
        "source": version.source,
        "created": iso(version.created_ms),
        "schema": version.schema,
        "profile": version.profile,
        "risks": _risk_lines(version.profile.get("risks")),
        "runs": [{"run_id": r.run_id, "role": r.role, "name": r.name} for r in used_by],
        "models": [f"{m.model_name}/{m.version}" for m in models],
        "generated": datetime.now(tz=UTC).isoformat(timespec="seconds"),
    }
    return DatasetCard(data)


def _risk_lines(risks: dict[str, Any] | None) -> list[str]:
    """The stored data-risk assessment as sentences (empty when none was made)."""
    if not risks:
        return []
    found = DataRisks.from_dict(risks)
    lines = found.summary() or ["no data risk found"]
    return [*lines, *found.notes]
