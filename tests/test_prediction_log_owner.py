"""The prediction log has one owner (``modelpilot.predictions``): nobody else builds its folder's
path or reads its segments by hand.

Before, ``home / "predictions"`` was built in eight places and the segments were read with
hand-written DuckDB SQL in five (monitoring, labels, the A/B report, rollout evidence, the SDK),
so a change of layout had to find them all.
"""

from __future__ import annotations

from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "modelpilot"
OWNER = SRC / "predictions"


def _outside_owner() -> list[Path]:
    return [p for p in sorted(SRC.rglob("*.py")) if OWNER not in p.parents]


def test_only_the_owner_builds_the_log_folder() -> None:
    builders = [
        str(p.relative_to(SRC)) for p in _outside_owner() if '/ "predictions"' in p.read_text()
    ]
    assert builders == [], "use modelpilot.predictions.log_folder(home)"


def test_only_the_owner_reads_segments() -> None:
    readers = [
        str(p.relative_to(SRC))
        for p in _outside_owner()
        if "seg-*.parquet" in p.read_text() or "read_parquet('{glob}'" in p.read_text()
    ]
    assert readers == [], "read the log through modelpilot.predictions.PredictionReader"
