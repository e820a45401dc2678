"""scikit-learn vs its ONNX and compiled candidates (``modelpilot optimize --to onnx,compiled``),
in process.

    python benchmarks/optimize.py            # ~2 minutes on a quiet 2-core machine

The model is benchmarks/serving.py's construction: HistGradientBoostingClassifier(random_state=0)
fitted on a DataFrame f0..f19 of 50,000 rows of make_classification(20 features,
random_state=0); here the generator draws 150,000 rows, the first 50,000 train the model and
the other 100,000 are the fidelity data and the labelled holdout. The model is registered in
a temporary home and optimised with the same call as the CLI; the candidate table is printed.

Then, pinned to one CPU with one OpenMP thread (as serving.py pins its servers), each model's
``predict_proba`` is timed on what the data plane hands it: a DataFrame, and the float64 matrix
the data plane uses for a plain estimator or a one-tensor graph. Batch 1: latency p50/p99 of
--calls calls; batch 64: rows/s from the median call. Printed: both models side by side, the
ratios (targets: >= 5x at batch 1, >= 2x rows/s at 64) and fidelity on the 100,000 rows.
The compiled candidate is built with the machine's C compiler (gcc) during optimize.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before scikit-learn loads its OpenMP runtime

import numpy as np
import pandas as pd

COLUMNS = [f"f{i}" for i in range(20)]


def _pin() -> str:
    cpus = sorted(os.sched_getaffinity(0))
    chosen = cpus[1] if len(cpus) > 1 else cpus[0]
    os.sched_setaffinity(0, {chosen})
    return f"CPU {chosen}"


def _timed(call: Any, data: Any, calls: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(20):
            call(data)
        out = np.empty(calls)
        for i in range(calls):
            start = time.perf_counter_ns()
            call(data)
            out[i] = (time.perf_counter_ns() - start) / 1e3
    return out


def _speed(predictor: Any, frame: pd.DataFrame, calls: int) -> dict[str, float]:
    one, batch = frame.iloc[:1].reset_index(drop=True), frame.iloc[:64].reset_index(drop=True)
    results: dict[str, float] = {}
    for kind, first, sixty_four in (
        ("frame", one, batch),
        ("matrix", one.to_numpy(), batch.to_numpy()),
    ):
        at_1 = _timed(predictor.predict_proba, first, calls)
        at_64 = _timed(predictor.predict_proba, sixty_four, max(calls // 5, 50))
        results[f"{kind} p50 us @1"] = float(np.percentile(at_1, 50))
        results[f"{kind} p99 us @1"] = float(np.percentile(at_1, 99))
        results[f"{kind} rows/s @64"] = 64e6 / float(np.percentile(at_64, 50))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="timed calls at batch 1")
    args = parser.parse_args()

    from sklearn.datasets import make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier

    from modelpilot.config import Settings
    from modelpilot.optimization import optimize_version
    from modelpilot.workspace import Workspace

    x, y = make_classification(n_samples=150_000, n_features=20, random_state=0)
    frame = pd.DataFrame(x, columns=COLUMNS)
    train, rest = frame.iloc[:50_000], frame.iloc[50_000:].reset_index(drop=True)
    holdout = rest.assign(label=y[50_000:])
    model = HistGradientBoostingClassifier(random_state=0).fit(train, y[:50_000])
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Settings(home=Path(tmp) / "home"))
        ws.log_model(model, "hgb", input_example=train.head())
        started = time.perf_counter()
        result = optimize_version(
            ws.registry, ws.artifacts, ws.datasets, ws.load_model, "hgb/1", "onnx,compiled",
            data=rest, holdout=holdout, target="label",
        )  # fmt: skip
        print(f"optimize: {time.perf_counter() - started:.1f} s (fidelity on {len(rest):,} rows)")
        table = result.to_frame().set_index("ref").T
        with pd.option_context("display.width", 200, "display.float_format", "{:.6g}".format):
            print(table)
        source = ws.load_model("hgb/1").predictor
        candidates = {c.target: ws.load_model(c.ref).predictor for c in result.candidates}
        where = _pin()
        speeds = {"scikit-learn": _speed(source, rest, args.calls)}
        for target, candidate in candidates.items():
            speeds[target] = _speed(candidate, rest, args.calls)
        ws.close()
    side = pd.DataFrame(speeds)
    for target in candidates:  # a speed-up: latency falls, rows/s rises
        side[f"{target} x"] = [
            side.loc[k, "scikit-learn"] / side.loc[k, target]
            if "us" in k
            else side.loc[k, target] / side.loc[k, "scikit-learn"]
            for k in side.index
        ]
    print(f"\nIn process, {where}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}:")
    with pd.option_context("display.float_format", "{:,.1f}".format, "display.width", 200):
        print(side)
    rows = result.to_frame().set_index("ref")
    for candidate in result.candidates:
        row = rows.loc[candidate.ref]
        ratio_1 = side.loc["matrix p50 us @1", f"{candidate.target} x"]
        ratio_64 = side.loc["matrix rows/s @64", f"{candidate.target} x"]
        print(
            f"\n{candidate.target}: fidelity on {len(rest):,} rows: agreement "
            f"{row['agreement_data']:.6f}, max |dp| {row['max_abs_proba_diff_data']:.3g}, mean "
            f"|dp| {row['mean_abs_proba_diff_data']:.3g}; holdout {row['metric']} "
            f"{row['holdout_metric']:.6f} (diff {row['metric_diff']:+.2g}); size "
            f"{row['size_bytes']:,} bytes\n  targets: batch 1 >= 5x: {ratio_1:.1f}x "
            f"({'met' if ratio_1 >= 5 else 'MISSED'}); rows/s at 64 >= 2x: {ratio_64:.1f}x "
            f"({'met' if ratio_64 >= 2 else 'MISSED'})"
        )


if __name__ == "__main__":
    main()
