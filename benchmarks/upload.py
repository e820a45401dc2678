"""Blob streaming through `modelpilot server`: a large file up and back down, peak memory.

    python benchmarks/upload.py                     # 2 GiB, resumable upload in 32 MiB chunks
    python benchmarks/upload.py --size-mib 512 --chunk-mib 8
    python benchmarks/upload.py --single-put        # the same file as one streamed PUT

A file of random bytes is written to a work folder, a real `modelpilot server` (SQLite, its
blobs in the work folder) is started, and a client process (`HttpArtifactStore.put_file`, then
`fetch_to`) uploads and downloads it; the download's sha256 is checked against the source's.
Peak RSS is VmHWM from /proc/<pid>/status: the server's before and after, the client's after
its imports and warm-up, after the upload and after the download. Bounded memory means the
growth stays a few MiB whatever the file's size. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

MiB = 1 << 20

_CLIENT = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from modelpilot.client import HttpArtifactStore

    def hwm_mib():
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024

    url, token, source, target, chunk_bytes = sys.argv[1:]
    blobs = HttpArtifactStore(url, token=token, timeout_s=300, chunk_bytes=int(chunk_bytes))
    blobs.exists("0" * 64)  # imports and the connection pool are warm before measuring
    figures = {"client_hwm_start_mib": hwm_mib()}
    start = time.perf_counter()
    digest = blobs.put_file(Path(source))  # hashes the file first, then uploads it
    figures["upload_s"] = time.perf_counter() - start
    figures["client_hwm_after_upload_mib"] = hwm_mib()
    start = time.perf_counter()
    blobs.fetch_to(digest, Path(target))
    figures["download_s"] = time.perf_counter() - start
    figures["client_hwm_after_download_mib"] = hwm_mib()
    figures["digest"] = digest
    blobs.close()
    print(json.dumps(figures))
    """
)


def write_random_file(path: Path, size_mib: int) -> str:
    """``size_mib`` MiB of random bytes; return their sha256."""
    hasher = hashlib.sha256()
    with path.open("wb") as out:
        for _ in range(size_mib):
            chunk = os.urandom(MiB)
            hasher.update(chunk)
            out.write(chunk)
    return hasher.hexdigest()


def hwm_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def start_server(work: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    """A `modelpilot server` on SQLite in ``work``, healthy; (process, url, editor token)."""
    from modelpilot.server.auth import Role, create_token
    from modelpilot.store import Store

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    uri = f"sqlite:///{work / 'mp.db'}"
    command = [sys.executable, "-m", "modelpilot.cli.main", "server", "--port", str(port)]
    proc = subprocess.Popen(
        [*command, "--store-uri", uri],
        env={**os.environ, "MODELPILOT_HOME": str(work / "home")},
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError("modelpilot server exited during start-up")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as reply:
                if reply.status == 200:
                    break
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("modelpilot server not healthy after 60 s") from None
            time.sleep(0.1)  # polling a starting server; bounded by the deadline above
    store = Store.open(uri)
    try:
        token = create_token(store, "bench-upload", Role.EDITOR).token
    finally:
        store.close()
    return proc, url, token


def run(work: Path, size_mib: int, chunk_bytes: int) -> dict[str, object]:
    source, target = work / "source.bin", work / "downloaded.bin"
    started = time.perf_counter()
    expected = write_random_file(source, size_mib)
    print(f"wrote {size_mib:,} MiB in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    proc, url, token = start_server(work)
    try:
        server_start = hwm_mib(proc.pid)
        client = [sys.executable, "-c", _CLIENT, url, token, str(source), str(target)]
        reply = subprocess.run(
            [*client, str(chunk_bytes)],
            capture_output=True,
            text=True,
            check=True,
        )
        server_end = hwm_mib(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    figures: dict[str, object] = json.loads(reply.stdout)
    if figures.pop("digest") != expected or expected != _sha256(target):
        raise RuntimeError("the downloaded file does not match the source")
    mode = "single PUT" if chunk_bytes >= size_mib * MiB else f"chunks of {chunk_bytes // MiB} MiB"
    client_start = float(figures["client_hwm_start_mib"])  # type: ignore[arg-type]
    client_peak = float(figures["client_hwm_after_download_mib"])  # type: ignore[arg-type]
    return {
        "size_mib": size_mib,
        "upload": mode,
        **figures,
        "upload_mib_per_s": size_mib / float(figures["upload_s"]),  # type: ignore[arg-type]
        "download_mib_per_s": size_mib / float(figures["download_s"]),  # type: ignore[arg-type]
        "server_hwm_start_mib": server_start,
        "server_hwm_end_mib": server_end,
        "server_peak_growth_mib": server_end - server_start,
        "client_peak_growth_mib": client_peak - client_start,
    }


def _sha256(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(MiB):
            hasher.update(chunk)
    return hasher.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--chunk-mib", type=int, default=32, help="resumable upload chunk size")
    parser.add_argument("--single-put", action="store_true", help="one streamed PUT instead")
    parser.add_argument("--workdir", type=Path, help="default: a temporary folder, removed")
    args = parser.parse_args()
    chunk_bytes = args.size_mib * MiB if args.single_put else args.chunk_mib * MiB
    work = args.workdir or Path(tempfile.mkdtemp(prefix="mp-bench-upload-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        figures = run(work, args.size_mib, chunk_bytes)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    for key, value in figures.items():
        shown = f"{value:,.1f}" if isinstance(value, float) else str(value)
        print(f"{key:32} {shown}")


if __name__ == "__main__":
    main()
