"""The ceiling: modelpilot's own HTTP stack with a model that costs nothing.

The same uvicorn (httptools, uvloop) and the same raw ASGI path that answers
``POST /predict/{name}`` in a real server (``FastPredictPath``: body read, orjson parse,
response write); only validation, batching and the prediction are left out.
Run: uvicorn --app-dir benchmarks/serving_peers noop_app:app
"""

from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelpilot.serving.app import FastPredictPath
from modelpilot.serving.settings import ServingSettings


class NoopPlane:
    """Stands in for DataPlane: parses the body and answers a constant."""

    settings = ServingSettings()

    async def predict_payload(
        self, name: str, body: bytes, headers: dict[bytes, bytes]
    ) -> tuple[int, bytes, str]:
        orjson.loads(body)
        return 200, b'{"predictions":[0],"probabilities":[[0.5,0.5]]}', "noop"


async def health(request: Request) -> Response:
    return Response(b"ok")


app: Any = FastPredictPath(NoopPlane(), Starlette(routes=[Route("/health", health)]))  # type: ignore[arg-type]
