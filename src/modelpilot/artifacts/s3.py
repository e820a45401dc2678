"""Blobs in an S3-compatible bucket: ``s3://bucket/prefix/ab/cdef…`` named by their sha256.

Any S3-compatible server works (AWS, SeaweedFS, MinIO, Ceph). boto3 reads the usual
``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and
``AWS_DEFAULT_REGION`` (or a profile) itself. What this store adds on top:

- content addressing: a blob's key is its sha256, so a blob already in the bucket is never
  uploaded again (one ``HEAD`` first), and concurrent writers of the same blob write the same
  bytes;
- whole or nothing: a file is copied to a local temp file (the kernel's copy) and the copy
  hashed right behind it (the key is the hash of the bytes uploaded, even if the source
  changes meanwhile), then uploaded in one ``PUT`` or, past ``part_bytes``, a multipart
  upload that S3 assembles only when every part arrived;
- verified reads: every download is hashed in order while its parallel ranged GETs land in
  the cache's temp file, before anyone sees it, so an object replaced behind modelpilot's
  back is a :class:`~modelpilot.errors.CorruptArtifact`, never a model (and nothing is kept);
  ``fetch_to`` then hard-links the verified cached copy to its destination;
- a local read-through :class:`~modelpilot.artifacts.cache.BlobCache` (bounded, LRU,
  re-verified on every use), so a machine fetches a blob once;
- bounded retries: botocore's ``standard`` mode retries throttling, 5xx and connection errors
  with exponential backoff and jitter, ``max_attempts`` in all; what still fails is one
  :class:`~modelpilot.errors.Unavailable` naming the URI, the endpoint, what was being done
  and what to check (never a botocore traceback).

The bucket is checked once per store (``HEAD bucket``) before its first use, so wrong
credentials and a missing bucket are told apart from a missing blob (some servers create a
bucket on the first ``PUT``; this store never does).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from modelpilot.artifacts.base import BlobInfo, check_digest, digest_of_name
from modelpilot.artifacts.cache import BlobCache
from modelpilot.artifacts.local import write_temp
from modelpilot.artifacts.streaming import HashingWriter, copy_hashed, link_atomic
from modelpilot.errors import CorruptArtifact, InvalidInput, NotFound, Unavailable

T = TypeVar("T")
# Parts of 16 MiB: S3 allows 10,000 parts (so blobs up to 156 GiB) and needs at least 5 MiB.
DEFAULT_PART_BYTES = 16 * 2**20
_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"}
_NO_BUCKET = {"NoSuchBucket"}
# S3 lists and deletes at most 1,000 keys per request.
LIST_PAGE_KEYS = 1000
DELETE_BATCH_KEYS = 1000
# A put of a blob the bucket holds already rewrites it in place (a server-side copy) when it
# is older than this, so `modelpilot gc`'s grace period (1 h by default, at least this long to
# count) sees a blob a writer is about to reference as young; younger blobs are left alone.
REFRESH_AFTER_S = 600.0


@dataclass(frozen=True)
class S3Location:
    """A bucket and a key prefix (no leading or trailing slash; may be empty)."""

    bucket: str
    prefix: str = ""

    @classmethod
    def parse(cls, uri: str) -> S3Location:
        """Read ``s3://bucket/prefix``.

        >>> S3Location.parse("s3://models/team-a/")
        S3Location(bucket='models', prefix='team-a')
        >>> S3Location.parse("models/team-a")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        modelpilot.errors.InvalidInput: Artifacts URI 'models/team-a' is not an S3 URI...
        """
        scheme, _, rest = uri.partition("://")
        bucket, _, prefix = rest.partition("/")
        if scheme != "s3" or not bucket:
            raise InvalidInput(
                f"Artifacts URI {uri[:200]!r} is not an S3 URI: expected s3://bucket or "
                "s3://bucket/prefix (MODELPILOT_ARTIFACTS_URI). Unset it to keep artifacts in "
                "the local folder (MODELPILOT_ARTIFACT_ROOT).",
                field="artifacts_uri",
            )
        return cls(bucket, prefix.strip("/"))

    def key(self, digest: str) -> str:
        """The object key of a blob.

        >>> S3Location("b", "p").key("ab" + "0" * 62)[:8]
        'p/ab/000'
        """
        name = f"{digest[:2]}/{digest[2:]}"
        return f"{self.prefix}/{name}" if self.prefix else name

    def uri(self, key: str = "") -> str:
        """``s3://bucket/prefix`` (or one key's URI)."""
        path = key or self.prefix
        return f"s3://{self.bucket}/{path}" if path else f"s3://{self.bucket}"


class S3ArtifactStore:
    """Content-addressed blobs in a bucket, read through a local cache (module docstring)."""

    def __init__(
        self,
        location: S3Location,
        *,
        cache: BlobCache,
        part_bytes: int = DEFAULT_PART_BYTES,
        max_attempts: int = 5,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 60.0,
    ) -> None:
        self.location = location
        self.cache = cache
        self.part_bytes = part_bytes
        self.max_attempts = max_attempts
        self._access = S3Access(
            location,
            max_attempts=max_attempts,
            connect_timeout_s=connect_timeout_s,
            read_timeout_s=read_timeout_s,
        )

    @property
    def staging_root(self) -> Path:
        """Where uploads are written before they go to the bucket: the cache folder, so an
        uploaded blob becomes a cached one by a rename."""
        return self.cache.root

    def exists(self, digest: str) -> bool:
        """True when the bucket holds the blob (one ``HEAD``)."""
        return self.size_of(digest) is not None

    def size_of(self, digest: str) -> int | None:
        """The blob's size in the bucket, or None when it is not there."""
        info = self.blob_info(digest)
        return None if info is None else info.size_bytes

    def blob_info(self, digest: str) -> BlobInfo | None:
        """The blob's size and last write in the bucket (one ``HEAD``), or None."""
        key = self.location.key(check_digest(digest))
        client = self._s3()
        try:
            head = client.head_object(Bucket=self.location.bucket, Key=key)
        except Exception as exc:
            if _status(exc) == 404:
                return None
            raise self._failure(exc, f"checking {self.location.uri(key)}") from exc
        return BlobInfo(digest, int(head["ContentLength"]), head["LastModified"].timestamp())

    def describe(self) -> str:
        """``s3://bucket/prefix``."""
        return self.location.uri()

    def list_blobs(self, *, page_keys: int = LIST_PAGE_KEYS) -> Iterator[BlobInfo]:
        """Every blob under the prefix, ``page_keys`` keys per ``ListObjectsV2`` request
        (continuation tokens past the first page); other objects there are skipped."""
        start = f"{self.location.prefix}/" if self.location.prefix else ""
        pages = (
            self._s3()
            .get_paginator("list_objects_v2")
            .paginate(
                Bucket=self.location.bucket,
                Prefix=start,
                PaginationConfig={"PageSize": page_keys},
            )
        )
        doing = f"listing {self.location.uri()}"
        iterator = iter(pages)
        while True:
            try:
                page = next(iterator)
            except StopIteration:
                return
            except Exception as exc:
                raise self._failure(exc, doing) from exc
            for item in page.get("Contents", []):
                folder, _, name = str(item["Key"])[len(start) :].partition("/")
                digest = digest_of_name(folder, name)
                if digest is not None:
                    yield BlobInfo(digest, int(item["Size"]), item["LastModified"].timestamp())

    def delete_blobs(self, digests: Sequence[str]) -> None:
        """Delete these blobs, up to 1,000 per ``DeleteObjects`` request, and this machine's
        cached copies; a key the server could not delete is one Unavailable naming it."""
        for start in range(0, len(digests), DELETE_BATCH_KEYS):
            batch = [check_digest(d) for d in digests[start : start + DELETE_BATCH_KEYS]]
            objects = [{"Key": self.location.key(d)} for d in batch]
            reply = self._call(
                f"deleting {len(batch)} blobs from {self.location.uri()}",
                self._s3().delete_objects,
                Bucket=self.location.bucket,
                Delete={"Objects": objects, "Quiet": True},
            )
            for digest in batch:
                self.cache.discard(digest)
            errors = reply.get("Errors") or []
            if errors:
                first = errors[0]
                raise Unavailable(
                    f"Artifact store {self.location.uri()}: {len(errors)} of {len(batch)} "
                    f"deletes failed, first {first.get('Key')} ({first.get('Code')}: "
                    f"{str(first.get('Message', ''))[:200]}). Check that the credentials may "
                    "delete objects; rerun modelpilot gc to finish."
                )

    def put_bytes(self, data: bytes) -> str:
        """Store ``data`` and return its digest."""
        tmp, digest = write_temp(self.cache.root, [data], fsync=False)
        return self._put_staged(tmp, digest)

    def put_file(self, path: Path) -> str:
        """Store a file and return its digest: staged beside the cache with the kernel's copy,
        the copy hashed right behind it (:func:`~modelpilot.artifacts.streaming.copy_hashed`)."""
        tmp, digest = copy_hashed(path, self.cache.root)
        return self._put_staged(tmp, digest)

    def get_bytes(self, digest: str) -> bytes:
        """The verified bytes (from the cache, fetched into it first when missing)."""
        return self._with_cached(digest, Path.read_bytes)

    def fetch_to(self, digest: str, destination: Path) -> Path:
        """Put the verified blob at ``destination`` (atomically): a hard link to the cached
        copy, which :meth:`_cached` verified (on download, or by the cache's lookup), or a
        copy where a link is impossible. Do not write the destination in place."""
        return self._with_cached(digest, lambda cached: link_atomic(cached, destination))

    def local_path(self, digest: str) -> Path:
        """A verified local copy of the blob (the cache's); NotFound when the bucket lacks it."""
        return self._cached(digest)

    def open_upload(self) -> tuple[int, Path]:
        """A temp file for a blob written piece by piece; write it, then :meth:`adopt` it."""
        return self.cache.open_temp()

    def adopt(self, tmp: Path, digest: str) -> str:
        """Upload a complete temp file whose sha256 the caller checked is ``digest`` (unless
        the bucket has it already), then keep it in the cache."""
        key = self.location.key(check_digest(digest))
        info = self.blob_info(digest)
        is_old = info is not None and time.time() - info.modified_s > REFRESH_AFTER_S
        if info is None or (is_old and not self._refreshed(key, digest)):
            self._call(
                f"uploading {self.location.uri(key)}",
                self._s3().upload_file,
                Filename=str(tmp),
                Bucket=self.location.bucket,
                Key=key,
                ExtraArgs={"Metadata": {"sha256": digest}},
                Config=self._transfer(),
            )
        self.cache.add(tmp, digest)
        return digest

    def _refreshed(self, key: str, digest: str) -> bool:
        """Rewrite an old blob onto itself (a server-side copy, nothing downloaded), so its
        last-modified time is now (see modelpilot.artifact_gc); False when it is gone (gc
        deleted it since the ``HEAD``: the caller uploads it again)."""
        client = self._s3()
        try:
            client.copy(
                CopySource={"Bucket": self.location.bucket, "Key": key},
                Bucket=self.location.bucket,
                Key=key,
                ExtraArgs={"Metadata": {"sha256": digest}, "MetadataDirective": "REPLACE"},
                Config=self._transfer(),
            )
        except Exception as exc:
            cause = _botocore_cause(exc)
            if cause is not None and (_status(cause) == 404 or _code(cause) == "NoSuchKey"):
                return False
            raise self._failure(exc, f"refreshing {self.location.uri(key)}") from exc
        return True

    def _put_staged(self, tmp: Path, digest: str) -> str:
        try:
            return self.adopt(tmp, digest)
        finally:
            tmp.unlink(missing_ok=True)  # gone already when adopted

    def _with_cached(self, digest: str, use: Callable[[Path], T]) -> T:
        """``use`` the cached copy; once more if another process evicted it meanwhile."""
        try:
            return use(self._cached(digest))
        except FileNotFoundError:
            return use(self._cached(digest))

    def _cached(self, digest: str) -> Path:
        """The verified cached copy, downloaded (and verified) first when missing."""
        cached = self.cache.lookup(check_digest(digest))
        if cached is not None:
            return cached
        key = self.location.key(digest)
        fd, tmp = self.cache.open_temp()
        try:
            with os.fdopen(fd, "wb") as out, HashingWriter(out) as writer:
                self._download(digest, key, writer)
            actual = writer.hexdigest()
            if actual != digest:
                raise CorruptArtifact(
                    f"Artifact {self.location.uri(key)} changed behind modelpilot's back: its "
                    f"bytes hash to {actual[:12]}…, not {digest[:12]}… (the key). Restore the "
                    "object from a backup or re-log what produced it; do not edit blobs in the "
                    "bucket."
                )
            return self.cache.add(tmp, digest)
        finally:
            tmp.unlink(missing_ok=True)

    def _download(self, digest: str, key: str, writer: HashingWriter) -> None:
        """boto3's managed download (parallel ranged GETs past ``part_bytes``) into ``writer``,
        which hashes the bytes in order as they land."""
        client = self._s3()
        try:
            client.download_fileobj(
                Bucket=self.location.bucket, Key=key, Fileobj=writer, Config=self._transfer()
            )
        except Exception as exc:
            if _status(exc) == 404:
                raise NotFound(
                    f"No artifact with digest {digest[:12]}… in {self.location.uri()} (key "
                    f"{key}). If a record names it, the object was deleted outside modelpilot: "
                    "restore it or re-log what produced it."
                ) from exc
            raise self._failure(exc, f"downloading {self.location.uri(key)}") from exc

    def _transfer(self) -> Any:
        from boto3.s3.transfer import TransferConfig

        return TransferConfig(
            multipart_threshold=self.part_bytes, multipart_chunksize=self.part_bytes
        )

    def _s3(self) -> Any:
        return self._access.client()

    def _call(self, doing: str, call: Callable[..., T], **kwargs: Any) -> T:
        return self._access.call(doing, call, **kwargs)

    def _failure(self, exc: Exception, doing: str) -> Exception:
        return self._access.failure(exc, doing)


# boto3 clients by their settings and the AWS_* environment they were made from, shared by
# every store of the process: a new Session parses the service model again (~90-120 ms
# measured, 7% of a 500 MiB download from SeaweedFS on loopback), and clients are thread-safe.
_CLIENTS: dict[tuple[Any, ...], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def _aws_environment() -> tuple[tuple[str, str], ...]:
    """The AWS_* variables a client is made from (a secret only as its sha256), so a client
    is reused only where a new one would be the same."""
    return tuple(
        (name, hashlib.sha256(value.encode()).hexdigest() if _is_secret(name) else value)
        for name, value in sorted(os.environ.items())
        if name.startswith("AWS_")
    )


def _is_secret(name: str) -> bool:
    return "SECRET" in name or "TOKEN" in name


class S3Access:
    """One bucket's boto3 client (made, and the bucket checked, on first use) and the clear
    errors of its calls; shared by the artifact store and the prediction log's bucket
    (:mod:`modelpilot.predictions.bucket`), whose errors name their own setting."""

    def __init__(
        self,
        location: S3Location,
        *,
        max_attempts: int = 5,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 60.0,
        label: str = "Artifact store",
        setting: str = "MODELPILOT_ARTIFACTS_URI",
    ) -> None:
        self.location = location
        self.max_attempts = max_attempts
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.label = label
        self.setting = setting
        self._client: Any = None
        self._bucket_checked = False
        self._lock = threading.Lock()

    def client(self) -> Any:
        """The client, made (and the bucket checked) on first use."""
        with self._lock:
            if self._client is None:
                self._client = self._new_client()
            if not self._bucket_checked:
                self.call(
                    f"checking bucket {self.location.bucket!r}",
                    self._client.head_bucket,
                    Bucket=self.location.bucket,
                )
                self._bucket_checked = True
        return self._client

    def _new_client(self) -> Any:
        try:
            import boto3
            from botocore.config import Config
        except ImportError as exc:
            raise InvalidInput(
                f"{self.setting}={self.location.uri()} needs boto3: pip install 'modelpilot[s3]'.",
                field=self.setting.removeprefix("MODELPILOT_").lower(),
            ) from exc
        key = (self.max_attempts, self.connect_timeout_s, self.read_timeout_s, _aws_environment())
        with _CLIENTS_LOCK:
            client = _CLIENTS.get(key)
            if client is None:
                config = Config(
                    retries={"max_attempts": self.max_attempts, "mode": "standard"},
                    connect_timeout=self.connect_timeout_s,
                    read_timeout=self.read_timeout_s,
                )
                client = _CLIENTS[key] = boto3.session.Session().client("s3", config=config)
        return client

    def call(self, doing: str, call: Callable[..., T], **kwargs: Any) -> T:
        """``call(**kwargs)``, its botocore failure raised as one clear error."""
        try:
            return call(**kwargs)
        except Exception as exc:
            raise self.failure(exc, doing) from exc

    def failure(self, exc: Exception, doing: str) -> Exception:
        """The error to raise for a failed S3 call: one clear :class:`Unavailable` for what
        botocore and boto3 raise, anything else unchanged."""
        cause = _botocore_cause(exc)
        if cause is None:
            return exc
        endpoint = self._client.meta.endpoint_url if self._client is not None else "?"
        where = f"{self.location.uri()} (endpoint {endpoint})"
        code = _code(cause)
        if type(cause).__name__ in {"NoCredentialsError", "PartialCredentialsError"}:
            hint = (
                "no credentials were found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "(or AWS_PROFILE)."
            )
        elif code in _DENIED:
            hint = (
                f"the server refused the credentials (HTTP 403 {code}): check "
                "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and that they may read and write "
                f"bucket {self.location.bucket!r}."
            )
        elif code in _NO_BUCKET or (doing.startswith("checking bucket") and code == "404"):
            hint = (
                f"bucket {self.location.bucket!r} does not exist there: create it, or fix "
                f"{self.setting} / AWS_ENDPOINT_URL."
            )
        elif code:
            hint = (
                f"the server answered {code} (after up to {self.max_attempts} attempts with "
                "backoff): check the server's health and logs."
            )
        else:
            hint = (
                f"cannot reach the endpoint ({type(cause).__name__}: {str(cause)[:200]}; tried "
                f"{self.max_attempts} times with backoff): check AWS_ENDPOINT_URL and that the "
                "server is up."
            )
        return Unavailable(f"{self.label} {where}, {doing}: {hint}")


def _botocore_cause(exc: BaseException) -> BaseException | None:
    """The botocore/boto3 error in ``exc``'s chain (boto3 wraps upload failures): the first
    with an S3 error code, else the innermost."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 10:
        if type(seen).__module__.split(".")[0] in {"botocore", "boto3", "s3transfer"}:
            chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    with_code = [e for e in chain if _code(e)]
    return with_code[0] if with_code else (chain[-1] if chain else None)


def _code(exc: BaseException) -> str:
    """The S3 error code of a ClientError ('' for other errors)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", ""))


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status is not None else None
