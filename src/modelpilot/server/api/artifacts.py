"""``/api/v1/artifacts`` routes: blobs by sha256, streamed in both directions, and run artifacts.

An upload (``PUT /artifacts/{sha256}``, editor) is read chunk by chunk from the request body
into a temporary file in the blob folder while it is hashed; only a complete body whose
sha256 equals the URL's is fsynced and renamed into place. A wrong digest is 422, a body over
``max_upload_bytes`` 413 (from ``Content-Length`` before anything is read, or while
counting), and a client that disconnects half-way leaves neither a blob nor a temp file.
Downloads stream the file in 1 MiB chunks; the client verifies the hash as it writes.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from modelpilot.artifacts import StagedArtifactStore
from modelpilot.artifacts.base import CHUNK_BYTES, check_digest
from modelpilot.errors import InvalidInput, NotFound, PayloadTooLarge
from modelpilot.server.deps import ArtifactsDep, Editor, StoreDep, Viewer, json_response
from modelpilot.tracking import service

log = logging.getLogger("modelpilot.server")
router = APIRouter(prefix="/api/v1", tags=["artifacts"])


class RunArtifactBody(BaseModel):
    path: str
    digest: str


@router.head("/artifacts/{sha256}")
def has_artifact(sha256: str, artifacts: ArtifactsDep, _: Viewer) -> Response:
    """200 with the size when the blob is stored, 404 otherwise (no body either way)."""
    size = artifacts.size_of(check_digest(sha256))
    if size is None:
        return Response(status_code=404)
    return Response(headers={"Content-Length": str(size)})


@router.get("/artifacts/{sha256}")
def get_artifact(sha256: str, artifacts: ArtifactsDep, _: Viewer) -> Response:
    """The blob's bytes, streamed (verify them against the digest as they arrive)."""
    path = stored_blob(artifacts, sha256)
    return StreamingResponse(
        blob_chunks(path),
        media_type="application/octet-stream",
        headers={"Content-Length": str(path.stat().st_size)},
    )


@router.put("/artifacts/{sha256}")
async def put_artifact(
    sha256: str, request: Request, artifacts: ArtifactsDep, _: Editor
) -> Response:
    """Store the streamed body under its sha256 (idempotent: the same bytes again are a no-op)."""
    check_digest(sha256)
    limit: int = request.app.state.max_upload_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(sha256, int(declared), limit)
    fd, tmp = artifacts.open_upload()
    try:
        size, actual = await _receive(request, fd, limit, sha256)
        if actual != sha256:
            raise InvalidInput(
                f"Upload to /api/v1/artifacts/{sha256[:12]}…: the body's sha256 is "
                f"{actual[:12]}…, not the digest in the URL. Nothing was stored; upload the "
                "file again (it may have changed while it was being sent).",
                field="sha256",
            )
        await run_in_threadpool(artifacts.adopt, tmp, sha256)
    except ClientDisconnect:
        log.info("upload of %s… abandoned by the client; nothing stored", sha256[:12])
        return Response(status_code=400)
    finally:
        tmp.unlink(missing_ok=True)  # gone already when adopted
    return json_response({"digest": sha256, "size_bytes": size}, status_code=201)


@router.post("/runs/{run_id}/artifacts")
def record_run_artifact(
    run_id: str, body: RunArtifactBody, store: StoreDep, artifacts: ArtifactsDep, _: Editor
) -> Response:
    """Record an uploaded blob as artifact ``path`` of a run (re-recording replaces it)."""
    size = artifacts.size_of(check_digest(body.digest))
    if size is None:
        raise _not_here(body.digest)
    service.record_artifact(store, run_id, body.path, body.digest, size)
    return json_response({"path": body.path, "digest": body.digest, "size_bytes": size})


async def _receive(request: Request, fd: int, limit: int, sha256: str) -> tuple[int, str]:
    """Write the body to ``fd`` as it arrives, hashing and counting; fsync at the end."""
    hasher = hashlib.sha256()
    size = 0
    with os.fdopen(fd, "wb") as out:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(sha256, size, limit)
            hasher.update(chunk)
            out.write(chunk)
        out.flush()
        await run_in_threadpool(os.fsync, out.fileno())
    return size, hasher.hexdigest()


def _too_large(sha256: str, size: int, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"Upload to /api/v1/artifacts/{sha256[:12]}… is larger than this server accepts: "
        f"{size:,} bytes or more; the limit is {limit:,}. Raise MODELPILOT_MAX_UPLOAD_BYTES "
        "where the server runs, or store the data by reference.",
        field="body",
    )


def stored_blob(artifacts: StagedArtifactStore, digest: str) -> Path:
    """A verified local file of the blob (an S3 store's cache copy, fetched if need be)."""
    try:
        return artifacts.local_path(check_digest(digest))
    except NotFound as exc:
        raise _not_here(digest) from exc


def _not_here(digest: str) -> NotFound:
    return NotFound(
        f"No artifact with digest {digest[:12]}… on this server. Upload it first "
        f"(PUT /api/v1/artifacts/{digest}).",
        field="digest",
    )


def blob_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk
