"""Writes MLflow model directories from the benchmark's joblib model (run in MLflow's venv).

    python mlflow_model.py MODEL.joblib X.npy OUT_TENSOR OUT_COLUMNS

OUT_TENSOR has a tensor signature (``{"inputs": [[...]]}`` bodies); OUT_COLUMNS a column
signature f0..f19 (``{"dataframe_split": ...}`` bodies), as in /work/shared/bench/peers.
"""

import sys

import joblib
import mlflow.sklearn
import numpy as np
import pandas as pd
from mlflow.models import infer_signature

model = joblib.load(sys.argv[1])
example = np.load(sys.argv[2])[:5]
frame = pd.DataFrame(example, columns=[f"f{i}" for i in range(example.shape[1])])
for target, sample in ((sys.argv[3], example), (sys.argv[4], frame)):
    mlflow.sklearn.save_model(
        model,
        target,
        signature=infer_signature(sample, model.predict_proba(example)),
        serialization_format="cloudpickle",  # the peer's own format; its skops mode refuses it
    )
