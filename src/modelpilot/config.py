"""Settings: the only place that reads the environment.

Layered as defaults < ``modelpilot.toml`` (later) < ``MODELPILOT_*`` environment < explicit
arguments. Build it once at the edge and pass it down; nothing reads ``os.environ`` elsewhere.

>>> s = Settings(home="/tmp/mp-doc")
>>> s.resolved_store_uri()
'sqlite:////tmp/mp-doc/modelpilot.db'
>>> str(s.resolved_artifact_root())
'/tmp/mp-doc/artifacts'
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_home() -> Path:
    return Path.home() / ".modelpilot"


class Settings(BaseSettings):
    """Where modelpilot keeps its metadata and artifacts, and how it behaves.

    ``home`` holds a SQLite file and an artifact folder by default; ``store_uri`` switches the
    metadata to PostgreSQL (``postgresql+psycopg://…``) and ``artifact_root`` moves blobs.
    """

    model_config = SettingsConfigDict(env_prefix="MODELPILOT_", extra="forbid")

    home: Path = Field(default_factory=_default_home)
    store_uri: str | None = None
    artifact_root: Path | None = None
    # Artifacts in an S3-compatible bucket instead of the local folder: s3://bucket/prefix.
    # boto3 reads AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
    # AWS_DEFAULT_REGION itself. Blobs fetched from it are cached (verified on every use) in
    # artifact_cache_dir (home/cache/blobs by default), least recently used evicted past
    # artifact_cache_max_bytes; s3_max_attempts bounds retries of each S3 call.
    artifacts_uri: str | None = None
    artifact_cache_dir: Path | None = None
    artifact_cache_max_bytes: int = Field(default=20 * 2**30, ge=0)
    s3_max_attempts: int = Field(default=5, ge=1, le=20)
    # The prediction log's segments shipped to (and pulled from) s3://bucket/prefix, so every
    # machine's rows reach every reader (modelpilot.predictions.bucket); unset, the log stays
    # in home/predictions on each machine.
    predictions_uri: str | None = None
    sqlite_busy_timeout_ms: int = Field(default=30_000, ge=0)
    metric_flush_interval_ms: int = Field(default=200, ge=1)
    metric_flush_max_points: int = Field(default=10_000, ge=1)
    allow_pickle: bool = False
    predlog_durability: Literal["async", "sync"] = "async"
    # The key of hashed prediction-log columns; unset, a key file in ``home`` is made on first
    # use (modelpilot.predictions.log_policy.load_hash_key). A secret: never printed or logged.
    predlog_hash_key: SecretStr | None = None
    # ``modelpilot server`` to send tracking calls to (MODELPILOT_SERVER_URI), and the API token
    # (MODELPILOT_TOKEN) they carry; without a server everything stays in-process.
    server_uri: str | None = None
    # The Ray cluster that `--executor ray` runs pipeline steps on (ray://host:10001, or
    # host:6379 of `ray start --head`); unset, a local cluster is started.
    ray_address: str | None = None
    token: str | None = Field(default=None, repr=False)
    # The largest artifact ``modelpilot server`` accepts in one upload (413 above it).
    max_upload_bytes: int = Field(default=50 * 2**30, ge=1)
    # Files larger than two chunks go to the server in chunks of this size (a resumable
    # upload: a dropped connection resends from the server's offset, not from byte 0).
    upload_chunk_bytes: int = Field(default=32 * 2**20, ge=2**16)

    def resolved_store_uri(self) -> str:
        """The SQLAlchemy URL for the metadata store (SQLite under ``home`` by default)."""
        if self.store_uri:
            return normalise_store_uri(self.store_uri)
        return f"sqlite:///{self.home / 'modelpilot.db'}"

    def resolved_artifact_root(self) -> Path:
        """The folder for content-addressed blobs (``home/artifacts`` by default)."""
        return self.artifact_root if self.artifact_root is not None else self.home / "artifacts"

    def resolved_artifact_cache_dir(self) -> Path:
        """The local cache of blobs fetched from S3 (``home/cache/blobs`` by default)."""
        if self.artifact_cache_dir is not None:
            return self.artifact_cache_dir
        return self.home / "cache" / "blobs"


def normalise_store_uri(uri: str) -> str:
    """Accept the URI spellings people use and return the one SQLAlchemy needs.

    >>> normalise_store_uri("postgresql://root@127.0.0.1:5432/test")
    'postgresql+psycopg://root@127.0.0.1:5432/test'
    >>> normalise_store_uri("/data/mp.db")
    'sqlite:////data/mp.db'
    """
    if uri.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + uri.split("://", 1)[1]
    if "://" not in uri:
        return f"sqlite:///{Path(uri).expanduser().absolute()}"
    return uri
