"""A realistic, generated churn dataset for the demo, docs and benchmarks (no downloads).

>>> frame = make_churn(1000, seed=0)
>>> frame.shape, round(float(frame["churned"].mean()), 2)
((1000, 10), 0.25)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

REGIONS = ("north", "south", "east", "west")
PLANS = ("basic", "standard", "premium")


def make_churn(
    rows: int, *, seed: int = 0, shift: float = 0.0, price_sensitivity: float = 0.0
) -> pd.DataFrame:
    """Customers of a subscription business and whether they churned.

    ``shift`` moves usage down and support calls up, to simulate a changed population;
    ``price_sensitivity`` makes high monthly charges churn more (a changed relationship: a
    model trained before it ranks these customers worse, and retraining helps).
    """
    rng = np.random.default_rng(seed)
    tenure = rng.gamma(2.0, 12.0, rows).round(1)
    monthly = rng.normal(55.0, 18.0, rows).clip(10, 150).round(2)
    usage = rng.lognormal(3.0 - shift, 0.6, rows).round(2)
    calls = rng.poisson(1.2 + 2 * shift, rows)
    age = rng.integers(18, 80, rows)
    region = rng.choice(REGIONS, rows, p=(0.3, 0.3, 0.2, 0.2))
    plan = rng.choice(PLANS, rows, p=(0.5, 0.35, 0.15))
    gender = rng.choice(("f", "m"), rows)
    discount = rng.random(rows) < 0.2
    logit = (
        -0.6
        - 0.045 * tenure
        + 0.02 * (monthly - 55)
        - 0.03 * (usage - 20)
        + 0.45 * calls
        - 0.5 * (plan == "premium")
        + 0.3 * (region == "south")
        - 0.4 * discount
        + price_sensitivity * 0.06 * (monthly - 55)
    )
    churned = rng.random(rows) < 1 / (1 + np.exp(-logit))
    frame = pd.DataFrame(
        {
            "tenure_months": tenure,
            "monthly_charges": monthly,
            "usage_gb": usage,
            "support_calls": calls,
            "age": age,
            "region": region,
            "plan": plan,
            "gender": gender,
            "has_discount": discount,
            "churned": churned.astype(int),
        }
    )
    return _calibrate_rate(frame, rng)


def _calibrate_rate(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Nudge labels so the churn rate is about 25%, like the businesses the demo imitates."""
    target = round(0.25 * len(frame))
    positives = int(frame["churned"].sum())
    if positives > target:
        flip = rng.choice(
            np.flatnonzero(frame["churned"].to_numpy() == 1), positives - target, replace=False
        )
        frame.loc[flip, "churned"] = 0
    elif positives < target:
        flip = rng.choice(
            np.flatnonzero(frame["churned"].to_numpy() == 0), target - positives, replace=False
        )
        frame.loc[flip, "churned"] = 1
    return frame
