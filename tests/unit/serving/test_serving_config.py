"""Server files: models, deployments and per-model batching, with precise errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelpilot.errors import InvalidInput
from modelpilot.serving.config import parse_server_file, read_server_file, with_model_batching
from modelpilot.serving.settings import BatchingOptions, ServingSettings


def test_a_server_file_lists_models_deployments_and_batching_per_model(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(
        "models:\n"
        "  - churn@champion\n"
        "  - ref: fraud/3\n"
        "    max_batch_size: 16\n"
        "    max_wait_ms: 2\n"
        "  - ref: big@prod\n"
        "    batching: false\n"
        "deployments: [churn-prod]\n"
    )
    server_file = read_server_file(path)
    assert server_file.models == ("churn@champion", "fraud/3", "big@prod")
    assert server_file.deployments == ("churn-prod",)
    settings = with_model_batching(
        ServingSettings(max_wait_ms=1.0, queue_limit=100), server_file.batching
    )
    assert settings.batching_for("fraud") == BatchingOptions(True, 16, 2.0, 100)
    assert settings.batching_for("big") == BatchingOptions(False, 64, 1.0, 100)
    assert settings.batching_for("churn") == BatchingOptions(True, 64, 1.0, 100)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1], r"s\.yaml: expected a mapping with 'models' and/or 'deployments' lists; got \[1\]"),
        ({"model": []}, "expected a mapping with 'models'"),
        ({"models": "churn"}, "'models' must be a list; got 'churn'"),
        ({"models": [{"max_wait_ms": 1}]}, r"models\[0\]: expected a model reference"),
        (
            {"models": ["a", {"ref": "b", "max_batch": 2}]},
            r"models\[1\]: unknown key 'max_batch'\. Did you mean 'max_batch_size'\?",
        ),
        (
            {"models": [{"ref": "b", "max_batch_size": 0}]},
            r"max_batch_size must be a whole number >= 1; got 0",
        ),
        ({"models": [{"ref": "b", "max_wait_ms": "5"}]}, "max_wait_ms must be a number >= 0"),
        ({"models": [{"ref": "b", "batching": "no"}]}, "batching must be true or false; got 'no'"),
        ({"models": [{"ref": "b", "queue_limit": True}]}, "queue_limit must be a whole number"),
    ],
)
def test_mistakes_name_the_file_entry_key_and_what_is_accepted(data: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_server_file(data, "s.yaml")


def test_a_missing_or_broken_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="No server file at"):
        read_server_file(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("models: [unclosed\n")
    with pytest.raises(InvalidInput, match="broken.yaml is not valid YAML"):
        read_server_file(broken)
