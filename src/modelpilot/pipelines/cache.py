"""The step cache's key: the step's code and the content of its inputs.

A step whose name, source code and input contents (dataset content hash, model package
digest, file hash, canonical JSON of values) are unchanged produces the key of an earlier
successful run, whose recorded output is reused instead of running the step again.

Only the step function's own source is hashed: a change in a helper it calls is not seen.
Give such a step ``cache=False``, or change the step (a comment will do) to force a rerun.

>>> from modelpilot.pipelines.values import ValueRef
>>> a = cache_key("train", "c0de", {"n": ValueRef(3), "w": ValueRef("30d")})
>>> a == cache_key("train", "c0de", {"w": ValueRef("30d"), "n": ValueRef(3)})
True
>>> a == cache_key("train", "c0de", {"n": ValueRef(4), "w": ValueRef("30d")})
False
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from modelpilot.pipelines.values import StepValue, canonical_json, content_key

# Bump when the key's recipe changes, so old entries are never matched by a new recipe.
_KEY_FORMAT = 1


def code_hash(fn: Callable[..., Any], name: str) -> str:
    """sha256 of the step's name, qualified name and source (bytecode when no source)."""
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):  # defined in a REPL or built at run time: no source file
        code = getattr(fn, "__code__", None)
        source = repr((code.co_code, code.co_consts)) if code is not None else repr(fn)
    text = canonical_json([name, getattr(fn, "__qualname__", ""), source])
    return hashlib.sha256(text.encode()).hexdigest()


def cache_key(step: str, code: str, inputs: Mapping[str, StepValue]) -> str:
    """sha256 over the step name, its code hash and each input's content key, by name."""
    recipe = {
        "format": _KEY_FORMAT,
        "step": step,
        "code": code,
        "inputs": {name: content_key(ref) for name, ref in inputs.items()},
    }
    return hashlib.sha256(canonical_json(recipe).encode()).hexdigest()


__all__ = ["cache_key", "code_hash"]
