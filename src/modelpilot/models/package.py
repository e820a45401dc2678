"""Model packages: a flavor's files, the signature, the requirements and an input example.

A package is a JSON manifest stored as a blob; it names each file by digest. Its own digest
identifies the package, so two identical models share one package and one copy of the bytes.
"""

from __future__ import annotations

import io
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.artifacts import ArtifactStore
from modelpilot.errors import InvalidInput, ModelpilotError
from modelpilot.models.flavors import Flavor, class_labels, detect_flavor
from modelpilot.models.signature import Signature, infer_signature, to_frame
from modelpilot.tracking.environment import pinned

PACKAGE_FORMAT = "modelpilot-package/1"


@dataclass(frozen=True)
class PackageInfo:
    """What :func:`build_package` stored."""

    digest: str
    flavor: str
    signature: Signature
    requirements: list[str]
    size_bytes: int
    manifest: dict[str, Any]


def build_package(
    model: object,
    artifacts: ArtifactStore,
    *,
    input_example: object = None,
    signature: Signature | None = None,
) -> PackageInfo:
    """Save ``model`` in its flavor's native format and store the package.

    The input example is checked against the model (columns it was fitted on, a trial
    prediction) so a package that cannot serve is refused at log time, not in production.
    """
    flavor = detect_flavor(model)
    if input_example is None and signature is None:
        raise InvalidInput(
            "log_model needs an input_example (a few rows of real input) or an explicit "
            "signature, so callers can be validated against it.",
            field="input_example",
        )
    if input_example is not None:
        _check_feature_names(model, input_example)
        output = _trial_predict(model, input_example, flavor)
        inferred = infer_signature(input_example, output, class_labels(model))
        signature = signature or inferred
    assert signature is not None
    with tempfile.TemporaryDirectory(prefix="modelpilot-pkg-") as tmp:
        folder = Path(tmp)
        try:
            meta = flavor.save(model, folder)
        except ModelpilotError:
            raise
        except Exception as exc:
            raise InvalidInput(
                f"Cannot serialise the {type(model).__name__} model with the {flavor.name} "
                f"flavor: {exc}.",
                field="model",
            ) from exc
        files = {p.name: artifacts.put_file(p) for p in sorted(folder.iterdir()) if p.is_file()}
        size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    example_digest = _store_example(artifacts, input_example)
    requirements = pinned(list(dict.fromkeys((*flavor.requirements, "pandas", "modelpilot"))))
    manifest = {
        "format": PACKAGE_FORMAT,
        "flavor": flavor.name,
        "flavor_meta": meta,
        "files": files,
        "signature": signature.to_dict(),
        "requirements": requirements,
        "input_example": example_digest,
        "size_bytes": size,
    }
    digest = artifacts.put_bytes(json.dumps(manifest, sort_keys=True).encode())
    return PackageInfo(digest, flavor.name, signature, requirements, size, manifest)


def read_manifest(artifacts: ArtifactStore, digest: str) -> dict[str, Any]:
    """The manifest of a stored package."""
    manifest: dict[str, Any] = json.loads(artifacts.get_bytes(digest))
    if manifest.get("format") != PACKAGE_FORMAT:
        raise InvalidInput(f"Blob {digest[:12]}… is not a modelpilot model package.")
    return manifest


def _check_feature_names(model: object, example: object) -> None:
    fitted = getattr(model, "feature_names_in_", None)
    if fitted is None or not isinstance(example, pd.DataFrame):
        return
    fitted_names = [str(n) for n in fitted]
    columns = [str(c) for c in example.columns]
    if fitted_names != columns:
        missing = [c for c in fitted_names if c not in columns]
        extra = [c for c in columns if c not in fitted_names]
        detail = []
        if missing:
            detail.append(f"missing {missing}")
        if extra:
            detail.append(f"unexpected {extra}")
        if not detail:
            detail.append("same names in a different order")
        raise InvalidInput(
            "The input example's columns disagree with the data the model was fitted on: "
            f"{'; '.join(detail)}. Expected columns in this order: {fitted_names}. Pass "
            "input_example=X_train.head(5) from the same frame you trained on.",
            field="input_example",
        )


def _trial_predict(model: object, example: object, flavor: Flavor) -> Any:
    predict = getattr(model, "predict", None)
    if predict is None and callable(model):
        predict = model
    if predict is None:
        return None
    try:
        return np.asarray(predict(example))
    except Exception as exc:
        raise InvalidInput(
            f"The {flavor.name} model failed to predict on its input example: "
            f"{type(exc).__name__}: {exc}. The example must look like what callers will send.",
            field="input_example",
        ) from exc


def _store_example(artifacts: ArtifactStore, example: object) -> str | None:
    if example is None:
        return None
    buffer = io.BytesIO()
    if isinstance(example, np.ndarray):
        np.save(buffer, example, allow_pickle=False)
    else:
        frame = to_frame(example, [], where="input example")
        frame.rename(columns=str).to_parquet(buffer, index=False)
    return artifacts.put_bytes(buffer.getvalue())
