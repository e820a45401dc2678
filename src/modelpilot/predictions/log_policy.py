"""What the prediction log may keep of each input: keep, hash, redact or drop, per column.

A policy belongs to a model (every request it serves) or to a deployment (the requests
routed through it; its columns override the model's, the rest inherit). It is applied when a
batch reaches :meth:`PredictionLog.append`, before anything is written (the write-ahead file
included), so a raw value of a hashed, redacted or dropped column never reaches a file.

* ``hash``: HMAC-SHA256 (keyed, so nobody without the key can test guesses such as every
  phone number) of the value's canonical text, hex, truncated to :data:`HASH_HEX_CHARS`
  (128 bits: collisions are negligible below ~10^18 distinct values). Equal inputs give equal
  hashes, so joins and group-bys still work; one key per prediction folder keeps hashes
  comparable across servers and restarts.
* ``redact``: the value becomes :data:`REDACTED` (nulls stay null): a value was there.
* ``drop``: the column is not logged at all.

Request ids are never touched, so labels keep joining on them.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from modelpilot.predictions.batch import LogBatch

Action = Literal["keep", "hash", "redact", "drop"]
ACTIONS: tuple[Action, ...] = ("keep", "hash", "redact", "drop")
HASH_HEX_CHARS = 32
REDACTED = "[redacted]"
KEY_FILE = "predlog-hash.key"


class LogPolicy(BaseModel):
    """One model's or deployment's logging policy (stored as JSON with its schema version).

    >>> LogPolicy(columns={"email": "hash"}, retention_days=30).action("email")
    'hash'
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = 1
    columns: dict[str, Action] = Field(default_factory=dict)
    retention_days: int | None = Field(default=None, ge=1)

    def action(self, column: str) -> Action:
        """What happens to one input column (``keep`` unless the policy says otherwise)."""
        return self.columns.get(column, "keep")

    def merged(self, override: LogPolicy) -> LogPolicy:
        """This policy with ``override``'s columns (and retention, if set) on top.

        >>> base = LogPolicy(columns={"email": "hash", "name": "drop"}, retention_days=90)
        >>> base.merged(LogPolicy(columns={"email": "drop"})).columns
        {'email': 'drop', 'name': 'drop'}
        """
        return LogPolicy(
            columns={**self.columns, **override.columns},
            retention_days=override.retention_days or self.retention_days,
        )

    @property
    def is_noop(self) -> bool:
        """True when it changes nothing in a logged row."""
        return all(a == "keep" for a in self.columns.values())


@dataclass(frozen=True)
class PolicySet:
    """The policies a server applies, by model and by deployment name (an immutable snapshot:
    a change swaps in a new set, batches in flight keep the one they started with)."""

    models: Mapping[str, LogPolicy] = field(default_factory=dict)
    deployments: Mapping[str, LogPolicy] = field(default_factory=dict)

    def effective(self, model: str, deployment: str | None) -> LogPolicy | None:
        """The model's policy, overridden by the deployment's; None when neither has one.

        >>> s = PolicySet({"churn": LogPolicy(columns={"email": "hash"})},
        ...               {"prod": LogPolicy(columns={"email": "drop"})})
        >>> s.effective("churn", "prod").action("email"), s.effective("churn", None).action("email")
        ('drop', 'hash')
        """
        base = self.models.get(model)
        override = self.deployments.get(deployment) if deployment is not None else None
        if override is None:
            return base
        return override if base is None else base.merged(override)

    def __bool__(self) -> bool:
        return bool(self.models) or bool(self.deployments)


@dataclass(frozen=True)
class LogPrivacy:
    """Applies a :class:`PolicySet` to log batches with one hashing key."""

    key: bytes
    policies: PolicySet = field(default_factory=PolicySet)

    def apply(self, batch: LogBatch) -> list[LogBatch]:
        """The batch as it may be logged: usually one batch, one per deployment when its rows
        came through deployments with different policies (rare: a batch is one model's)."""
        if not self.policies:
            return [batch]
        deployments = batch.columns.get("deployment")
        names = set(deployments) if deployments is not None else {None}
        if len(names) == 1 or not self.policies.deployments:
            policy = self.policies.effective(batch.model, next(iter(names)))
            return [self._applied(batch, policy)]
        return [
            self._applied(part, self.policies.effective(batch.model, name))
            for name, part in _split(batch, deployments).items()
        ]

    def _applied(self, batch: LogBatch, policy: LogPolicy | None) -> LogBatch:
        if policy is None or policy.is_noop:
            return batch
        columns: dict[str, Any] = {}
        for name, values in batch.columns.items():
            action = policy.action(name[3:]) if name.startswith("in.") else "keep"
            if action == "keep":
                columns[name] = values
            elif action == "hash":
                columns[name] = hash_values(self.key, values)
            elif action == "redact":
                columns[name] = [None if _is_null(v) else REDACTED for v in values]
        return LogBatch(batch.model, batch.size, columns)


def _split(batch: LogBatch, deployments: Any) -> dict[str | None, LogBatch]:
    """The batch's rows grouped by deployment, each group a batch of its own."""
    rows: dict[str | None, list[int]] = {}
    for i, name in enumerate(deployments):
        rows.setdefault(name, []).append(i)
    parts = {}
    for name, index in rows.items():
        taken = np.asarray(index)
        columns = {
            column: values[taken] if isinstance(values, np.ndarray) else [values[i] for i in index]
            for column, values in batch.columns.items()
        }
        parts[name] = LogBatch(batch.model, len(index), columns)
    return parts


def hash_values(key: bytes, values: Any) -> list[str | None]:
    """HMAC-SHA256 of each value's canonical text, hex, :data:`HASH_HEX_CHARS` long; nulls
    stay null. Repeated values are hashed once per call (categorical columns repeat a lot).

    >>> a, b, c = hash_values(b"k", [3, 3.0, "3"])
    >>> a == b == c, len(a)
    (True, 32)
    """
    keyed = hmac.new(key, digestmod=hashlib.sha256)
    seen: dict[str, str] = {}
    out: list[str | None] = []
    for value in values.tolist() if isinstance(values, np.ndarray) else values:
        if _is_null(value):
            out.append(None)
            continue
        text = canonical_text(value)
        digest = seen.get(text)
        if digest is None:
            mac = keyed.copy()
            mac.update(text.encode())
            digest = seen[text] = mac.hexdigest()[:HASH_HEX_CHARS]
        out.append(digest)
    return out


def canonical_text(value: Any) -> str:
    """The text a value is hashed as: the same for equal values, whatever their type on the
    wire (``3``, ``3.0`` and ``"3"``), so a hashed column joins with hashes of other logs.

    >>> canonical_text(3.0), canonical_text(np.True_), canonical_text(0.1), canonical_text(" a ")
    ('3', 'true', '0.1', ' a ')
    """
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def load_hash_key(home: Path, configured: str | None = None) -> bytes:
    """The key for hashed columns: ``configured`` (a setting, e.g. from a secret store) if
    given, else the key file in ``home``, created on first use with mode 0600.

    Several servers sharing a prediction folder need the same key for their hashes to join:
    share the home or set the same ``MODELPILOT_PREDLOG_HASH_KEY``. The key is never logged.
    """
    if configured:
        return configured.encode()
    path = home / KEY_FILE
    if not path.exists():
        _create_key_file(path)
    return path.read_bytes().strip()


def _create_key_file(path: Path) -> None:
    """Write a fresh key under a temporary name, then link it into place: of two processes
    starting together, one key wins and both read it, complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, secrets.token_hex(32).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
