"""Model references: ``churn@champion``, ``churn/3``, ``churn`` (newest), ``models:/churn/3``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelpilot.errors import InvalidInput, shown

_NAME = r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,255}"
# Used with fullmatch only: a pattern ending in '$' also accepts a trailing newline.
_REF = re.compile(
    rf"(?:models:/)?(?P<name>{_NAME})(?:@(?P<alias>[A-Za-z][A-Za-z0-9_\-]{{0,127}})|/(?P<version>[0-9]+))?"
)
NAME_RE = re.compile(_NAME)
ALIAS_RE = re.compile(r"[A-Za-z][A-Za-z0-9_\-]{0,127}")


@dataclass(frozen=True)
class ModelRef:
    """A parsed reference: exactly one of ``alias``/``version`` or neither (newest)."""

    name: str
    alias: str | None = None
    version: int | None = None

    def __str__(self) -> str:
        if self.alias:
            return f"{self.name}@{self.alias}"
        return f"{self.name}/{self.version}" if self.version is not None else self.name


def parse_ref(text: str) -> ModelRef:
    """Parse a model reference.

    >>> parse_ref("churn@champion")
    ModelRef(name='churn', alias='champion', version=None)
    >>> parse_ref("models:/churn/3").version
    3
    >>> parse_ref("churn/x")
    Traceback (most recent call last):
    modelpilot.errors.InvalidInput: Invalid model reference 'churn/x': expected 'name', 'name/<version number>' or 'name@<alias>', e.g. 'churn/3' or 'churn@champion'.
    """  # noqa: E501
    match = _REF.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise InvalidInput(
            f"Invalid model reference {shown(text)}: expected 'name', 'name/<version number>' "
            "or 'name@<alias>', e.g. 'churn/3' or 'churn@champion'.",
            field="model",
        )
    version = match.group("version")
    return ModelRef(
        match.group("name"), match.group("alias"), None if version is None else int(version)
    )


def check_model_name(name: str) -> str:
    """A registered model name: letters, digits, '_', '-', '.'; starts with a letter or digit."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise InvalidInput(
            f"Invalid model name {shown(name)}: use letters, digits, '_', '-' and '.', starting "
            "with a letter or digit (at most 256 characters).",
            field="name",
        )
    return name


def check_alias(alias: str) -> str:
    """An alias: a letter then letters, digits, '_' or '-' (so it never looks like a version)."""
    if not isinstance(alias, str) or not ALIAS_RE.fullmatch(alias):
        raise InvalidInput(
            f"Invalid alias {shown(alias)}: start with a letter, then letters, digits, '_' or "
            "'-' (e.g. champion, challenger).",
            field="alias",
        )
    return alias
