"""The in-process limit: predict_proba rows/s at batch 1 and 64 on one core, no HTTP.

Run pinned to one core with one OpenMP thread (benchmarks/serving.py does this):
    OMP_NUM_THREADS=1 taskset -c 1 python inprocess.py MODEL.joblib X.npy SECONDS
Prints one JSON line: rows/s for a plain matrix and for a DataFrame with column names.
"""

import json
import sys
import time
import warnings

import joblib
import numpy as np
import pandas as pd

model = joblib.load(sys.argv[1])
x = np.load(sys.argv[2])
seconds = float(sys.argv[3])
named = joblib.load(sys.argv[1].replace(".joblib", "-named.joblib"))
warnings.simplefilter("ignore")


def rate(predict, batch):  # type: ignore[no-untyped-def]
    predict(batch)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        predict(batch)
        n += 1
    return n * len(batch) / (time.perf_counter() - start)


out = {}
for size in (1, 64):
    out[f"matrix_{size}"] = rate(model.predict_proba, x[:size])
    frame = pd.DataFrame(x[:size], columns=[f"f{i}" for i in range(x.shape[1])])
    out[f"frame_{size}"] = rate(named.predict_proba, frame)
print(json.dumps(out))
