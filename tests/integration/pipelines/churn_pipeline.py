"""A three-step pipeline for the tests: load the data -> train a model -> evaluate it.

Tests copy this file into a temporary folder and edit the copy (to change a step's code);
the step workers import it from there by file path.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

import modelpilot as mp

FEATURES = ["a", "b"]


@mp.step
def load(data: mp.DatasetVersion) -> pd.DataFrame:
    frame = mp.load_dataset(data.ref)
    print(f"loaded {len(frame)} rows of {data.ref}")
    mp.log_metric("rows", len(frame))
    return frame.dropna()


@mp.step
def train(frame: pd.DataFrame, c: float) -> mp.ModelVersion:
    model = LogisticRegression(C=c).fit(frame[FEATURES], frame["y"])
    mp.log_metric("train_accuracy", float(model.score(frame[FEATURES], frame["y"])))
    return mp.log_model(model, "churn", input_example=frame[FEATURES].head())


@mp.step
def evaluate(model: mp.ModelVersion, holdout: pd.DataFrame) -> dict[str, float]:
    loaded = mp.load_model(model.ref)
    predicted = np.asarray(loaded.predict(holdout[FEATURES])).ravel()
    accuracy = float((predicted == holdout["y"].to_numpy()).mean())
    mp.log_metric("accuracy", accuracy)
    return {"accuracy": accuracy}


@mp.pipeline
def churn(data: mp.DatasetVersion, holdout: mp.DatasetVersion, c: float = 1.0) -> object:
    frame = load(data)
    model = train(frame, c)
    return evaluate(model, holdout)


if __name__ == "__main__":  # never run by the step workers, which import this file
    raise SystemExit("run with: modelpilot pipelines run churn_pipeline.py:churn ...")
