"""Packages written by hand, the way an attacker who can write to the artifact store would.

Each helper stores real bytes in an artifact store and returns the package digest; nothing
here goes through ``build_package``, so nothing here is vouched for by the saving side.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from modelpilot.artifacts import ArtifactStore
from modelpilot.models import build_package


def double(batch: Any) -> Any:
    """A python_function model: twice each input (importable as ``crafted_packages:double``)."""
    return np.asarray(batch, dtype=float).sum(axis=1) * 2


def frame() -> pd.DataFrame:
    """Three numeric columns, enough to fit a small classifier."""
    rng = np.random.default_rng(0)
    return pd.DataFrame(rng.normal(size=(40, 3)), columns=["age", "income", "calls"])


def genuine_manifest(artifacts: ArtifactStore) -> dict[str, Any]:
    """The manifest ``build_package`` writes for a real model (to copy a signature from)."""
    x = frame()
    model = LogisticRegression().fit(x, (x["age"] > 0).astype(int))
    return dict(build_package(model, artifacts, input_example=x.head()).manifest)


def skops_calling(command: str) -> bytes:
    """A skops file whose root object is ``posix.system(command)``: loading it runs it."""
    argument = {
        "__class__": "str",
        "__module__": "builtins",
        "__loader__": "JsonNode",
        "content": json.dumps(command),
        "is_json": True,
        "__id__": 2,
    }
    schema = {
        "__class__": "system",
        "__module__": "posix",
        "__loader__": "ConstructorFromReduceNode",
        "content": {
            "__class__": "tuple",
            "__module__": "builtins",
            "__loader__": "TupleNode",
            "content": [argument],
            "__id__": 1,
        },
        "__id__": 0,
        "protocol": 2,
        "_skops_version": "0.16.0",
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("schema.json", json.dumps(schema))
    return buffer.getvalue()


def store_package(
    artifacts: ArtifactStore,
    *,
    flavor: str,
    flavor_meta: dict[str, Any],
    files: dict[str, bytes],
) -> str:
    """Store ``files`` and a manifest naming them (with a genuine signature); its digest."""
    manifest = genuine_manifest(artifacts)
    manifest.update(
        flavor=flavor,
        flavor_meta=flavor_meta,
        files={name: artifacts.put_bytes(data) for name, data in files.items()},
    )
    return artifacts.put_bytes(json.dumps(manifest, sort_keys=True).encode())
