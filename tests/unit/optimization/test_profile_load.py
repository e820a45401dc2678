"""The cloud profile's load generator (``profile._load``) against a real loopback HTTP server.

It replaced httpx because httpx's own cost, on cores the server shares, capped the cloud
figure at ~600 req/s; here it must send exactly what it is asked to, time only the requests
after the warm-up, and refuse an answer it cannot read rather than measure it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from modelpilot.errors import ModelpilotError
from modelpilot.optimization.profile import _load

Answer = Callable[[bytes], bytes]


def _ok(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )


@asynccontextmanager
async def _server(answer: Answer, seen: list[bytes]) -> AsyncIterator[int]:
    """An HTTP/1.1 server on 127.0.0.1 that reads each request whole and answers it."""

    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                body = await reader.readexactly(length)
                seen.append(body)
                answered = answer(body)
                if not answered:
                    writer.close()
                    return
                writer.write(answered)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client closed the connection

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await server.wait_closed()


def test_every_request_is_sent_and_only_those_after_the_warm_up_are_timed() -> None:
    seen: list[bytes] = []
    bodies = [b'[{"x": %d}]' % i for i in range(3)]

    async def run() -> tuple[int, float]:
        async with _server(_ok, seen) as port:
            timings, wall = await _load(port, "/predict/m", bodies, 50, 4, warmup=7)
        return len(timings), wall

    timed, wall = asyncio.run(run())
    assert timed == 50 and wall > 0
    assert len(seen) == 57 and set(seen) == set(bodies)


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (lambda body: b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy", "503"),
        (lambda body: b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n", "content-length"),
        (lambda body: b"", "closed a connection"),  # (the test server hangs up)
    ],
)
def test_an_answer_it_cannot_count_stops_the_profile_naming_it(answer: Answer, says: str) -> None:
    async def run() -> None:
        async with _server(answer, []) as port:
            await _load(port, "/predict/m", [b"[{}]"], 10, 2, warmup=0)

    with pytest.raises(ModelpilotError, match=says):
        asyncio.run(run())
