"""Ray Serve serving benchmarks/serving.py's model (run in the ray[serve] venv, not ours).

    python ray_serve_app.py PORT

Three applications behind Ray Serve's HTTP proxy on 127.0.0.1:PORT, each one replica:
/predict (one predict_proba per request), /batched (@serve.batch, up to 64 rows, no wait,
as modelpilot's default batching) and /noop (the proxy and a replica, no model: the ceiling).
The model is fitted here exactly as benchmarks/serving.py fits it (same data and seed), so no
pickle crosses the two venvs. Runs until SIGTERM.
"""

from __future__ import annotations

import signal
import sys
from typing import Any

import pandas as pd
import ray
from ray import serve
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier
from starlette.requests import Request

COLUMNS = [f"f{i}" for i in range(20)]


def fitted() -> HistGradientBoostingClassifier:
    x, y = make_classification(n_samples=50_000, n_features=20, random_state=0)
    return HistGradientBoostingClassifier(random_state=0).fit(pd.DataFrame(x, columns=COLUMNS), y)


@serve.deployment(max_ongoing_requests=256)
class Predict:
    def __init__(self) -> None:
        self.model = fitted()

    async def __call__(self, request: Request) -> dict[str, Any]:
        frame = pd.DataFrame.from_records(await request.json(), columns=COLUMNS)
        return {"predictions": self.model.predict_proba(frame)[:, 1].tolist()}


@serve.deployment(max_ongoing_requests=256)
class Batched:
    def __init__(self) -> None:
        self.model = fitted()

    @serve.batch(max_batch_size=64, batch_wait_timeout_s=0.0)
    async def predict(self, bodies: list[list[dict[str, float]]]) -> list[dict[str, Any]]:
        sizes = [len(b) for b in bodies]
        frame = pd.DataFrame.from_records([r for b in bodies for r in b], columns=COLUMNS)
        scores = self.model.predict_proba(frame)[:, 1].tolist()
        out, at = [], 0
        for size in sizes:
            out.append({"predictions": scores[at : at + size]})
            at += size
        return out

    async def __call__(self, request: Request) -> dict[str, Any]:
        return await self.predict(await request.json())


@serve.deployment(max_ongoing_requests=256)
class Noop:
    async def __call__(self, request: Request) -> dict[str, Any]:
        await request.body()
        return {"predictions": [0.5]}


def main() -> None:
    port = int(sys.argv[1])
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    for name, app in (("predict", Predict), ("batched", Batched), ("noop", Noop)):
        serve.run(app.bind(), name=name, route_prefix=f"/{name}")
    print("ready", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    serve.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    main()
