"""Seeded churn-like rows for the optimisation tests: a numeric column with missing values
and a text category, a binary label ``churned`` and a numeric target ``spend``."""

from __future__ import annotations

import numpy as np
import pandas as pd


def churn_frame(
    rows: int,
    seed: int,
    *,
    plans: tuple[str, ...] = ("basic", "pro"),
    missing_share: float = 0.1,
    noise: float = 0.5,
) -> pd.DataFrame:
    """``age``, ``income`` (``missing_share`` of it NaN), ``plan``, ``churned``, ``spend``."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.normal(40, 12, rows),
            "income": rng.normal(50, 10, rows),
            "plan": rng.choice(list(plans), rows),
        }
    )
    frame.loc[rng.random(rows) < missing_share, "income"] = np.nan
    score = (frame["age"] - 40) / 12 + (frame["plan"] == "pro") + rng.normal(0, noise, rows)
    return frame.assign(churned=(score > 0.5).astype(int), spend=10 * score)
