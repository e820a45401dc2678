"""A training pipeline for the continuous-training tests: fits the deployment's model on a
dataset; ``flip=True`` trains on inverted labels (a candidate that must fail the gate) and
``fail=True`` raises in the step (a pipeline that fails)."""

from __future__ import annotations

import pandas as pd
from sklearn.linear_model import LogisticRegression

import modelpilot as mp

FEATURES = ["a", "b"]


@mp.step
def train(frame: pd.DataFrame, flip: bool, fail: bool) -> mp.ModelVersion:
    if fail:
        raise RuntimeError("the training data has no rows for this window")
    labels = ~frame["churned"] if flip else frame["churned"]
    model = LogisticRegression().fit(frame[FEATURES], labels)
    return mp.log_model(model, "churn", input_example=frame[FEATURES].head())


@mp.pipeline
def retrain(data: pd.DataFrame, flip: bool = False, fail: bool = False) -> object:
    return train(data, flip, fail)
