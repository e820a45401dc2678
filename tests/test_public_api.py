"""The SDK's public names are a contract: changing them is a deliberate act."""

from __future__ import annotations

import modelpilot as mp

EXPECTED = {
    "ActiveRun",
    "Conflict",
    "CorruptArtifact",
    "DatasetVersion",
    "InvalidInput",
    "Lineage",
    "LoadedModel",
    "MetricPoint",
    "ModelVersion",
    "ModelpilotError",
    "NotFound",
    "RegisteredModel",
    "Run",
    "RunStatus",
    "Settings",
    "Signature",
    "Unavailable",
    "UnsafeModel",
    "Workspace",
    "__version__",
    "active_run",
    "delete_alias",
    "end_run",
    "flush",
    "get_dataset",
    "get_metric_history",
    "get_model_version",
    "get_run",
    "init",
    "lineage",
    "list_models",
    "load_dataset",
    "load_model",
    "log_artifact",
    "log_batch",
    "log_dataset",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "search_runs",
    "set_alias",
    "set_tag",
    "set_tags",
    "start_run",
    "tune",
    "update_model_card",
    "model_card",
    "dataset_card",
    "workspace",
}


def test_public_names_are_pinned() -> None:
    assert set(mp.__all__) == EXPECTED
    for name in mp.__all__:
        assert hasattr(mp, name), name
