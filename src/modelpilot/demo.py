"""``make demo``: the modelpilot loop on the embedded defaults (SQLite + a local folder).

Generates a churn dataset, trains two tracked models, versions the data, registers both,
crowns a champion, loads it back and predicts, and prints the lineage; serves a canary over
HTTP that the rollout controller promotes, and monitors it; then lets the continuous-training
loop run by itself (:mod:`modelpilot.demo_loop`): drift, alert, retraining, gate, canary,
promotion, and a worse retraining stopped at the gate. It tells the story as it goes.
"""

from __future__ import annotations

import time

import httpx
import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from threadpoolctl import threadpool_limits

import modelpilot as mp
from modelpilot.demo_data import make_churn
from modelpilot.demo_loop import continuous_training, free_port, start_server, wait_ready

CATEGORICAL = ["region", "plan", "gender"]
TARGET = "churned"


def build_model(max_depth: int, learning_rate: float) -> Pipeline:
    """One-hot categories, pass numbers through, gradient boosting on top."""
    encode = ColumnTransformer(
        [("categories", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)],
        remainder="passthrough",
    )
    booster = HistGradientBoostingClassifier(
        max_depth=max_depth, learning_rate=learning_rate, max_iter=150, random_state=0
    )
    return Pipeline([("encode", encode), ("model", booster)])


def main() -> None:
    """Run the demo from a clean or existing home folder."""
    threadpool_limits(1)  # see demo_loop.ONE_THREAD
    console = Console()
    ws = mp.workspace()
    console.rule("[bold]modelpilot demo")
    console.print(f"Home: {ws.settings.home}  (store {ws.settings.resolved_store_uri()})")

    data = make_churn(20_000, seed=7)
    train, test = train_test_split(data, test_size=0.25, random_state=0, stratify=data[TARGET])
    x_train, y_train = train.drop(columns=TARGET), train[TARGET]
    x_test, y_test = test.drop(columns=TARGET), test[TARGET]
    console.print(f"1. Generated {len(data):,} customers ({data[TARGET].mean():.0%} churned).")

    versions = []
    for depth, lr in ((3, 0.1), (6, 0.05)):
        started = time.perf_counter()
        with mp.start_run(experiment="churn", name=f"hgb-depth{depth}") as run:
            mp.log_params({"max_depth": depth, "learning_rate": lr, "max_iter": 150})
            train_version = mp.log_dataset(train, name="churn-train")
            test_version = mp.log_dataset(test, name="churn-test", role="evaluation")
            model = build_model(depth, lr).fit(x_train, y_train)
            booster = model.named_steps["model"]
            for step, loss in enumerate(booster.train_score_):
                mp.log_metric("train_loss", float(-loss), step=step)
            proba = model.predict_proba(x_test)[:, 1]
            mp.log_metrics(
                {
                    "auc": roc_auc_score(y_test, proba),
                    "accuracy": accuracy_score(y_test, proba > 0.5),
                }
            )
            mv = mp.log_model(
                model,
                name="churn",
                input_example=x_train.head(5),
                datasets={"training": train_version, "test": test_version},
                description=f"HistGradientBoosting depth {depth}",
            )
        versions.append(mv)
        console.print(
            f"2. Run {run.id[:8]} trained depth={depth} in {time.perf_counter() - started:.1f}s: "
            f"AUC {mv.metrics['auc']:.3f} → registered [bold]churn/{mv.version}[/bold]"
        )

    best = max(versions, key=lambda v: v.metrics["auc"])
    other = next(v for v in versions if v is not best)
    mp.set_alias("churn", "champion", best.version)
    mp.set_alias("churn", "challenger", other.version)
    console.print(
        f"3. churn@champion → version {best.version}; churn@challenger → version {other.version}"
    )

    champion = mp.load_model("churn@champion")
    new_customers = make_churn(5, seed=99).drop(columns=TARGET)
    proba = champion.predict_proba(new_customers)[:, 1]
    table = Table(title="4. Champion scores five new customers")
    for col in ("tenure", "plan", "calls", "churn risk"):
        table.add_column(col)
    for (_, row), p in zip(new_customers.iterrows(), proba, strict=True):
        table.add_row(f"{row.tenure_months:.0f} mo", row.plan, str(row.support_calls), f"{p:.0%}")
    console.print(table)

    top = mp.search_runs(
        "churn", filter="metrics.auc > 0.5", order_by=["metrics.auc DESC"], max_results=3
    )
    console.print(
        "5. Best runs so far: "
        + ", ".join(
            f"{r['name']} (AUC {r['metrics.auc']:.3f})" for r in top.to_dict(orient="records")
        )
    )
    console.print("6. Lineage of the champion:")
    console.print(str(mp.lineage("churn@champion")), highlight=False)
    history = mp.get_metric_history(versions[-1].run_id or "", "train_loss")
    console.print(
        f"   train_loss: {len(history)} points, {history[0].value:.3f} → {history[-1].value:.3f}"
    )
    assert np.all((proba >= 0) & (proba <= 1))
    serve_and_monitor(console, best.version, other.version)
    continuous_training(console, best.version)
    console.rule("[green]demo finished")


def serve_and_monitor(console: Console, champion: int, challenger: int) -> None:
    """Deploy the champion, canary the challenger, serve real HTTP traffic step by step while
    the rollout controller decides (advance, then promote, unless a guard fails), monitor."""
    from modelpilot import release
    from modelpilot.predictions import log_folder
    from modelpilot.release.evidence import PredictionLogStats
    from modelpilot.release.rollout import tick

    ws = mp.workspace()
    name = f"churn-demo-{int(time.time())}"
    mp.create_deployment(name, f"churn/{champion}")
    policy = release.RolloutPolicy(
        steps=(25, 100), min_requests_per_step=50, min_seconds_per_step=0
    )
    mp.canary(name, f"churn/{challenger}", 25, policy=policy, reason="demo canary")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(name, port)
    try:
        wait_ready(url, server)
        source = PredictionLogStats(log_folder(ws.settings.home))
        with httpx.Client() as client:
            for window in range(4):  # bounded: two steps need two windows of traffic
                traffic = make_churn(300, seed=123 + window, shift=0.6)  # a changed population
                shares = _serve(client, url, name, traffic.drop(columns=TARGET))
                decision = tick(ws.deployments, name, source)
                console.print(
                    f"7.{window + 1} Served 300 HTTP requests on {url} (stable "
                    f"{shares['stable']}, canary {shares['canary']}); rollout controller: "
                    f"[bold]{decision.action}[/bold] ({decision.reason})"
                )
                if decision.action in ("promote", "rollback"):
                    break
                _wait_for_revision(client, url, name, ws.deployments.get_deployment(name).revision)
        result = ws.monitoring.run(name, window_s=3600)
        drifted = result.drift.drifted_columns if result.drift is not None else []
        figures = result.figures
        console.print(
            f"8. Monitoring: drifted columns {', '.join(drifted) or 'none'}; error rate "
            f"{figures.get('ops.error_rate', 0):.1%}, p99 {figures.get('ops.p99_ms', 0):.1f} ms"
        )
    finally:
        server.terminate()
        server.wait(timeout=60)


def _serve(client: httpx.Client, url: str, name: str, rows: pd.DataFrame) -> dict[str, int]:
    """Send one request per row, flush the server's prediction log, count the variants."""
    replies = [
        client.post(f"{url}/predict/{name}", json=[row]).json()
        for row in rows.to_dict(orient="records")
    ]
    client.post(f"{url}/admin/flush")
    return {v: sum(r["variant"] == v for r in replies) for v in ("stable", "canary")}


def _wait_for_revision(client: httpx.Client, url: str, name: str, revision: int) -> None:
    """Wait until the server routes by the controller's new revision (it polls the store)."""
    deadline = time.monotonic() + 30
    while client.get(f"{url}/deployments/{name}").json()["revision"] != revision:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the demo server did not pick up revision {revision} in 30 s")
        time.sleep(0.05)  # polling the server's snapshot, bounded by the deadline


if __name__ == "__main__":
    main()
