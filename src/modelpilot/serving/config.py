"""Server files: the models and deployments one server runs, with batching per model.

``modelpilot serve models.yaml``::

    models:
      - churn@champion              # batching from the command line's flags
      - ref: fraud/3
        max_batch_size: 16
        max_wait_ms: 2
      - ref: embeddings@prod
        batching: false             # one predict call per request
    deployments:
      - churn-prod

Every mistake is reported with the file, the entry, the key, what is accepted and what was
found; an unknown key suggests the nearest known one.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from modelpilot.errors import InvalidInput, shown
from modelpilot.serving.settings import ServingSettings

# key in the file -> (BatchingOptions field, accepted type, smallest value, description)
_KEYS: dict[str, tuple[str, type, float, str]] = {
    "batching": ("enabled", bool, 0, "true or false"),
    "max_batch_size": ("max_batch_size", int, 1, "a whole number >= 1"),
    "max_wait_ms": ("max_wait_ms", float, 0, "a number >= 0"),
    "queue_limit": ("queue_limit", int, 1, "a whole number >= 1"),
}


@dataclass(frozen=True)
class ServerFile:
    """What a server file asks for; ``batching`` maps model names to their overrides."""

    models: tuple[str, ...] = ()
    deployments: tuple[str, ...] = ()
    batching: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def read_server_file(path: Path) -> ServerFile:
    """Parse and check a server file."""
    if not path.is_file():
        raise InvalidInput(f"No server file at {path}.", field="targets")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path.name} is not valid YAML: {exc}", field="targets") from None
    return parse_server_file(data, path.name)


def parse_server_file(data: Any, where: str) -> ServerFile:
    """Check the parsed YAML of a server file.

    >>> f = parse_server_file({"models": ["a@prod", {"ref": "b/2", "max_wait_ms": 2}]}, "s.yaml")
    >>> f.models, dict(f.batching)
    (('a@prod', 'b/2'), {'b': {'max_wait_ms': 2.0}})
    >>> parse_server_file({"models": [{"ref": "b/2", "max_wait": 2}]}, "s.yaml")
    Traceback (most recent call last):
    modelpilot.errors.InvalidInput: s.yaml, models[0]: unknown key 'max_wait'. Did you mean 'max_wait_ms'? Known keys: ref, batching, max_batch_size, max_wait_ms, queue_limit.
    """  # noqa: E501
    if not isinstance(data, dict) or set(data) - {"models", "deployments"}:
        raise InvalidInput(
            f"{where}: expected a mapping with 'models' and/or 'deployments' lists; got "
            f"{shown(data)}.",
            field="targets",
        )
    models, batching = [], {}
    for index, entry in enumerate(_list(data, "models", where)):
        ref, overrides = _model_entry(entry, f"{where}, models[{index}]")
        models.append(ref)
        if overrides:
            batching[_model_name(ref)] = overrides
    deployments = tuple(str(d) for d in _list(data, "deployments", where))
    return ServerFile(tuple(models), deployments, batching)


def with_model_batching(
    settings: ServingSettings, overrides: Mapping[str, Mapping[str, Any]]
) -> ServingSettings:
    """Settings whose per-model batching applies ``overrides`` on top of the server-wide flags.

    >>> s = with_model_batching(ServingSettings(max_wait_ms=1), {"b": {"max_batch_size": 8}})
    >>> s.batching_for("b")
    BatchingOptions(enabled=True, max_batch_size=8, max_wait_ms=1, queue_limit=4096)
    """
    per_model = dict(settings.model_batching)
    for name, given in overrides.items():
        fields = {_KEYS[key][0]: value for key, value in given.items()}
        per_model[name] = dataclasses.replace(settings.batching_for(name), **fields)
    return dataclasses.replace(settings, model_batching=per_model)


def _list(data: dict[str, Any], key: str, where: str) -> list[Any]:
    value = data.get(key) or []
    if not isinstance(value, list):
        raise InvalidInput(f"{where}: '{key}' must be a list; got {shown(value)}.", field=key)
    return value


def _model_entry(entry: Any, where: str) -> tuple[str, dict[str, Any]]:
    if isinstance(entry, str):
        return entry, {}
    if not isinstance(entry, dict) or not isinstance(entry.get("ref"), str):
        raise InvalidInput(
            f"{where}: expected a model reference (churn@champion) or a mapping with 'ref' and "
            f"batching keys; got {shown(entry)}.",
            field="ref",
        )
    overrides = {}
    for key, value in entry.items():
        if key == "ref":
            continue
        if key not in _KEYS:
            close = difflib.get_close_matches(str(key), list(_KEYS), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise InvalidInput(
                f"{where}: unknown key {shown(key)}.{hint} Known keys: ref, {', '.join(_KEYS)}.",
                field=str(key),
            )
        overrides[key] = _checked(key, value, where)
    return entry["ref"], overrides


def _checked(key: str, value: Any, where: str) -> Any:
    _, kind, smallest, expected = _KEYS[key]
    is_bool = isinstance(value, bool)
    ok = (
        is_bool
        if kind is bool
        else (not is_bool and isinstance(value, int if kind is int else (int, float)))
        and value >= smallest
    )
    if not ok:
        raise InvalidInput(f"{where}: {key} must be {expected}; got {shown(value)}.", field=key)
    return float(value) if kind is float else value


def _model_name(ref: str) -> str:
    return re.split(r"[@/]", ref, maxsplit=1)[0]
