"""A training pipeline for the crash tests that blocks where the test wants to kill its agent.

The step writes its process id to ``HOLD/worker.pid``; with ``register=True`` it registers
the deployment's model first (``HOLD/registered`` then holds the version). It then waits for
the file ``HOLD/release``, which the crash tests never create; only after it (a worker that
outlived its agent and was released) does a step without ``register`` register a version.
The wait is bounded, so a forgotten worker ends by itself.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd
from sklearn.linear_model import LogisticRegression

import modelpilot as mp

FEATURES = ["a", "b"]
MAX_HOLD_S = 300.0


def _fit(frame: pd.DataFrame) -> mp.ModelVersion:
    model = LogisticRegression().fit(frame[FEATURES], frame["churned"])
    return mp.log_model(model, "churn", input_example=frame[FEATURES].head())


@mp.step(cache=False)
def train(frame: pd.DataFrame, hold: str, register: bool) -> mp.ModelVersion:
    folder = Path(hold)
    (folder / "worker.pid").write_text(str(os.getpid()))
    version = _fit(frame) if register else None
    if version is not None:
        (folder / "registered").write_text(str(version.version))
    deadline = time.monotonic() + MAX_HOLD_S
    while not (folder / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # the step's "work": held until released (bounded)
    return version if version is not None else _fit(frame)


@mp.pipeline
def retrain(data: pd.DataFrame, hold: str = "", register: bool = False) -> object:
    return train(data, hold, register)
