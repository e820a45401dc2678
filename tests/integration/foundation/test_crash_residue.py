"""What a killed process leaves behind: RUNNING runs become KILLED, old temp files go."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest

from modelpilot.config import Settings
from modelpilot.tracking import RunStatus, owner, service
from modelpilot.tracking.owner import ProcessOwner, current_owner, is_alive
from modelpilot.workspace import Workspace

_CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from modelpilot.config import Settings
    from modelpilot.workspace import Workspace

    uri = sys.argv[2] or None
    ws = Workspace(Settings(home=Path(sys.argv[1]), store_uri=uri))
    run = ws.start_run("crash")
    sys.stdout.write(run.id + "\\n"); sys.stdout.flush()
    sys.stdin.readline()  # wait here until killed (or told to go)
    """
)


@contextmanager
def _running_child(settings: Settings) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A process that started a run and is waiting; yields it and its run id."""
    with subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(settings.home), settings.store_uri or ""],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None
        try:
            yield child, child.stdout.readline().strip()
        finally:
            if child.poll() is None:
                child.kill()
            child.wait()


def test_run_of_a_sigkilled_process_is_killed_when_next_seen(settings: Settings) -> None:
    Workspace(settings).close()  # migrate first
    listing = Workspace(settings)
    try:
        listing.store  # noqa: B018 - opened before the crash: it sees it when listing runs
        with (
            _running_child(settings) as (doomed, doomed_run),
            _running_child(settings) as (_, live_run),
        ):
            before = listing.search_runs("crash").set_index("run_id")["status"].to_dict()
            assert before == {doomed_run: "RUNNING", live_run: "RUNNING"}
            os.kill(doomed.pid, signal.SIGKILL)
            doomed.wait()
            after = listing.search_runs("crash").set_index("run_id")["status"].to_dict()
            assert after == {doomed_run: "KILLED", live_run: "RUNNING"}
            fresh = Workspace(settings)  # the next process to open the store sees the same
            killed = fresh.get_run(doomed_run)
            assert killed.status is RunStatus.KILLED and killed.end_ms is not None
            assert fresh.get_run(live_run).status is RunStatus.RUNNING
            fresh.close()
    finally:
        listing.close()


def test_live_runs_stay_running_when_the_wall_clock_is_stepped(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NTP, or a virtual machine resumed after a pause, moves the boot time the kernel reports
    by the step; a process's start in wall-clock time moves with it. Its start in ticks does
    not, and that decides (a CI machine once marked every live run KILLED here)."""
    Workspace(settings).close()
    with _running_child(settings) as (_, live_run):
        stepped = owner._boot_ms()
        assert stepped is not None
        monkeypatch.setattr(owner, "_boot_ms", lambda: stepped + 30_000)  # 30 s forward
        ws = Workspace(settings)
        try:
            assert ws.get_run(live_run).status is RunStatus.RUNNING
            assert service.mark_abandoned_runs(ws.store) == []
        finally:
            ws.close()


def test_a_reused_pid_is_not_mistaken_for_the_run_owner(ws: Workspace) -> None:
    me = current_owner()
    assert me.boot_id is not None and me.start_ticks is not None  # Linux: /proc tells
    impostor = replace(me, start_ticks=me.start_ticks - 100)  # another process, same pid
    rebooted = replace(me, boot_id="0" * 36)  # the same pid and ticks in an earlier boot
    legacy = ProcessOwner(me.host, me.pid, me.start_ms)  # a row written before ticks were
    legacy_impostor = ProcessOwner(me.host, me.pid, (me.start_ms or 0) - 3_600_000)
    assert is_alive(me) and is_alive(legacy)
    assert not any(map(is_alive, (impostor, rebooted, legacy_impostor)))
    exp = service.get_or_create_experiment(ws.store, "crash")
    mine = service.create_run(ws.store, exp, owner=me)
    earlier = service.create_run(ws.store, exp, owner=impostor)
    before_boot = service.create_run(ws.store, exp, owner=rebooted)
    unowned = service.create_run(ws.store, exp)  # e.g. started through an API: never guessed
    assert sorted(service.mark_abandoned_runs(ws.store)) == sorted([earlier.id, before_boot.id])
    statuses = {r.id: r.status for r in service.get_runs(ws.store)}
    assert statuses == {
        mine.id: RunStatus.RUNNING,
        earlier.id: RunStatus.KILLED,
        before_boot.id: RunStatus.KILLED,
        unowned.id: RunStatus.RUNNING,
    }


def test_day_old_temp_files_are_removed_on_start_up(sqlite_settings: Settings) -> None:
    blobs = sqlite_settings.resolved_artifact_root()
    cache = sqlite_settings.home / "cache" / "packages" / ("ab" * 32)
    cache.mkdir(parents=True)
    blobs.mkdir(parents=True)
    day_ago = time.time() - 2 * 86_400
    old = [blobs / ".tmp-partial", cache / ".tmp-model"]
    new = [blobs / ".tmp-writing", cache / ".tmp-fetching"]
    kept = [blobs / "ab", cache / "model.skops"]
    for path in old + new + kept:
        path.write_bytes(b"x")
    for path in [*old, kept[1]]:
        os.utime(path, (day_ago, day_ago))
    ws = Workspace(sqlite_settings)
    ws.store  # noqa: B018 - start-up
    ws.close()
    assert [p.exists() for p in old + new + kept] == [False, False, True, True, True, True]
