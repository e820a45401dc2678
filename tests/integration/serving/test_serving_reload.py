"""Hot reload under traffic: an alias move and explicit load/unload drop no request."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import tritonclient.http as triton

from conftest import Server, bearer, home_token
from modelpilot.config import Settings
from modelpilot.identity import Role
from modelpilot.workspace import Workspace
from mp_server import copy_home

RECORD = {"age": 40, "income": 52.5, "calls": 3}


def _until(check: Callable[[], bool], what: str, deadline_s: float = 20) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)  # polling the server's view, bounded by the deadline
    raise AssertionError(f"timed out waiting for {what}")


class Traffic:
    """Client threads posting to /predict/churn until stopped (at most 5,000 requests each)."""

    def __init__(self, url: str, threads: int = 4) -> None:
        self.url = url
        self.statuses: Counter[int] = Counter()
        self.versions: Counter[int] = Counter()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            for _ in range(5000):
                if self.stop.is_set():
                    return
                reply = client.post(f"{self.url}/predict/churn", json=[RECORD])
                with self.lock:
                    self.statuses[reply.status_code] += 1
                    if reply.status_code == 200:
                        self.versions[reply.json()["version"]] += 1

    def __enter__(self) -> Traffic:
        for thread in self.threads:
            thread.start()
        _until(lambda: sum(self.statuses.values()) > 50, "traffic")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()


def test_alias_move_and_explicit_load_unload_under_traffic_drop_nothing(
    start_server: Callable[..., Server], home: Path, tmp_path: Path
) -> None:
    server_home = tmp_path / "home"
    copy_home(home, server_home)
    server = start_server(
        "churn@champion", server_home=server_home, extra=("--model-control", "--no-log")
    )
    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    deployer = bearer(home_token(server_home, "reload-deployer", Role.DEPLOYER))

    def loaded() -> list[tuple[str, str]]:
        index = client.get_model_repository_index(headers=deployer)
        return [(m["name"], m["version"]) for m in index]

    with Traffic(server.url) as traffic:
        ws = Workspace(Settings(home=server_home))
        ws.set_alias("churn", "champion", 2)  # the server follows the alias
        ws.close()
        _until(lambda: loaded() == [("churn", "2")], "the alias move to churn/2")
        reply = httpx.post(
            f"{server.url}/v2/repository/models/churn/load",
            json={"parameters": {"version": "1"}},
            headers=deployer,
        )
        assert reply.json() == {"name": "churn", "version": "1"}
        assert loaded() == [("churn", "1"), ("churn", "2")]
        httpx.post(
            f"{server.url}/v2/repository/models/churn/unload",
            json={"parameters": {"version": 1}},
            headers=deployer,
        ).raise_for_status()
        assert loaded() == [("churn", "2")]
        before = sum(traffic.versions.values())
        _until(lambda: sum(traffic.versions.values()) > before + 50, "traffic after the changes")
    client.close()
    assert set(traffic.statuses) == {200}, traffic.statuses
    assert traffic.versions[1] > 0 and traffic.versions[2] > 0
