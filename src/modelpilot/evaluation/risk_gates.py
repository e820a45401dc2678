"""Gate checks for the opt-in model-risk sections: adversarial, membership, explanations.

Like every gate check they fail closed: a policy that asks for a section the evaluation did
not run fails with the option to pass (``modelpilot gate`` turns the sections a policy needs
on by itself).

>>> from modelpilot.evaluation.policy import parse_policy
>>> from modelpilot.evaluation.membership import MembershipResult
>>> policy = parse_policy("membership: {max_auc: 0.6}")
>>> check_membership(policy.membership.max_auc,
...                  MembershipResult(0.72, 0.4, 100, 100, 0.0, 1.2, "cross-entropy")).passed
False
"""

from __future__ import annotations

from modelpilot.evaluation.adversarial import AdversarialResult
from modelpilot.evaluation.explanations import Explanations
from modelpilot.evaluation.membership import MembershipResult
from modelpilot.evaluation.policy import AdversarialRules, GatePolicy
from modelpilot.evaluation.result import EvaluationResult
from modelpilot.evaluation.verdict import GateCheck, fmt


def risk_checks(policy: GatePolicy, result: EvaluationResult) -> list[GateCheck]:
    """The checks of the policy's ``adversarial``, ``membership`` and ``explanations``."""
    checks = []
    if policy.adversarial is not None:
        checks.append(check_adversarial(policy.adversarial, result.adversarial))
    if policy.membership is not None:
        checks.append(check_membership(policy.membership.max_auc, result.membership))
    if policy.explanations is not None:
        checks.append(check_shap_share(policy.explanations.max_feature_share, result.explanations))
    return checks


def check_adversarial(rules: AdversarialRules, found: AdversarialResult | None) -> GateCheck:
    """Share of rows flipped within the policy's budget, at most ``max_flip_share``."""
    name, limit = "adversarial.flip_share", rules.max_flip_share
    if found is None:
        message = (
            "adversarial robustness was not measured; call evaluate(..., adversarial=True) "
            "(classifiers with numeric features only)"
        )
        return GateCheck(name, False, None, limit, message)
    share = found.flip_share_at(rules.budget)
    message = (
        f"{share:.1%} of {found.rows} rows change class within {rules.budget:.1%} of each "
        f"feature's range; allowed at most {limit:.1%}"
    )
    return GateCheck(name, share <= limit, share, limit, message)


def check_membership(max_auc: float, found: MembershipResult | None) -> GateCheck:
    """The membership-inference attack's AUC, at most ``max_auc``."""
    name = "membership.auc"
    if found is None:
        message = (
            "membership-inference risk was not measured; call evaluate(..., membership=True, "
            "train_data=<training rows>)"
        )
        return GateCheck(name, False, None, max_auc, message)
    message = (
        f"loss-threshold attack AUC {fmt(found.auc)} on {found.members} training vs "
        f"{found.non_members} holdout rows (0.5 = no leak); required at most {fmt(max_auc)}"
    )
    return GateCheck(name, found.auc <= max_auc, found.auc, max_auc, message)


def check_shap_share(max_share: float, found: Explanations | None) -> GateCheck:
    """The top feature's share of the total mean |SHAP|, at most ``max_share``."""
    name = "explanations.max_feature_share"
    values = None if found is None else found.shap
    if found is None or not values:
        message = "no SHAP values were computed; call evaluate(..., shap=True)"
        return GateCheck(name, False, None, max_share, message)
    total = sum(values.values())
    top = max(values, key=lambda k: values[k])
    share = values[top] / total if total > 0 else 0.0
    message = (
        f"'{top}' carries {share:.1%} of the total mean |SHAP| ({found.shap_method}); "
        f"allowed at most {max_share:.1%}"
    )
    return GateCheck(name, share <= max_share, share, max_share, message)
