"""Writes an MLflow model directory from the benchmark's joblib model (run in MLflow's venv)."""

import sys

import joblib
import mlflow.sklearn
import numpy as np
from mlflow.models import infer_signature

model = joblib.load(sys.argv[1])
example = np.load(sys.argv[3])[:5]
mlflow.sklearn.save_model(
    model,
    sys.argv[2],
    signature=infer_signature(example, model.predict_proba(example)),
    serialization_format="cloudpickle",  # the peer's own file; its skops mode refuses TreePredictor
)
