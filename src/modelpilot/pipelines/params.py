"""Pipeline parameters: ``--param key=value`` text read by the pipeline's signature.

Each value is read by its parameter's annotation: ``int``, ``float``, ``bool``
(true/false/yes/no/1/0), ``str``, ``Path``, ``list``/``dict`` (JSON), and ``DatasetVersion``
or ``pd.DataFrame`` (a dataset reference such as ``churn-train`` or ``churn-train@1a2b3c``,
resolved to a version when the run starts). An unannotated parameter takes JSON when the
text is JSON (``3``, ``true``, ``[1, 2]``) and the text itself otherwise (``30d``).

>>> parse_assignments(["window=30d", "expr=a=b"])
{'window': '30d', 'expr': 'a=b'}
>>> coerce("n", "3", int, "p"), coerce("w", "30d", None, "p"), coerce("f", "no", bool, "p")
(3, '30d', False)
"""

from __future__ import annotations

import inspect
import json
import math
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from modelpilot.data import DatasetVersion
from modelpilot.data.protocol import DatasetService
from modelpilot.errors import InvalidInput, shown
from modelpilot.pipelines.graph import PipelineDef
from modelpilot.pipelines.values import check_json, parameter_hints, wants

_TRUE = frozenset({"true", "yes", "1", "on"})
_FALSE = frozenset({"false", "no", "0", "off"})
_TEXT_HINTS: dict[str, object] = {
    "int": int,
    "float": float,
    "bool": bool,
    "str": str,
    "Path": Path,
    "pathlib.Path": Path,
    "list": list,
    "dict": dict,
}


def parse_assignments(items: Sequence[str]) -> dict[str, str]:
    """``["k=v", ...]`` as a dict; the first ``=`` splits, a key given twice is an error."""
    found: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise InvalidInput(
                f"--param {shown(item)}: expected NAME=VALUE with NAME a Python identifier, "
                "e.g. --param window=30d.",
                field="param",
            )
        if key in found:
            raise InvalidInput(
                f"--param {key} is given twice ({shown(found[key])} and {shown(value)}); give "
                "each parameter once.",
                field=key,
            )
        found[key] = value
    return found


def coerce(name: str, text: str, hint: object, pipeline: str) -> object:
    """The value of ``text`` for a parameter annotated ``hint`` (None: not annotated)."""
    hint = _TEXT_HINTS.get(hint, hint) if isinstance(hint, str) else hint
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if text.strip().lower() in ("none", "null"):
            return None
        hint = options[0] if len(options) == 1 else None
        origin = typing.get_origin(hint)
    where = f"Param {name!r} of pipeline {pipeline!r}"
    if hint is bool:
        lowered = text.strip().lower()
        if lowered in _TRUE | _FALSE:
            return lowered in _TRUE
        raise InvalidInput(f"{where} expects a bool (true/false); got {shown(text)}.", field=name)
    if hint in (int, float):
        return _number(text, hint, where, name)
    if hint is Path:
        return Path(text)
    if hint is str or wants(hint, DatasetVersion) or wants(hint, pd.DataFrame):
        return text
    if hint in (list, dict) or origin in (list, dict):
        return _json_of(text, (origin or hint), where, name)
    try:  # not annotated (or annotated with something else): JSON when it reads as JSON
        return check_json(json.loads(text), where)
    except (ValueError, InvalidInput):
        return text


def _number(text: str, kind: object, where: str, name: str) -> object:
    try:
        value: float = int(text) if kind is int else float(text)
    except ValueError:
        raise InvalidInput(
            f"{where} expects {'an int' if kind is int else 'a float'}; got {shown(text)}.",
            field=name,
        ) from None
    if not math.isfinite(value):
        raise InvalidInput(f"{where} must be finite; got {shown(text)}.", field=name)
    return value


def _json_of(text: str, kind: object, where: str, name: str) -> object:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, kind if isinstance(kind, type) else object):
        label = getattr(kind, "__name__", str(kind))
        raise InvalidInput(
            f"{where} expects a JSON {label}; got {shown(text)} (e.g. --param {name}='[1, 2]').",
            field=name,
        )
    return check_json(value, where)


def hints_of(definition: PipelineDef) -> dict[str, object]:
    """Each pipeline parameter's annotation (for ``Pipeline``, the first step naming it)."""
    source = definition.hints_source
    functions: Sequence[Callable[..., Any]] = [source] if callable(source) else source
    hints: dict[str, object] = {}
    for fn in functions:
        for key, hint in parameter_hints(fn).items():
            hints.setdefault(key, hint)
    return hints


def params_from_text(definition: PipelineDef, items: Sequence[str]) -> dict[str, object]:
    """``--param`` items read by the pipeline's annotations and checked against its
    signature."""
    hints = hints_of(definition)
    given = {
        key: coerce(key, text, hints.get(key), definition.name)
        for key, text in parse_assignments(items).items()
    }
    return bind_params(definition, given)


def bind_params(definition: PipelineDef, given: Mapping[str, object]) -> dict[str, object]:
    """Every parameter of the pipeline: the given ones, then the defaults. Unknown and missing
    names are errors listing what the pipeline takes."""
    signature = definition.signature
    accepted = [
        p for p in signature.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    names = [p.name for p in accepted]
    takes = ", ".join(_describe(p) for p in accepted) or "no parameters"
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise InvalidInput(
            f"Unknown param {', '.join(map(repr, unknown))} for pipeline {definition.name!r}; "
            f"it takes: {takes}.",
            field=unknown[0],
        )
    bound: dict[str, object] = {}
    for p in accepted:
        if p.name in given:
            bound[p.name] = given[p.name]
        elif p.default is not inspect.Parameter.empty:
            bound[p.name] = p.default
        else:
            raise InvalidInput(
                f"Missing param {p.name!r} for pipeline {definition.name!r}: give it with "
                f"--param {p.name}=VALUE (it takes: {takes}).",
                field=p.name,
            )
    return bound


def _describe(p: inspect.Parameter) -> str:
    return p.name if p.default is inspect.Parameter.empty else f"{p.name}={p.default!r}"


def resolve_params(
    definition: PipelineDef, params: Mapping[str, object], datasets: DatasetService
) -> dict[str, object]:
    """Dataset references given as text, for parameters annotated ``DatasetVersion`` or
    ``pd.DataFrame``, become the dataset versions they name now."""
    hints = hints_of(definition)
    resolved = dict(params)
    for key, value in params.items():
        hint = hints.get(key)
        if isinstance(value, str) and (wants(hint, DatasetVersion) or wants(hint, pd.DataFrame)):
            resolved[key] = datasets.get_dataset(value)
    return resolved


__all__ = [
    "bind_params",
    "coerce",
    "hints_of",
    "params_from_text",
    "parse_assignments",
    "resolve_params",
]
