"""The ceiling: a model server's own HTTP stack with a model that costs nothing.

Everything a ``modelpilot serve`` process runs in front of its models, built by the same
functions: uvicorn with uvloop and the guarded httptools protocol (``http_config``), the token
guard, and the raw ASGI path that answers ``POST /predict/{name}`` (``FastPredictPath``: body
read, orjson parse, response write). Only validation, batching and the prediction are left out:
the plane parses the body and answers a constant of the same shape as a real answer.
Run: python benchmarks/serving_peers/noop_app.py --port 8105
"""

import argparse
from types import SimpleNamespace
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelpilot.serving.access import TokenGuard
from modelpilot.serving.app import FastPredictPath
from modelpilot.serving.server import http_config, token_guard
from modelpilot.serving.settings import ServingSettings

_ANSWER = orjson.dumps(
    {
        "request_id": "0",
        "model": "noop",
        "version": 1,
        "predictions": [0],
        "probabilities": [[0.5, 0.5]],
        "classes": [0, 1],
    }
)


class NoopPlane:
    """Stands in for DataPlane: parses the body and answers a constant."""

    settings = ServingSettings()

    async def predict_payload(
        self, name: str, body: bytes, headers: dict[bytes, bytes]
    ) -> tuple[int, bytes, str]:
        orjson.loads(body)
        return 200, _ANSWER, "noop"


async def health(request: Request) -> Response:
    return Response(b"ok")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8105)
    args = parser.parse_args()
    settings = NoopPlane.settings
    routes = FastPredictPath(NoopPlane(), Starlette(routes=[Route("/health", health)]))  # type: ignore[arg-type]
    no_store = SimpleNamespace(tokens=None, where="the no-op ceiling")  # as a server without one
    tokens = token_guard(no_store, settings)  # type: ignore[arg-type]
    app: Any = TokenGuard(routes, tokens, require_token=settings.require_token)
    uvicorn.Server(http_config(app, settings, host="127.0.0.1", port=args.port)).run()


if __name__ == "__main__":
    main()
