"""``modelpilot governance report``, ``models risk`` and ``models retire`` through the installed
executable, on a demo-like home: a model evaluated with fairness, gated, given an intended use
and deployed (churn/1), and a second version only registered (churn/2)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sqlalchemy import select, update

from modelpilot.assessment import evaluate_version, gate_version
from modelpilot.config import Settings
from modelpilot.store import Store
from modelpilot.store.schema import events
from modelpilot.workspace import Workspace

GOOD_REGISTER = """\
intended_use: rank existing customers for a retention call
out_of_scope_uses: [credit decisions]
affected_groups: [customers, call-centre staff]
risks:
  - risk: calls concentrate on one region
    likelihood: medium
    impact: medium
    mitigation: fairness slice by region in the gate
    owner: retention team
"""


@pytest.fixture(scope="module")
def base_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("governance")
    home = root / "home"
    rng = np.random.default_rng(0)
    n = 800
    x = pd.DataFrame({"tenure": rng.normal(size=n), "calls": rng.normal(size=n)})
    y = (x["tenure"] + 0.5 * x["calls"] + rng.normal(scale=0.8, size=n) > 0).astype(int)
    ws = Workspace(Settings(home=home))
    ws.log_dataset(x.assign(churned=y, gender=rng.choice(["f", "m"], n)), "holdout")
    with ws.start_run("churn", name="train"):
        train = ws.log_dataset(x.assign(churned=y), "churn-train")
        for c in (1.0, 0.1):
            model = LogisticRegression(C=c).fit(x, y)
            ws.log_model(model, "churn", input_example=x.head(), datasets=[train])
    quick: dict[str, Any] = {"n_bootstrap": 0, "robustness": False, "explain": False}
    evaluate_version(ws, "churn/1", "holdout", "churned", sensitive=["gender"], **quick)
    gate = root / "gate.yaml"
    gate.write_text("metrics:\n  roc_auc: {min: 0.6}\n")
    gate_version(ws, "churn/1", gate, "holdout", "churned", **quick)
    ws.cards.update_card_fields("churn/1", {"intended_use": "retention calls"})
    ws.deployments.create_deployment("churn-prod", "churn/1")
    ws.close()
    return home


@pytest.fixture
def home(base_home: Path, tmp_path: Path) -> Path:
    """A copy of the demo-like home that a test may change."""
    copy = tmp_path / "home"
    shutil.copytree(base_home, copy)
    return copy


def _run(exe: str, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELPILOT_")}
    env.update({"MODELPILOT_HOME": str(home), "COLUMNS": "200"})
    return subprocess.run(
        [exe, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def _report(exe: str, home: Path, tmp_path: Path, *args: str) -> dict[str, Any]:
    target = tmp_path / "report.json"
    done = _run(exe, home, "governance", "report", "-o", str(target), *args)
    assert done.returncode == 0, done.stdout + done.stderr
    data: dict[str, Any] = json.loads(target.read_text())
    return data


def _control(report: dict[str, Any], control_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in report["controls"] if c["id"] == control_id)
    return found


def _kinds(control: dict[str, Any]) -> set[tuple[str, str]]:
    return {(e["kind"], e["subject"]) for f in control["findings"] for e in f["evidence"]}


def test_report_lists_the_evidence_under_its_controls_and_names_the_gaps(
    exe: str, home: Path, tmp_path: Path
) -> None:
    report = _report(exe, home, tmp_path, "--framework", "nist-ai-rmf")
    inventory = _control(report, "GOVERN 1.6")
    assert inventory["status"] == "evidenced"
    assert {("model_version", "churn/1"), ("model_version", "churn/2")} <= _kinds(inventory)
    fairness = _control(report, "MEASURE 2.11")
    assert fairness["status"] == "evidenced" and ("fairness", "churn/1") in _kinds(fairness)
    assert ("gate_verdict", "churn/1") in _kinds(_control(report, "MEASURE 2.5"))
    assert ("intended_use", "churn/1") in _kinds(_control(report, "MAP 1.1"))
    assert ("training_data", "churn/1") in _kinds(_control(report, "MAP 2.3"))
    assert ("deployment_change", "churn-prod revision 1") in _kinds(_control(report, "MANAGE 2.4"))
    assert _control(report, "MEASURE 2.8")["status"] == "evidenced"  # the audit chain
    gaps = {c["id"]: [f["message"] for f in c["findings"] if f["status"] == "gap"]
            for c in report["controls"]}  # fmt: skip
    assert gaps["MEASURE 2.4"] == [
        "churn/1 serves in churn-prod with no monitoring policy (a monitoring: section in "
        "modelpilot deploy policy set)"
    ]
    assert "no risk register" in gaps["MAP 5.1"][0]
    assert "no version was ever retired" in gaps["GOVERN 1.7"][0]
    iso = _report(exe, home, tmp_path, "--framework", "iso-42001")
    assert ("fairness", "churn/1") in _kinds(_control(iso, "A.5.4"))
    assert _control(iso, "A.6.2.8")["status"] == "evidenced"
    assert _control(iso, "A.5.2")["status"] == "gap"


def test_html_report_is_self_contained(exe: str, home: Path, tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    done = _run(exe, home, "governance", "report", "--framework", "iso-42001", "-o", str(target))
    assert done.returncode == 0, done.stderr
    page = target.read_text()
    assert page.startswith("<!doctype html>") and "A.6.2.4" in page and "churn/1" in page
    for external in ("http://", "https://", "<script", "src=", "<link"):
        assert external not in page


def test_fail_on_gaps_exits_12_and_a_clean_control_set_does_not_fail(exe: str, home: Path) -> None:
    failed = _run(exe, home, "governance", "report", "--framework", "nist-ai-rmf",
                  "--fail-on-gaps")  # fmt: skip
    assert failed.returncode == 12, failed.stdout + failed.stderr
    assert "MEASURE 2.4" in failed.stdout and "gap" in failed.stdout


def test_editing_one_audit_row_turns_the_audit_chain_control_into_a_gap(
    exe: str, home: Path, tmp_path: Path
) -> None:
    store = Store.open(Settings(home=home).resolved_store_uri())
    with store.write() as conn:
        first = conn.execute(select(events.c.id).order_by(events.c.id).limit(1)).scalar_one()
        conn.execute(update(events).where(events.c.id == first).values(actor="mallory"))
    store.close()
    report = _report(exe, home, tmp_path, "--framework", "iso-42001")
    chain = _control(report, "A.6.2.8")
    assert chain["status"] == "gap"
    assert chain["findings"][0]["message"].startswith(
        f"the audit chain does not verify: Audit chain broken at entry {first}: edited"
    )
    assert report["audit_chain"]["ok"] is False


def test_unknown_framework_is_exit_2_naming_the_known_ones(exe: str, home: Path) -> None:
    done = _run(exe, home, "governance", "report", "--framework", "nist")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "Error: Unknown framework 'nist'; known frameworks: iso-42001, nist-ai-rmf."
    )


def test_a_model_with_no_records_gets_a_report_of_gaps_only(
    exe: str, tmp_path: Path, home: Path
) -> None:
    report = _report(exe, home, tmp_path, "--framework", "nist-ai-rmf", "--model", "ghost")
    assert {c["status"] for c in report["controls"]} == {"gap"}
    assert report["summary"]["gaps"] == report["summary"]["controls"]
    empty = tmp_path / "empty"
    fresh = _report(exe, empty, tmp_path, "--framework", "iso-42001")
    assert {c["status"] for c in fresh["controls"]} == {"gap"}


def test_a_wrong_field_in_the_risk_register_is_a_line_numbered_error(
    exe: str, home: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "risk.yaml"
    bad.write_text(GOOD_REGISTER.replace("    likelihood:", "    likelyhood:"))
    done = _run(exe, home, "models", "risk", "edit", "churn", "--file", str(bad))
    assert done.returncode == 2
    assert done.stderr.startswith(
        f"Error: {bad}:6: risks.0.likelyhood: unknown key. Did you mean 'likelihood'?"
    ), done.stderr
    shown = _run(exe, home, "models", "risk", "show", "churn")
    assert shown.returncode == 3 and "no risk register yet" in shown.stderr


def test_risk_register_edits_are_revisions_audited_and_shown_on_card_and_report(
    exe: str, home: Path, tmp_path: Path
) -> None:
    file = tmp_path / "risk.yaml"
    file.write_text(GOOD_REGISTER)
    first = _run(exe, home, "models", "risk", "edit", "churn", "--file", str(file))
    assert first.returncode == 0 and "revision 1" in first.stdout, first.stderr
    file.write_text(GOOD_REGISTER.replace("likelihood: medium", "likelihood: high"))
    second = _run(exe, home, "models", "risk", "edit", "churn", "--file", str(file))
    assert "revision 2" in second.stdout
    shown = json.loads(_run(exe, home, "models", "risk", "show", "churn", "--json").stdout)
    assert shown["revision"] == 2 and shown["risks"][0]["likelihood"] == "high"
    log = _run(exe, home, "audit", "log", "--subject", "model:churn", "--json").stdout
    assert (
        sum(json.loads(line)["kind"] == "version.risk_register" for line in log.splitlines()) == 2
    )
    card = _run(exe, home, "models", "card", "churn/1").stdout
    assert "## Risk register" in card and "likelihood high, impact medium" in card
    report = _report(exe, home, tmp_path, "--framework", "nist-ai-rmf")
    assert ("risk_register", "churn") in _kinds(_control(report, "MAP 5.1"))


def test_retire_refuses_a_served_version_and_retires_another_for_good(
    exe: str, home: Path, tmp_path: Path
) -> None:
    served = _run(exe, home, "models", "retire", "churn/1", "--reason", "old")
    assert served.returncode == 4
    assert "deployment(s) churn-prod (stable 100%) serve it as stable" in served.stderr
    # a version tried as canary stops serving: its deployment rolls back to the stable one
    canary = _run(
        exe, home, "deploy", "canary", "churn-prod", "--model", "churn/2", "--weight", "10"
    )
    assert canary.returncode == 0, canary.stderr
    done = _run(exe, home, "models", "retire", "churn/2", "--reason", "superseded by churn/1")
    assert done.returncode == 0, done.stderr
    assert "Rolled back churn-prod (canary 10%): it no longer serves churn/2." in done.stdout
    status = json.loads(_run(exe, home, "deploy", "status", "churn-prod", "--json").stdout)
    variants = status["config"]["variants"]
    assert [(v["model"], v["version"], v["role"]) for v in variants] == [("churn", 1, "stable")]
    history = _run(exe, home, "deploy", "history", "churn-prod").stdout
    assert "retiring churn/2: superseded by churn/1" in history
    redeploy = _run(exe, home, "deploy", "create", "churn-b", "--model", "churn/2")
    assert redeploy.returncode == 4 and "churn/2 was retired" in redeploy.stderr
    assert _run(exe, home, "models", "show", "churn/2").returncode == 0  # lineage kept
    report = _report(exe, home, tmp_path, "--framework", "nist-ai-rmf")
    retirement = _control(report, "GOVERN 1.7")
    assert retirement["status"] == "evidenced" and ("retirement", "churn/2") in _kinds(retirement)
    versions = {v["ref"]: v for v in report["inventory"][0]["versions"]}
    assert versions["churn/2"]["status"] == "retired"
    assert versions["churn/2"]["retired_reason"] == "superseded by churn/1"
    assert versions["churn/1"]["status"] == "serving"
