"""BentoML services for benchmarks/serving.py: the same model with and without adaptive batching.

Request: POST /predict {"inputs": [[20 floats], ...]} -> list of [p0, p1] rows. One worker each.
"""

import os

import bentoml
import joblib
import numpy as np

MODEL_PATH = os.environ["MODEL_PATH"]


@bentoml.service(workers=1)
class HGBBatched:
    def __init__(self) -> None:
        self.model = joblib.load(MODEL_PATH)

    @bentoml.api(batchable=True, batch_dim=0, max_batch_size=64)
    def predict(self, inputs: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(inputs)


@bentoml.service(workers=1)
class HGBUnbatched:
    def __init__(self) -> None:
        self.model = joblib.load(MODEL_PATH)

    @bentoml.api
    def predict(self, inputs: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(inputs)
