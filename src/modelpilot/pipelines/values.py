"""What flows between steps: datasets, model versions, files and JSON values, as stored refs.

A step's inputs and output are kept in the store as small JSON references (never the bytes):
a dataset version by name and content hash, a model version by name, number and package
digest, a file by path and content hash, a JSON value by itself. Each reference has a content
key, which is what the step cache compares (:mod:`modelpilot.pipelines.cache`).

>>> key = content_key(ValueRef({"b": 1, "a": [1.5, "x"]}))
>>> key == content_key(ValueRef({"a": [1.5, "x"], "b": 1}))
True
>>> content_key(DatasetRef("churn-train", "ab12"))
'dataset:ab12'
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from modelpilot.data import DatasetVersion
from modelpilot.data.protocol import DatasetService
from modelpilot.errors import InvalidInput, shown
from modelpilot.registry import ModelVersion
from modelpilot.registry.protocol import RegistryService

# How deep a JSON value may nest: deeper values are refused rather than recursed into.
_MAX_JSON_DEPTH = 64
_SUMMARY_CHARS = 200
ACCEPTED = (
    "a pandas DataFrame, a DatasetVersion (mp.log_dataset), a ModelVersion (mp.log_model), "
    "or a JSON value (None, bool, int, float, str, list, dict with str keys)"
)


@dataclass(frozen=True)
class DatasetRef:
    """A dataset version: its name and content hash."""

    name: str
    digest: str


@dataclass(frozen=True)
class ModelRef:
    """A registered model version and the digest of its package."""

    name: str
    version: int
    digest: str


@dataclass(frozen=True)
class FileRef:
    """A file given as a ``Path``: where it was and the hash of its bytes then."""

    path: str
    digest: str


@dataclass(frozen=True)
class ValueRef:
    """A JSON value (checked: finite floats, str keys, at most 64 levels deep)."""

    value: Any


StepValue = DatasetRef | ModelRef | FileRef | ValueRef


def check_json(value: object, where: str, _depth: int = 0) -> object:
    """``value`` as plain JSON (tuples become lists); InvalidInput naming ``where`` if it is not.

    >>> check_json((1, {"a": None}), "x")
    [1, {'a': None}]
    >>> check_json({1: 2}, "step 'f' argument 'n'")
    Traceback (most recent call last):
    modelpilot.errors.InvalidInput: step 'f' argument 'n': dict keys must be str; got 1.
    """
    if _depth > _MAX_JSON_DEPTH:
        raise InvalidInput(f"{where}: nested deeper than {_MAX_JSON_DEPTH} levels.", field=where)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(f"{where}: floats must be finite; got {value}.", field=where)
        return value
    if isinstance(value, (list, tuple)):
        return [check_json(v, where, _depth + 1) for v in value]
    if isinstance(value, Mapping):
        out: dict[str, object] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInput(
                    f"{where}: dict keys must be str; got {shown(key)}.", field=where
                )
            out[key] = check_json(item, where, _depth + 1)
        return out
    raise InvalidInput(f"{where}: {type(value).__name__} is not a JSON value.", field=where)


def canonical_json(value: object) -> str:
    """One text per JSON value: sorted keys, no spaces, UTF-8 kept (the cache compares it).

    >>> canonical_json({"b": [1, 2.5], "a": "é"})
    '{"a":"é","b":[1,2.5]}'
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_key(ref: StepValue) -> str:
    """What the step cache compares: the content, never where or when it was made."""
    if isinstance(ref, DatasetRef):
        return f"dataset:{ref.digest}"
    if isinstance(ref, ModelRef):
        return f"model:{ref.digest}"
    if isinstance(ref, FileRef):
        return f"file:{ref.digest}"
    return "value:" + hashlib.sha256(canonical_json(ref.value).encode()).hexdigest()


def to_json(ref: StepValue) -> dict[str, Any]:
    """The stored form of a reference."""
    if isinstance(ref, DatasetRef):
        return {"kind": "dataset", "name": ref.name, "digest": ref.digest}
    if isinstance(ref, ModelRef):
        return {"kind": "model", "name": ref.name, "version": ref.version, "digest": ref.digest}
    if isinstance(ref, FileRef):
        return {"kind": "file", "path": ref.path, "digest": ref.digest}
    return {"kind": "value", "value": ref.value}


def from_json(data: Mapping[str, Any]) -> StepValue:
    """A reference from its stored form."""
    kind = data.get("kind")
    if kind == "dataset":
        return DatasetRef(str(data["name"]), str(data["digest"]))
    if kind == "model":
        return ModelRef(str(data["name"]), int(data["version"]), str(data["digest"]))
    if kind == "file":
        return FileRef(str(data["path"]), str(data["digest"]))
    if kind == "value":
        return ValueRef(data["value"])
    raise InvalidInput(f"Unknown step value kind {shown(kind)} in a stored reference.")


def summary(ref: StepValue) -> str:
    """One line for a run param: ``churn-train@1a2b3c4d5e6f``, ``churn/3``, ``0.5``."""
    if isinstance(ref, DatasetRef):
        return f"dataset {ref.name}@{ref.digest[:12]}"
    if isinstance(ref, ModelRef):
        return f"model {ref.name}/{ref.version}"
    if isinstance(ref, FileRef):
        return f"file {ref.path} (sha256 {ref.digest[:12]})"
    text = canonical_json(ref.value)
    return text if len(text) <= _SUMMARY_CHARS else text[:_SUMMARY_CHARS] + "…"


def file_digest(path: Path, where: str) -> str:
    """The sha256 of a file's bytes (a folder or a missing file is an InvalidInput)."""
    if not path.is_file():
        raise InvalidInput(
            f"{where}: no file at {path} (a Path input must name a file; give folders as "
            "datasets or as a str).",
            field=where,
        )
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_constant(value: object, where: str) -> None:
    """Refuse, while tracing, an argument no step could receive."""
    if isinstance(value, (DatasetVersion, ModelVersion, Path, pd.DataFrame)):
        return
    try:
        check_json(value, where)
    except InvalidInput as exc:
        raise InvalidInput(
            f"{exc.message} A step input is {ACCEPTED}, a Path to a file, or another step's "
            "output.",
            field=where,
        ) from exc


def input_ref(value: object, where: str, *, datasets: DatasetService, frame_name: str) -> StepValue:
    """The reference for a constant argument (a pipeline param or a literal); a DataFrame is
    logged as a dataset version called ``frame_name`` first."""
    if isinstance(value, DatasetVersion):
        return DatasetRef(value.name, value.digest)
    if isinstance(value, ModelVersion):
        return ModelRef(value.name, value.version, value.package_digest)
    if isinstance(value, pd.DataFrame):
        logged = datasets.log_dataset(value, frame_name)
        return DatasetRef(logged.name, logged.digest)
    if isinstance(value, Path):
        return FileRef(str(value.resolve()), file_digest(value, where))
    check_constant(value, where)
    return ValueRef(check_json(value, where))


def output_ref(
    value: object, step: str, *, datasets: DatasetService, dataset_name: str
) -> StepValue:
    """The reference for what a step returned; a DataFrame is logged as ``dataset_name``."""
    if isinstance(value, pd.DataFrame):
        logged = datasets.log_dataset(value, dataset_name)
        return DatasetRef(logged.name, logged.digest)
    if isinstance(value, DatasetVersion):
        return DatasetRef(value.name, value.digest)
    if isinstance(value, ModelVersion):
        return ModelRef(value.name, value.version, value.package_digest)
    try:
        return ValueRef(check_json(value, f"step {step!r} output"))
    except InvalidInput as exc:
        raise InvalidInput(
            f"Step {step!r} returned {_type_name(value)}: a step returns {ACCEPTED}. "
            f"({exc.message}) A trained model is returned as the ModelVersion of "
            "mp.log_model(model, name=...).",
            field=step,
        ) from exc


def _type_name(value: object) -> str:
    kind = type(value)
    return f"a {kind.__module__}.{kind.__qualname__}".replace("a builtins.", "a ")


def wants(annotation: object, cls: type) -> bool:
    """True when a parameter annotation names ``cls`` (the class or, with postponed
    annotations, its name as text, ``mp.DatasetVersion`` included)."""
    if annotation is cls:
        return True
    if isinstance(annotation, str):
        return annotation.rsplit(".", 1)[-1] == cls.__name__
    return False


def parameter_hints(fn: Callable[..., Any]) -> dict[str, object]:
    """Each parameter's annotation, resolved when possible, else as written."""
    try:
        hints: dict[str, object] = typing.get_type_hints(fn)
    except Exception:  # unresolvable postponed annotations: fall back to their text
        hints = {}
    for name, param in inspect.signature(fn).parameters.items():
        if name not in hints and param.annotation is not inspect.Parameter.empty:
            hints[name] = param.annotation
    return hints


def materialize(
    ref: StepValue,
    annotation: object,
    *,
    datasets: DatasetService,
    registry: RegistryService,
) -> object:
    """The Python value a step receives for a reference: a DataFrame (a DatasetVersion when
    the parameter is annotated so), a ModelVersion, a Path or the JSON value."""
    if isinstance(ref, DatasetRef):
        version = datasets.get_dataset(f"{ref.name}@{ref.digest}")
        if wants(annotation, DatasetVersion):
            return version
        return datasets.load_dataset(version.ref)
    if isinstance(ref, ModelRef):
        return registry.get_version(f"{ref.name}/{ref.version}")
    if isinstance(ref, FileRef):
        return Path(ref.path)
    return ref.value


__all__ = [
    "ACCEPTED",
    "DatasetRef",
    "FileRef",
    "ModelRef",
    "StepValue",
    "ValueRef",
    "canonical_json",
    "check_constant",
    "check_json",
    "content_key",
    "file_digest",
    "from_json",
    "input_ref",
    "materialize",
    "output_ref",
    "parameter_hints",
    "summary",
    "to_json",
    "wants",
]
