"""Drift detection speed and correctness: modelpilot vs Evidently, NannyML and a SciPy floor.

    python benchmarks/drift.py --setup                     # peers' venvs under .venvs/ (once)
    python benchmarks/drift.py                             # 100,000 and 1,000,000 rows
    python benchmarks/drift.py --sizes 100000 --tools modelpilot floor

Data (benchmarks/peers/drift/gen_data.py, seeded): 20 numeric columns of five shapes and 5
categorical ones; num_00..num_04 shifted by +0.2 standard deviations and cat_0's shares
changed (6 drifted columns, 19 not). Reference and current have the same number of rows.

Each tool runs in its own process (its own venv for the peers), one after the other; peak
memory is that process's maximum resident set (wait4), data loading included. Times are
the median of repeated runs after a warm-up (fewer repeats at 1M rows for the slow peers).
modelpilot is timed in two parts: ``fit`` (reference profile, done once per reference) and
``score`` (one window against the kept profile), plus the HTML report on its own.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT / "benchmarks" / "peers" / "drift"
VENVS = ROOT / ".venvs"
DATA = Path(os.environ.get("DRIFT_DATA", ROOT / "bench-results" / "drift-data"))
OUT = ROOT / "bench-results" / "drift"
PEER_VENVS = {
    "evidently": ("drift-evidently", ["evidently", "pandas<3"], "import evidently"),
    "nannyml": ("drift-nannyml", ["nannyml", "statsmodels"], "import nannyml"),
}
# Evidently and NannyML post usage analytics unless told not to; the floor needs nothing.
QUIET = {"NML_DISABLE_USAGE_LOGGING": "1", "DO_NOT_TRACK": "1", "PYTHONWARNINGS": "ignore"}


def setup() -> None:
    """Create each peer's venv from its pinned requirements (falls back to unpinned names)."""
    for tool, (name, loose, probe) in PEER_VENVS.items():
        python = VENVS / name / "bin" / "python"
        if python.exists() and _runs(python, probe):
            print(f"{tool}: ready in {python.parent.parent}")
            continue
        print(f"{tool}: creating {VENVS / name} …", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENVS / name)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q"]
        pinned = subprocess.run([*pip, "-r", str(PEERS / f"requirements-{tool}.txt")])
        if pinned.returncode != 0 or not _runs(python, probe):
            print(f"{tool}: pinned install failed; installing {' '.join(loose)}", flush=True)
            subprocess.run([*pip, *loose], check=False)
        print(f"{tool}: {'ready' if _runs(python, probe) else 'NOT importable'}")


def _runs(python: Path, code: str) -> bool:
    env = {**os.environ, **QUIET}
    return subprocess.run([str(python), "-c", code], env=env, capture_output=True).returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setup", action="store_true", help="create the peers' venvs and exit")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument(
        "--tools", nargs="+", default=["modelpilot", "floor", "nannyml", "evidently"]
    )
    parser.add_argument("--timeout-s", type=int, default=1800, help="per tool and size")
    args = parser.parse_args()
    if args.setup:
        setup()
        return
    OUT.mkdir(parents=True, exist_ok=True)
    results: dict[int, dict[str, dict[str, object]]] = {}
    for n in args.sizes:
        ensure_data(n)
        results[n] = {}
        for tool in args.tools:
            outcome = run_tool(tool, n, args.timeout_s)
            results[n][tool] = outcome
            print(f"  {tool:<10} n={n:>9,}: {summary_line(outcome)}", flush=True)
    target = OUT / f"results-{time.strftime('%Y%m%d-%H%M%S')}.json"
    target.write_text(json.dumps(results, indent=1, default=str))
    print_table(results, target)


def ensure_data(n: int) -> None:
    if (DATA / f"truth_{n}.json").exists():
        return
    print(f"generating {n:,} + {n:,} rows into {DATA} …", flush=True)
    subprocess.run(
        [sys.executable, str(PEERS / "gen_data.py"), str(n), str(DATA)],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def command(tool: str, n: int) -> tuple[list[str], dict[str, str]] | None:
    """The command line and extra environment for one tool, or None when not installed."""
    env = {"DRIFT_DATA": str(DATA), **QUIET}
    if tool == "modelpilot":
        return [sys.executable, str(ROOT / "benchmarks" / "drift_modelpilot.py"), str(n)], env
    if tool == "floor":  # numpy + scipy only: the project's own venv has both
        return [sys.executable, str(PEERS / "bench_floor.py"), str(n)], env
    name = PEER_VENVS[tool][0]
    python = VENVS / name / "bin" / "python"
    if not python.exists():
        return None
    if n >= 1_000_000:  # a single timed run: Evidently takes minutes per run at 1M rows
        env |= {"BENCH_REPEATS": "1", "BENCH_WARMUP": "0"}
    script = PEERS / f"bench_{tool}.py"
    extra = ["--no-html"] if tool == "evidently" else []
    return [str(python), str(script), str(n), *extra], env


def run_tool(tool: str, n: int, timeout_s: int) -> dict[str, object]:
    """Run one tool in its own process; its RESULT_JSON line plus wall time and peak RSS."""
    found = command(tool, n)
    if found is None:
        return {"error": "not installed (run: python benchmarks/drift.py --setup)"}
    argv, env = found
    log = OUT / f"{tool}_{n}.log"
    started = time.perf_counter()
    with log.open("w") as handle:
        proc = subprocess.Popen(
            argv, stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, **env}
        )
        deadline = started + timeout_s
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                return {"error": f"timed out after {timeout_s} s", "log": str(log)}
            time.sleep(0.2)
    wall_s = time.perf_counter() - started
    lines = [x for x in log.read_text().splitlines() if x.startswith("RESULT_JSON ")]
    if os.waitstatus_to_exitcode(status) != 0 or not lines:
        return {"error": f"exit {os.waitstatus_to_exitcode(status)}", "log": str(log)}
    result: dict[str, object] = json.loads(lines[-1].removeprefix("RESULT_JSON "))
    result["process_wall_s"] = round(wall_s, 1)
    result["peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)
    return result


def seconds(result: dict[str, object]) -> float | None:
    """The tool's timed drift work in seconds (modelpilot: fit + score)."""
    for key in (
        "fit_plus_score_s",
        "all_median_s",
        "fit_calculate_median_s",
        "run_plus_dict_median_s",
    ):
        if key in result:
            return float(result[key])  # type: ignore[arg-type]
    return None


def flagged(result: dict[str, object]) -> dict[str, object]:
    """The tool's verdict per column as scored against the truth (tp/fp/fn)."""
    for key in ("score", "score_bonferroni", "score_any_method"):
        if key in result:
            return result[key]  # type: ignore[return-value]
    return {}


def summary_line(result: dict[str, object]) -> str:
    if "error" in result:
        return f"ERROR {result['error']}"
    found = flagged(result)
    return (
        f"{seconds(result)} s, peak {result.get('peak_rss_mb')} MB, "
        f"tp/fp/fn {found.get('tp')}/{found.get('fp')}/{found.get('fn')}"
    )


def print_table(results: dict[int, dict[str, dict[str, object]]], target: Path) -> None:
    print("\nrows       tool        seconds   peak MB  TP/FP/FN  vs modelpilot (fit+score | score)")
    for n, tools in results.items():
        mine = tools.get("modelpilot", {})
        fit_score, score_only = seconds(mine), mine.get("score_median_s")
        for tool, result in tools.items():
            if "error" in result:
                print(f"{n:>9,}  {tool:<10}  {result['error']}")
                continue
            s, found = seconds(result), flagged(result)
            ratio = ""
            if tool != "modelpilot" and s and fit_score and score_only:
                ratio = f"{s / fit_score:7.1f}x | {s / float(str(score_only)):7.1f}x"
            elif tool == "modelpilot":
                ratio = f"fit {mine.get('fit_median_s')} s + score {score_only} s"
            tally = f"{found.get('tp')}/{found.get('fp')}/{found.get('fn')}"
            peak = result.get("peak_rss_mb")
            print(f"{n:>9,}  {tool:<10} {s or 0:>8.2f}  {peak:>8}  {tally:>8}  {ratio}")
    print(f"\nfull results: {target}; logs: {OUT}/<tool>_<n>.log")


if __name__ == "__main__":
    main()
