"""What the S3 store adds beyond the contract, on a real SeaweedFS: multipart uploads, the
read-through cache, no second upload of a stored blob, and clear errors for wrong
credentials, a missing bucket, an unreachable endpoint and a blob deleted behind its back;
and ``modelpilot server`` on MODELPILOT_ARTIFACTS_URI."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from botocore.exceptions import ClientError

from modelpilot.artifacts import BlobCache, S3ArtifactStore, S3Location, sha256_bytes
from modelpilot.errors import CorruptArtifact, NotFound, Unavailable
from modelpilot.identity import Role
from mp_server import free_port, make_token, start_server
from s3_server import RunningS3

PART_BYTES = 5 * 2**20


@pytest.fixture
def s3_env(s3_server: RunningS3, monkeypatch: pytest.MonkeyPatch) -> RunningS3:
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    return s3_server


@pytest.fixture
def location(s3_env: RunningS3) -> S3Location:
    return S3Location(s3_env.bucket, f"store/{uuid.uuid4().hex}")


def _store(location: S3Location, cache_dir: Path, **options: int) -> S3ArtifactStore:
    cache_bytes = options.pop("cache_bytes", 2**30)
    return S3ArtifactStore(location, cache=BlobCache(cache_dir, max_bytes=cache_bytes), **options)


def test_a_large_blob_goes_up_in_parts(
    s3_env: RunningS3, location: S3Location, tmp_path: Path
) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(uuid.uuid4().bytes * (20 * 2**20 // 16))
    digest = _store(location, tmp_path / "cache", part_bytes=PART_BYTES).put_file(source)
    head = s3_env.client().head_object(Bucket=s3_env.bucket, Key=location.key(digest))
    assert head["ETag"].strip('"').endswith("-4")  # a multipart upload of four parts
    assert head["Metadata"] == {"sha256": digest}


def test_a_large_blob_comes_down_in_ranges_verified_and_linked_from_the_cache(
    location: S3Location, tmp_path: Path
) -> None:
    data = uuid.uuid4().bytes * (18 * 2**20 // 16)  # four ranged GETs of 5 MiB in parallel
    digest = _store(location, tmp_path / "writer", part_bytes=PART_BYTES).put_bytes(data)
    replica = _store(location, tmp_path / "replica", part_bytes=PART_BYTES)
    target = replica.fetch_to(digest, tmp_path / "package" / "model.bin")
    assert target.read_bytes() == data
    assert target.stat().st_ino == replica.cache.path_for(digest).stat().st_ino
    assert [p.name for p in target.parent.iterdir()] == ["model.bin"]


def test_a_large_blob_changed_in_the_bucket_is_refused_and_nothing_is_kept(
    s3_env: RunningS3, location: S3Location, tmp_path: Path
) -> None:
    data = uuid.uuid4().bytes * (12 * 2**20 // 16)
    digest = _store(location, tmp_path / "writer").put_bytes(data)
    changed = data[:-1] + bytes([data[-1] ^ 1])  # the last byte of the last range
    s3_env.client().put_object(Bucket=s3_env.bucket, Key=location.key(digest), Body=changed)
    replica = _store(location, tmp_path / "replica", part_bytes=PART_BYTES)
    with pytest.raises(CorruptArtifact, match="changed behind modelpilot's back"):
        replica.fetch_to(digest, tmp_path / "package" / "model.bin")
    assert not (tmp_path / "package" / "model.bin").exists()
    assert [p for p in (tmp_path / "replica").rglob("*") if p.is_file()] == []


def test_a_second_read_is_served_from_the_local_cache(
    s3_env: RunningS3, location: S3Location, tmp_path: Path
) -> None:
    writer = _store(location, tmp_path / "writer")
    digest = writer.put_bytes(b"weights" * 1000)
    reader = _store(location, tmp_path / "replica")
    assert reader.get_bytes(digest) == b"weights" * 1000  # fetched once
    s3_env.client().delete_object(Bucket=s3_env.bucket, Key=location.key(digest))
    assert reader.get_bytes(digest) == b"weights" * 1000  # the bucket is not asked again
    assert reader.fetch_to(digest, tmp_path / "m.bin").read_bytes() == b"weights" * 1000
    with pytest.raises(NotFound, match="deleted outside modelpilot"):
        _store(location, tmp_path / "new-replica").get_bytes(digest)


def test_a_tampered_cache_copy_is_fetched_again(location: S3Location, tmp_path: Path) -> None:
    store = _store(location, tmp_path / "cache")
    digest = store.put_bytes(b"real")
    store.cache.path_for(digest).write_bytes(b"fake")
    assert store.get_bytes(digest) == b"real"
    assert store.cache.path_for(digest).read_bytes() == b"real"


def test_the_cache_stays_within_its_bound(location: S3Location, tmp_path: Path) -> None:
    store = _store(location, tmp_path / "cache", cache_bytes=2500)
    digests = [store.put_bytes(bytes([i]) * 1000) for i in range(4)]
    assert store.cache.size_bytes() <= 2500
    assert store.cache.lookup(digests[0]) is None  # the oldest went
    assert store.get_bytes(digests[0]) == bytes([0]) * 1000  # and comes back from the bucket
    assert store.cache.size_bytes() <= 2500


def test_a_stored_blob_is_not_uploaded_again(
    s3_env: RunningS3, location: S3Location, tmp_path: Path
) -> None:
    store = _store(location, tmp_path / "a")
    digest = store.put_bytes(b"v1")
    key = location.key(digest)
    s3_env.client().put_object(Bucket=s3_env.bucket, Key=key, Body=b"changed in the bucket")
    assert store.put_bytes(b"v1") == digest  # a HEAD found it: nothing was sent
    with pytest.raises(CorruptArtifact, match=r"changed behind modelpilot's back"):
        _store(location, tmp_path / "b").get_bytes(digest)


def test_stores_of_one_process_share_a_client_until_the_credentials_change(
    s3_env: RunningS3, location: S3Location, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new boto3 session parses its service model again (~0.1 s, 7% of a 500 MiB download
    here): a replica's stores reuse one client, and a changed AWS_* setting gets its own."""
    first = _store(location, tmp_path / "a")
    digest = first.put_bytes(b"shared")
    second = _store(location, tmp_path / "b")
    assert second.get_bytes(digest) == b"shared"
    assert second._access.client() is first._access.client()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "rotated")
    rotated = _store(location, tmp_path / "c")
    with pytest.raises(Unavailable, match="refused the credentials"):
        rotated.get_bytes(digest)
    assert rotated._access._client is not first._access.client()


def test_wrong_credentials_are_a_clear_error(
    s3_env: RunningS3, location: S3Location, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    with pytest.raises(Unavailable, match=r"refused the credentials \(HTTP 403") as info:
        _store(location, tmp_path / "c").put_bytes(b"x")
    assert location.uri() in str(info.value) and "AWS_SECRET_ACCESS_KEY" in str(info.value)
    assert "wrong" not in str(info.value)


def test_a_missing_bucket_is_a_clear_error_and_is_not_created(
    s3_env: RunningS3, tmp_path: Path
) -> None:
    store = _store(S3Location("no-such-bucket", "p"), tmp_path / "c")
    with pytest.raises(Unavailable, match="bucket 'no-such-bucket' does not exist there"):
        store.exists(sha256_bytes(b"x"))
    with pytest.raises(Unavailable, match="does not exist there"):
        store.put_bytes(b"x")  # SeaweedFS would create a bucket on a PUT; we never send one
    with pytest.raises(ClientError, match="404"):
        s3_env.client().head_bucket(Bucket="no-such-bucket")


def test_an_unreachable_endpoint_is_a_clear_error_after_bounded_retries(
    location: S3Location, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    store = _store(location, tmp_path / "c", max_attempts=2)
    with pytest.raises(Unavailable, match="cannot reach the endpoint") as info:
        store.get_bytes(sha256_bytes(b"x"))
    assert endpoint in str(info.value) and "tried 2 times" in str(info.value)


def test_modelpilot_server_keeps_uploads_in_the_bucket(
    s3_env: RunningS3, location: S3Location, tmp_path: Path
) -> None:
    env = {**s3_env.env(), "MODELPILOT_ARTIFACTS_URI": location.uri()}
    server = start_server(tmp_path / "home", f"sqlite:///{tmp_path / 'mp.db'}", env=env)
    try:
        headers = {"Authorization": f"Bearer {make_token(server.store_uri, 'e', Role.EDITOR)}"}
        data = b"uploaded through the server"
        digest = sha256_bytes(data)
        url = f"{server.url}/api/v1/artifacts/{digest}"
        assert httpx.put(url, content=data, headers=headers).status_code == 201
        held = s3_env.client().get_object(Bucket=s3_env.bucket, Key=location.key(digest))
        assert held["Body"].read() == data
        assert httpx.head(url, headers=headers).headers["content-length"] == str(len(data))
        assert httpx.get(url, headers=headers).content == data
        assert not (tmp_path / "home" / "artifacts").exists()  # no local blob folder
    finally:
        server.stop()
