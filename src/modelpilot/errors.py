"""One exception tree for the whole project.

Every error knows the HTTP status the REST API answers with and the exit code the CLI
returns, so each entry point maps errors the same way. Messages follow the house pattern:
what was wrong, where, what was expected, what arrived, and how to fix it.

>>> err = NotFound("No model named 'churn'.")
>>> (err.http_status, err.exit_code)
(404, 3)
"""

from __future__ import annotations

import math
import reprlib
from typing import ClassVar

_MAX_SHOWN_CHARS = 80
# Received values can be hostile: a list nested 1,000 deep makes repr() raise RecursionError,
# and a million-element list makes it slow. reprlib stops at a few levels and items.
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict, _REPR.maxset = 3, 8, 8, 8, 8
_REPR.maxstring = _REPR.maxlong = _REPR.maxother = _MAX_SHOWN_CHARS


class ModelpilotError(Exception):
    """Base of every error modelpilot raises on purpose."""

    http_status: ClassVar[int] = 500
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, object]:
        """The REST error body: ``{"error": {"type", "message", "field"}}``."""
        return {
            "error": {"type": type(self).__name__, "message": self.message, "field": self.field}
        }


class InvalidInput(ModelpilotError):
    """A value from the caller (body, CLI flag, config, SDK argument) is not acceptable."""

    http_status = 422
    exit_code = 2


class PayloadTooLarge(InvalidInput):
    """A request body is larger than the configured limit."""

    http_status = 413


class MalformedRequest(InvalidInput):
    """A request body cannot be parsed at all (not JSON, wrong top-level shape)."""

    http_status = 400


class NotFound(ModelpilotError):
    """The named thing (run, model, version, alias, dataset, artifact) does not exist."""

    http_status = 404
    exit_code = 3


class Conflict(ModelpilotError):
    """The request contradicts the stored state (a param re-logged, a version in use)."""

    http_status = 409
    exit_code = 4


class Unauthorized(ModelpilotError):
    """No valid credentials were presented."""

    http_status = 401
    exit_code = 5


class Forbidden(ModelpilotError):
    """The credentials are valid but the role does not allow the action."""

    http_status = 403
    exit_code = 5


class Unavailable(ModelpilotError):
    """A dependency is temporarily unable to serve (queue full, store down)."""

    http_status = 503
    exit_code = 6


class UnsafeModel(ModelpilotError):
    """Loading the model would execute untrusted code; the caller must opt in explicitly."""

    http_status = 422
    exit_code = 2


class ModelFailed(ModelpilotError):
    """The model's own code raised while predicting (a request's 500 with its request id; a
    scoring job's failure naming the file rows). Exit code 1: neither the input's fault for
    certain nor ours."""


class CorruptArtifact(ModelpilotError):
    """Stored bytes no longer match their content hash."""

    http_status = 500
    exit_code = 7


class PipelineFailed(ModelpilotError):
    """A pipeline ran and one of its steps failed: the message names the step, its error and
    the end of its log; the pipeline run is recorded as FAILED.

    Exit code 11 so a scheduled ``modelpilot pipelines run`` can tell a failed step from bad
    input (2) or an unexpected error (1).
    """

    http_status = 500
    exit_code = 11

    def __init__(self, message: str, *, pipeline_run_id: str, step: str) -> None:
        super().__init__(message, field=step)
        self.pipeline_run_id = pipeline_run_id
        self.step = step


class AuditChainBroken(ModelpilotError):
    """The audit log's hash chain does not verify: an entry was edited, deleted or moved.

    Exit code 10 so a scheduled ``modelpilot audit verify`` can tell tampering from an
    ordinary failure.
    """

    http_status = 500
    exit_code = 10


def shown(value: object, limit: int = _MAX_SHOWN_CHARS) -> str:
    """Render a received value for an error message, truncated so messages stay one line.

    >>> shown("x" * 100, limit=10)
    "'xxxxxxxxxx…'"
    >>> shown([[[[[1]]]]])
    '[[[[...]]]]'
    >>> shown(float("nan")), shown(None)
    ('a missing value', 'a missing value (null)')
    """
    if isinstance(value, str):
        return repr(value if len(value) <= limit else value[:limit] + "…")
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        value = value.item()  # np.float64(1.5) reads as 1.5
    if isinstance(value, float) and math.isnan(value):
        return "a missing value"
    if value is None:  # JSON's null, or an empty cell of a column with no other value
        return "a missing value (null)"
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def said(exc: BaseException) -> str:
    """One line for an error a loop reports and survives: a modelpilot error's message, any
    other exception with its type (a bare ``KeyError('x')`` says little without it).

    >>> said(NotFound("No model 'x'.")), said(KeyError("x"))
    ("No model 'x'.", "KeyError: 'x'")
    """
    return exc.message if isinstance(exc, ModelpilotError) else f"{type(exc).__name__}: {exc}"
