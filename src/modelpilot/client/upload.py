"""The client side of a resumable upload (``/api/v1/uploads/{sha256}``), for large files.

The file goes in chunks of ``chunk_bytes``, each a ``PUT …?offset=K`` whose body is streamed
from the file (never read whole). When a chunk is cut off (a dropped connection, the server
restarting, another request still holding the session) the client asks the server how many
bytes it holds and continues from there, not from byte 0; it gives up with ``Unavailable``
only when ``retry_for_s`` passes without the server taking a byte more. The last step asks the
server to verify the whole file's sha256 and store it as a blob.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from modelpilot.artifacts.base import CHUNK_BYTES
from modelpilot.client.transport import HttpService, decode_reply
from modelpilot.errors import Conflict, InvalidInput, NotFound, Unavailable

_API = "/api/v1/uploads"
# The server may re-read the whole file to hash it (after a restart lost its running hash):
# the completion's read timeout allows for that at a slow disk's pace.
_HASH_BYTES_PER_S = 50 * 2**20


def upload_in_chunks(
    service: HttpService, digest: str, path: Path, size_bytes: int, *, chunk_bytes: int
) -> None:
    """Upload ``path`` (whose sha256 is ``digest``) in chunks, resuming after interruptions."""
    url = f"{_API}/{digest}"
    state = service.call("POST", url, {"size_bytes": size_bytes}, idempotent=True)
    if state["stored"]:
        return
    offset = int(state["offset"])
    deadline, delay_s = time.monotonic() + service.retry_for_s, 0.05
    while offset < size_bytes:
        length = min(chunk_bytes, size_bytes - offset)
        try:
            offset = _send_chunk(service, url, path, offset, length)
        except (Unavailable, Conflict, NotFound):
            if time.monotonic() + delay_s > deadline:
                raise
            time.sleep(delay_s)  # backoff before asking a server that just failed us
            delay_s = min(delay_s * 2, 2.0)
            resumed = _server_offset(service, url, size_bytes)
            if resumed > offset:  # progress: the retry window starts again
                deadline, delay_s = time.monotonic() + service.retry_for_s, 0.05
            offset = resumed
        else:
            deadline, delay_s = time.monotonic() + service.retry_for_s, 0.05
    _complete(service, url, size_bytes)


def _send_chunk(service: HttpService, url: str, path: Path, offset: int, length: int) -> int:
    """PUT ``length`` bytes of the file from ``offset``; return the server's new offset.

    Not repeated blindly after a drop (the server may hold part of it): the caller asks."""
    headers = {"Content-Type": "application/octet-stream", "Content-Length": str(length)}

    def request() -> httpx.Response:
        body = _file_range(path, offset, length)
        return service.http.put(url, params={"offset": offset}, content=body, headers=headers)

    reply = service.send(request, f"PUT {url}?offset={offset}", idempotent=False)
    return int(_decoded(reply, service)["offset"])


def _server_offset(service: HttpService, url: str, size_bytes: int) -> int:
    """The bytes the server holds (a session gone, idle for a day, starts again at 0)."""
    try:
        state = service.call("GET", url, idempotent=True)
    except NotFound:
        state = service.call("POST", url, {"size_bytes": size_bytes}, idempotent=True)
    return int(state["offset"])


def _complete(service: HttpService, url: str, size_bytes: int) -> None:
    """Ask the server to verify and store the blob (repeatable: a stored blob answers 201)."""
    connect = service.http.timeout.connect
    read = (service.http.timeout.read or 30.0) + size_bytes / _HASH_BYTES_PER_S
    timeout = httpx.Timeout(connect, read=read)
    reply = service.send(
        lambda: service.http.post(f"{url}/complete", timeout=timeout),
        f"POST {url}/complete",
        idempotent=True,
    )
    _decoded(reply, service)


def _decoded(reply: httpx.Response, service: HttpService) -> dict[str, Any]:
    data = decode_reply(reply, service.base_url)
    if not isinstance(data, dict):
        raise Unavailable(f"modelpilot server at {service.base_url} answered {data!r}.")
    return data


def _file_range(path: Path, start: int, length: int) -> Iterator[bytes]:
    """``length`` bytes of the file from ``start``, 1 MiB at a time."""
    with path.open("rb") as handle:
        handle.seek(start)
        remaining = length
        while remaining:
            piece = handle.read(min(CHUNK_BYTES, remaining))
            if not piece:
                raise InvalidInput(
                    f"{path} became shorter while it was being uploaded (ended at byte "
                    f"{start + length - remaining:,}); upload it again once it is stable.",
                    field="path",
                )
            remaining -= len(piece)
            yield piece


__all__ = ["upload_in_chunks"]
