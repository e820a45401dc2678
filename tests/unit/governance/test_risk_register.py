"""The risk register's parser and the control catalogue."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from modelpilot.errors import InvalidInput
from modelpilot.governance import load_catalogue, parse_risk_register
from modelpilot.governance.controls import EVIDENCE_KINDS
from modelpilot.governance.risk import RiskRegister

_text = st.text(
    st.characters(codec="utf-8", categories=["L", "N", "Zs"]), min_size=1, max_size=40
).filter(lambda s: s.strip() == s and s)
_level = st.sampled_from(["low", "medium", "high"])
_risk = st.fixed_dictionaries(
    {"risk": _text, "likelihood": _level, "impact": _level, "mitigation": _text, "owner": _text}
)
_register = st.fixed_dictionaries(
    {
        "intended_use": _text,
        "out_of_scope_uses": st.lists(_text, max_size=3),
        "affected_groups": st.lists(_text, max_size=3),
        "risks": st.lists(_risk, max_size=4),
    }
)


@given(_register)
def test_a_valid_register_round_trips_through_yaml(data: dict[str, object]) -> None:
    parsed = parse_risk_register(yaml.safe_dump(data, allow_unicode=True))
    assert parsed == RiskRegister.model_validate(data)
    assert parse_risk_register(yaml.safe_dump(parsed.model_dump(mode="json"))) == parsed


@given(_register, st.data())
def test_a_misspelt_risk_key_names_its_line(data: dict[str, object], draw: st.DataObject) -> None:
    risks = data["risks"]
    assert isinstance(risks, list)
    if not risks:
        risks.append({"risk": "r", "likelihood": "low", "impact": "low", "mitigation": "m",
                      "owner": "o"})  # fmt: skip
    index = draw.draw(st.integers(0, len(risks) - 1))
    risks[index]["owner_name"] = risks[index].pop("owner")
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    line = next(n for n, t in enumerate(text.splitlines(), 1) if t.strip().startswith("owner_"))
    with pytest.raises(InvalidInput, match=rf"^<risk register>:{line}: risks\.{index}\.owner_name"):
        parse_risk_register(text)


def test_a_wrong_level_says_what_is_accepted() -> None:
    text = (
        "intended_use: x\nrisks:\n"
        "  - {risk: r, likelihood: huge, impact: low, mitigation: m, owner: o}\n"
    )
    with pytest.raises(
        InvalidInput, match=r":3: risks\.0\.likelihood: .*'low', 'medium' or 'high'"
    ):
        parse_risk_register(text)


@pytest.mark.parametrize("text", ["", "- a list\n", "intended_use: a: b\n"])
def test_not_a_register_is_a_line_numbered_error(text: str) -> None:
    with pytest.raises(InvalidInput, match=r"^<risk register>:1: "):
        parse_risk_register(text)


def test_the_catalogue_has_the_controls_the_issue_names_with_sources() -> None:
    catalogue = load_catalogue()
    nist = {c.id for c in catalogue.framework("nist-ai-rmf").controls}
    iso = {c.id for c in catalogue.framework("iso-42001").controls}
    assert {"GOVERN 1.6", "GOVERN 1.7", "MAP 2.1", "MEASURE 2.1", "MEASURE 2.3", "MEASURE 2.4",
            "MEASURE 2.5", "MEASURE 2.7", "MEASURE 2.10", "MEASURE 2.11", "MANAGE 2.4",
            "MANAGE 4.1"} <= nist  # fmt: skip
    assert {"A.5.2", "A.6.2.4", "A.6.2.5", "A.6.2.6", "A.6.2.7", "A.6.2.8", "A.7.4", "A.7.5",
            "A.8.2"} <= iso  # fmt: skip
    for framework in catalogue.frameworks.values():
        for control in framework.controls:
            assert control.source and set(control.evidence) <= set(EVIDENCE_KINDS)
