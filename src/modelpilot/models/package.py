"""Model packages: a flavor's files, the signature, the requirements and an input example.

A package is a JSON manifest stored as a blob; it names each file by digest. Its own digest
identifies the package, so two identical models share one package and one copy of the bytes.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.artifacts import ArtifactStore
from modelpilot.artifacts.base import check_digest
from modelpilot.errors import InvalidInput, ModelpilotError, UnsafeModel, shown
from modelpilot.models.flavors import Flavor, class_labels, detect_flavor
from modelpilot.models.signature import InputDomain, Signature, infer_signature, to_frame
from modelpilot.models.steps import missing_text_marker
from modelpilot.tracking.environment import pinned

PACKAGE_FORMAT = "modelpilot-package/1"
# One path segment; "." and ".." are refused separately. Anything else in a manifest could
# write outside the cache folder when joined to it (issue: hardening, item 2).
_PLAIN_FILE_NAME = re.compile(r"[A-Za-z0-9._-]+")


@dataclass(frozen=True)
class PackageInfo:
    """What :func:`build_package` stored."""

    digest: str
    flavor: str
    signature: Signature
    requirements: list[str]
    size_bytes: int
    manifest: dict[str, Any]
    trusted_types: tuple[str, ...] = ()


def build_package(
    model: object,
    artifacts: ArtifactStore,
    *,
    input_example: object = None,
    signature: Signature | None = None,
    trusted_types: Sequence[str] = (),
    domain_from: Callable[[Signature], InputDomain | None] | None = None,
) -> PackageInfo:
    """Save ``model`` in its flavor's native format and store the package.

    The input example is checked against the model (columns it was fitted on, a trial
    prediction) so a package that cannot serve is refused at log time, not in production.
    ``PackageInfo.trusted_types`` lists what loading will need beyond the loader's defaults
    and the caller vouched for now (``trusted_types``, or the import path of a python
    function the caller handed over itself); the registry records it on the version row,
    never in the package.

    ``domain_from`` gives the input domain to record from the final signature (the training
    data's, see ``registry.roles.training_domain``); without it, or when it gives None, the
    input example's is kept. Either way missing values are checked in nullable columns only.
    The domain is part of the manifest, so of the package's digest: the same model logged
    with other training data is another package.
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
        # (a raw XGBoost Booster is tried through the adapter it will serve behind)
        trial = getattr(flavor, "predictor_for", lambda m: m)(model)
        output = _trial_predict(trial, input_example, flavor)
        inferred = infer_signature(input_example, output, class_labels(model))
        signature = signature or _nullable_where_the_model_copes(
            trial, input_example, inferred, flavor
        )
    assert signature is not None
    signature = _with_domain(signature, None if domain_from is None else domain_from(signature))
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
        needed = flavor.untrusted_types(folder, meta)
        size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    example_digest = _store_example(artifacts, input_example)
    needs = (*flavor.requirements, *meta.get("requirements", ()), "pandas", "modelpilot")
    requirements = pinned(list(dict.fromkeys(needs)))
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
    vouched = tuple(t for t in needed if flavor.is_code_by_reference or t in set(trusted_types))
    return PackageInfo(digest, flavor.name, signature, requirements, size, manifest, vouched)


def read_manifest(artifacts: ArtifactStore, digest: str) -> dict[str, Any]:
    """The manifest of a stored package."""
    manifest: dict[str, Any] = json.loads(artifacts.get_bytes(digest))
    if manifest.get("format") != PACKAGE_FORMAT:
        raise InvalidInput(f"Blob {digest[:12]}… is not a modelpilot model package.")
    return manifest


def package_files(manifest: dict[str, Any], digest: str) -> dict[str, str]:
    """The manifest's ``{file name: digest}``, refused unless every name is a plain file name.

    Checked before anything is written, so a crafted manifest (``../evil.py``, an absolute
    path) cannot place a file outside the folder it is loaded into. The flavor's own
    ``file`` must be one of these files.

    >>> package_files({"files": {"../evil.py": "0" * 64}}, "f" * 64)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    modelpilot.errors.UnsafeModel: ...file name '../evil.py', which is not a plain file name...
    """
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise UnsafeModel(f"The manifest of package {digest[:12]}… has no file table.")
    for name, file_digest in files.items():
        _check_file_name(name, digest)
        check_digest(str(file_digest))
    flavor_file = manifest.get("flavor_meta", {}).get("file")
    if flavor_file is not None:
        _check_file_name(flavor_file, digest)
        if flavor_file not in files:
            raise UnsafeModel(
                f"Package {digest[:12]}… loads {shown(flavor_file)}, which is not one of its "
                f"files: {', '.join(sorted(files)) or 'none'}. Re-log the model with "
                "mp.log_model.",
                field="package",
            )
    return {str(name): str(d) for name, d in files.items()}


def _check_file_name(name: object, digest: str) -> None:
    if not isinstance(name, str) or name in (".", "..") or _PLAIN_FILE_NAME.fullmatch(name) is None:
        raise UnsafeModel(
            f"Refusing to load package {digest[:12]}…: its manifest has file name "
            f"{shown(name, limit=200)}, which is not a plain file name (expected one path "
            "segment of [A-Za-z0-9._-], not '.' or '..'). modelpilot never writes such a "
            "package; re-log the model with mp.log_model.",
            field="package",
        )


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


_MAX_PROBED_COLUMNS = 200  # one trial prediction per column when they cannot all go at once


def _nullable_where_the_model_copes(
    model: object, example: object, signature: Signature, flavor: Flavor
) -> Signature:
    """Float and text inputs the model predicts through when missing are nullable.

    An example of five clean rows says nothing about missing values, while an imputer, a
    tree ensemble or an encoder with ``handle_unknown`` handles them: refusing null there
    would refuse real traffic (the model's own training data, often). So each such column is
    tried missing on one row of the example (all at once first); where the model still
    answers with finite numbers, callers may send null. A text column is tried with the
    marker the model was fitted with (``steps.missing_text_marker``), as the data plane will
    send it. A model that fails on a missing value keeps the clear refusal.
    """
    predict = getattr(model, "predict", None)
    candidates = [
        s.name
        for s in signature.inputs
        if not s.nullable and (s.dtype.startswith("float") or s.dtype == "string")
    ]
    if predict is None or not isinstance(example, pd.DataFrame) or not candidates:
        return signature
    text = {s.name for s in signature.inputs if s.dtype == "string"}
    text_marker = missing_text_marker(model) if flavor.name == "sklearn" else None
    row = example.head(1)

    def copes(columns: list[str]) -> bool:
        trial = row.copy()
        for name in columns:
            if name in text:
                trial[name] = pd.Series([text_marker], index=trial.index, dtype=object)
            else:
                trial[name] = np.nan
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                output = np.asarray(predict(trial))
        except Exception:
            return False
        return output.dtype.kind not in "fc" or bool(np.isfinite(output).all())

    if copes(candidates):
        nullable = set(candidates)
    elif len(candidates) <= _MAX_PROBED_COLUMNS:
        nullable = {name for name in candidates if copes([name])}
    else:
        nullable = set()
    if not nullable:
        return signature
    inputs = tuple(replace(s, nullable=True) if s.name in nullable else s for s in signature.inputs)
    return replace(signature, inputs=inputs)


def _with_domain(signature: Signature, domain: InputDomain | None) -> Signature:
    """``signature`` with ``domain`` (else its own) checking nulls of nullable columns only."""
    chosen = domain or signature.domain
    if chosen is None:
        return signature
    nullable = [s.name for s in signature.inputs if s.nullable]
    return replace(signature, domain=chosen.checking_nulls_of(nullable))


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
