"""The ceiling: modelpilot's HTTP stack (Starlette on uvicorn, orjson) with an endpoint that does
nothing but parse the body and answer. Run: uvicorn benchmarks.peers.noop_app:app"""

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def noop(request: Request) -> Response:
    orjson.loads(await request.body())
    return Response(b'{"predictions":[0]}', media_type="application/json")


async def health(request: Request) -> Response:
    return Response(b"ok")


app = Starlette(routes=[Route("/noop", noop, methods=["POST"]), Route("/health", health)])
