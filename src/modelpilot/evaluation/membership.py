"""Membership-inference risk: can an attacker tell the model's training rows from others?

The loss-threshold attack (Yeom, Giacomelli, Fredrikson & Jha, "Privacy Risk in Machine
Learning: Analyzing the Connection to Overfitting", IEEE CSF 2018) guesses "member" when a
row's loss is low. Its AUC over an equal number of training rows (members) and holdout rows
(non-members) measures how much the model leaks about who was in its training data: 0.5 is
no better than a coin, 1.0 is every member recognised. ``advantage`` is the attack's best
true-positive minus false-positive rate (Yeom et al.'s membership advantage).

Losses: cross-entropy of the true class for classifiers with ``predict_proba``, 0/1 loss for
those without, squared error for regressors. The holdout must not overlap the training data
(check leakage at ``log_dataset``), or the AUC understates the risk.

>>> import numpy as np, pandas as pd
>>> from sklearn.tree import DecisionTreeClassifier
>>> rng = np.random.default_rng(0)
>>> X = pd.DataFrame({"a": rng.normal(size=600), "b": rng.normal(size=600)})
>>> y = pd.Series((X["a"] + rng.normal(size=600) > 0).astype(int))
>>> tree = DecisionTreeClassifier(random_state=0).fit(X[:300], y[:300])
>>> r = evaluate_membership(tree, X[:300], y[:300], X[300:], y[300:], "binary", seed=0,
...                         notes=[])
>>> round(r.auc, 2)  # an unpruned tree: training rows all have zero loss
0.69
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.evaluation.prediction import Predictions, Task, predict

_EPS = 1e-12


@dataclass(frozen=True)
class MembershipResult:
    """The loss-threshold attack's AUC and advantage, and the losses it saw."""

    auc: float
    advantage: float
    members: int
    non_members: int
    mean_member_loss: float
    mean_non_member_loss: float
    loss: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "auc": self.auc,
            "advantage": self.advantage,
            "members": self.members,
            "non_members": self.non_members,
            "mean_member_loss": self.mean_member_loss,
            "mean_non_member_loss": self.mean_non_member_loss,
            "loss": self.loss,
        }


def row_losses(preds: Predictions) -> tuple[np.ndarray, str]:
    """Each row's loss and its name.

    >>> p = Predictions("binary", np.array([0, 1]), np.array([0, 0]),
    ...                 np.array([[0.9, 0.1], [0.8, 0.2]]), (0, 1))
    >>> [round(float(v), 3) for v in row_losses(p)[0]]
    [0.105, 1.609]
    """
    if preds.task == "regression":
        return (preds.pred.astype(float) - preds.y.astype(float)) ** 2, "squared error"
    if preds.proba is None:
        return (preds.pred != preds.y).astype(float), "0/1 loss"
    own = preds.proba[np.arange(preds.n), preds.y.astype(int)]
    return -np.log(np.clip(own, _EPS, 1.0)), "cross-entropy"


def evaluate_membership(
    model: object,
    train_features: pd.DataFrame,
    train_target: pd.Series,
    holdout_features: pd.DataFrame,
    holdout_target: pd.Series,
    task: Task,
    *,
    seed: int,
    notes: list[str],
    max_rows: int = 5000,
) -> MembershipResult:
    """Attack AUC on equal seeded samples (at most ``max_rows`` each) of both sets."""
    from sklearn.metrics import roc_auc_score, roc_curve

    n = min(len(train_features), len(holdout_features), max_rows)
    rng = np.random.default_rng([seed, 17])
    members = np.sort(rng.choice(len(train_features), size=n, replace=False))
    others = np.sort(rng.choice(len(holdout_features), size=n, replace=False))
    inside = predict(
        model, train_features.iloc[members], train_target.iloc[members], task, notes=notes
    )
    outside = predict(
        model, holdout_features.iloc[others], holdout_target.iloc[others], task, notes=notes
    )
    loss_in, name = row_losses(inside)
    loss_out, _ = row_losses(outside)
    is_member = np.r_[np.ones(n), np.zeros(n)]
    score = -np.r_[loss_in, loss_out]  # low loss: guess "member"
    fpr, tpr, _ = roc_curve(is_member, score)
    return MembershipResult(
        auc=float(roc_auc_score(is_member, score)),
        advantage=float(np.max(tpr - fpr)),
        members=n,
        non_members=n,
        mean_member_loss=float(loss_in.mean()),
        mean_non_member_loss=float(loss_out.mean()),
        loss=name,
    )
