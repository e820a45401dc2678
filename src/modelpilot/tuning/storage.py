"""Where Optuna keeps a study: modelpilot's own database, or a journal file beside the client.

Locally the study lives in the metadata store (Optuna's RDB storage on the same URL), so
any process on the store resumes it. Over ``modelpilot server`` the client cannot reach the
server's database: the study's bookkeeping (trial states, the sampler's history) is kept in an
Optuna journal file in the client's home (one per server), while every trial is a run on the
server. Resuming then works from the same client home; parallel workers share the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.storages.journal import JournalFileBackend

from modelpilot.ray_cluster import refuse_unshared_store


@dataclass(frozen=True)
class StudyStorage:
    """A picklable description of a study storage: ``url`` (a SQLAlchemy URL) or ``journal``
    (a file path); :meth:`open` builds the Optuna storage in the calling process."""

    url: str | None = None
    journal: Path | None = None
    sqlite_timeout_s: float = 30.0

    def open(self) -> optuna.storages.BaseStorage:
        """The Optuna storage (close it with :func:`close_storage`)."""
        if self.journal is not None:
            self.journal.parent.mkdir(parents=True, exist_ok=True)
            return optuna.storages.JournalStorage(JournalFileBackend(str(self.journal)))
        if self.url is None:
            raise ValueError("StudyStorage needs a url or a journal path")  # programming error
        engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if self.url.startswith("sqlite"):
            refuse_unshared_store(self.url)  # a trial on another node of a Ray cluster
            engine_kwargs["connect_args"] = {"timeout": self.sqlite_timeout_s}
        return optuna.storages.RDBStorage(self.url, engine_kwargs=engine_kwargs)


def close_storage(storage: optuna.storages.BaseStorage) -> None:
    """Release a database storage's connections (a journal file holds none open)."""
    if isinstance(storage, optuna.storages.RDBStorage):
        storage.remove_session()
        storage.engine.dispose()


__all__ = ["StudyStorage", "close_storage"]
