"""``/api/v1/uploads`` routes: resumable uploads of large blobs, chunk by chunk (editor).

``POST /uploads/{sha256}`` ``{"size_bytes": N}`` starts a session for the blob (or finds the
one in progress, or the stored blob), ``PUT /uploads/{sha256}?offset=K`` appends the raw body
at byte ``K`` (which must be the bytes held so far), ``GET`` says how many bytes the server
holds, ``POST /uploads/{sha256}/complete`` verifies the whole file's sha256 and renames it into
the blob folder, and ``DELETE`` discards a session. A chunk is streamed to disk as it arrives
(fsynced once, at completion); the bytes of a chunk cut off by a dropped connection are
kept, so the client continues from the offset ``GET`` reports. Partial files live in the blob
folder's temp area (:mod:`modelpilot.artifacts.upload`) and are never visible as blobs.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from modelpilot.artifacts import ResumableUploads, UploadState
from modelpilot.artifacts.base import check_digest
from modelpilot.errors import NotFound, PayloadTooLarge
from modelpilot.server.deps import Editor, UploadsDep, json_response

log = logging.getLogger("modelpilot.server")
router = APIRouter(prefix="/api/v1", tags=["artifacts"])
_API = "/api/v1/uploads"


class BeginUploadBody(BaseModel):
    size_bytes: int = Field(ge=0, description="The whole file's size in bytes.")


@router.post("/uploads/{sha256}")
def begin_upload(
    sha256: str, body: BeginUploadBody, request: Request, uploads: UploadsDep, _: Editor
) -> Response:
    """Start (201) or find (200) the upload of a blob; ``stored: true`` when the server has it."""
    check_digest(sha256)
    limit: int = request.app.state.max_upload_bytes
    if body.size_bytes > limit:
        raise PayloadTooLarge(
            f"Upload {sha256[:12]}… is larger than this server accepts: it declares "
            f"{body.size_bytes:,} bytes; the limit is {limit:,}. Raise "
            "MODELPILOT_MAX_UPLOAD_BYTES where the server runs, or store the data by reference.",
            field="size_bytes",
        )
    before = uploads.state(sha256)
    state = uploads.begin(sha256, body.size_bytes)
    return json_response(state.to_dict(), status_code=200 if before else 201)


@router.get("/uploads/{sha256}")
def get_upload(sha256: str, uploads: UploadsDep, _: Editor) -> Response:
    """How many bytes of the upload the server holds (``offset``): send the next chunk there."""
    return json_response(_state(uploads, sha256).to_dict())


@router.put("/uploads/{sha256}")
async def put_chunk(
    sha256: str,
    request: Request,
    uploads: UploadsDep,
    _: Editor,
    offset: int = Query(ge=0, description="Where this chunk starts: the bytes held so far."),
) -> Response:
    """Append the streamed body at ``offset``; answers the new offset."""
    check_digest(sha256)
    writer = await run_in_threadpool(uploads.open_chunk, sha256, offset)
    if writer is None:
        raise _no_upload(sha256)
    cut_off = False
    try:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and offset + int(declared) > writer.size_bytes:
            raise PayloadTooLarge(
                f"Chunk for upload {sha256[:12]}… runs past its declared size: offset "
                f"{offset:,} + {int(declared):,} bytes > {writer.size_bytes:,}. Send the rest of "
                "the file only.",
                field="body",
            )
        async for piece in request.stream():
            writer.write(piece)
    except ClientDisconnect:
        cut_off = True
    finally:
        state = await run_in_threadpool(writer.close)
    if cut_off:  # the bytes that arrived are kept: the client resumes from state.offset
        log.info("chunk of upload %s… cut off at byte %d; kept", sha256[:12], state.offset)
        return Response(status_code=400)
    return json_response(state.to_dict())


@router.post("/uploads/{sha256}/complete")
async def complete_upload(sha256: str, uploads: UploadsDep, _: Editor) -> Response:
    """Verify the whole file's sha256 and store it as a blob (201); repeating it is harmless."""
    state = await run_in_threadpool(uploads.complete, sha256)
    if state is None:
        raise _no_upload(sha256)
    return json_response(state.to_dict(), status_code=201)


@router.delete("/uploads/{sha256}")
def discard_upload(sha256: str, uploads: UploadsDep, _: Editor) -> Response:
    """Discard the upload's partial data (a stored blob is left alone)."""
    if not uploads.discard(sha256):
        raise _no_upload(sha256)
    return json_response({"digest": sha256, "discarded": True})


def _state(uploads: ResumableUploads, sha256: str) -> UploadState:
    state = uploads.state(sha256)
    if state is None:
        raise _no_upload(sha256)
    return state


def _no_upload(sha256: str) -> NotFound:
    return NotFound(
        f"No upload of {sha256[:12]}… is in progress and no such blob is stored (never begun, "
        f"discarded after a digest mismatch, or idle for a day). Start one with POST "
        f'{_API}/{sha256} {{"size_bytes": N}}.',
        field="sha256",
    )
