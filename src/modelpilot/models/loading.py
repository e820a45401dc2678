"""Safe model loading: fetch a package's verified files, rebuild the predictor, wrap it.

Nothing is unpickled. Each flavor loads its own native format. What may run is decided here,
on the loading side: the flavor's safe list plus the :class:`TrustPolicy` the caller builds
(from its own flags and the types the registry recorded for the version), never a field in
the package. File names in the manifest are plain names, and cached files are checked
against their digests on every load.
"""

from __future__ import annotations

import functools
import io
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.artifacts import ArtifactStore, sha256_file
from modelpilot.errors import InvalidInput, UnsafeModel
from modelpilot.models.flavors import Flavor, Predictor, TrustPolicy, flavor_named
from modelpilot.models.package import package_files, read_manifest
from modelpilot.models.signature import Signature
from modelpilot.models.steps import missing_text_marker


class LoadedModel:
    """A model ready to predict, validating inputs against its signature.

    ``predict`` accepts a DataFrame, an ndarray, a list of records or a dict of columns.
    ``predict_prepared`` skips validation for callers (the data plane) that already did it.
    """

    def __init__(
        self,
        predictor: Predictor,
        signature: Signature,
        manifest: dict[str, Any],
        *,
        name: str | None = None,
        version: int | None = None,
    ) -> None:
        self.predictor = predictor
        self.signature = signature
        self.manifest = manifest
        self.name = name
        self.version = version

    @property
    def flavor(self) -> str:
        """The flavor that saved the model."""
        return str(self.manifest["flavor"])

    @property
    def requirements(self) -> list[str]:
        """Pinned distributions the package recorded."""
        return list(self.manifest.get("requirements", []))

    @property
    def classes(self) -> list[Any] | None:
        """Class labels for classifiers."""
        return None if self.signature.classes is None else list(self.signature.classes)

    def prepare(self, data: object) -> Any:
        """Validate and convert caller data to the model's input."""
        return self.with_missing_text_as_trained(self.signature.coerce(data))

    @functools.cached_property
    def _missing_text(self) -> tuple[list[str], Any]:
        """The nullable text columns and the missing marker the model was fitted with."""
        if self.flavor != "sklearn" or self.signature.input_kind != "columns":
            return [], None
        columns = [s.name for s in self.signature.inputs if s.dtype == "string" and s.nullable]
        return columns, missing_text_marker(self.predictor) if columns else None

    def with_missing_text_as_trained(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with each missing text value (a JSON null arrives as None) written as the
        marker the model was fitted with (:func:`missing_text_marker`): a pipeline fitted on
        a CSV imputes NaN, and read None as a category it never saw (a wrong answer or 500)."""
        columns, marker = self._missing_text
        for name in columns:
            values = frame[name]
            missing = values.isna()
            if missing.any():
                frame[name] = values.where(~missing, marker).astype(object)
        return frame

    def predict(self, data: object) -> np.ndarray:
        """Validated predictions for a batch."""
        return self.predict_prepared(self.prepare(data))

    def predict_proba(self, data: object) -> np.ndarray:
        """Validated class probabilities (classifiers only)."""
        return self.predict_proba_prepared(self.prepare(data))

    def predict_prepared(self, inputs: Any) -> np.ndarray:
        """Predictions for input that already passed :meth:`prepare`."""
        return np.asarray(self.predictor.predict(inputs))

    def predict_proba_prepared(self, inputs: Any) -> np.ndarray:
        """Probabilities for input that already passed :meth:`prepare`."""
        proba = getattr(self.predictor, "predict_proba", None)
        if proba is None or not self.signature.is_classifier:
            raise InvalidInput(
                f"Model {self.display_name} is not a classifier: it has no predict_proba.",
                field="predict_proba",
            )
        return np.asarray(proba(inputs))

    def input_example(self, artifacts: ArtifactStore) -> pd.DataFrame | np.ndarray | None:
        """The example stored with the package, if any."""
        digest = self.manifest.get("input_example")
        if not digest:
            return None
        data = artifacts.get_bytes(digest)
        if self.signature.input_kind == "tensor":
            return np.asarray(np.load(io.BytesIO(data), allow_pickle=False))
        return pd.read_parquet(io.BytesIO(data))

    @property
    def display_name(self) -> str:
        """``name/version`` when known."""
        return f"{self.name}/{self.version}" if self.name else "(unregistered)"

    def __repr__(self) -> str:
        return f"LoadedModel({self.display_name}, flavor={self.flavor})"


def load_package(
    artifacts: ArtifactStore,
    digest: str,
    *,
    trust: TrustPolicy | None = None,
    cache_dir: Path | None = None,
    name: str | None = None,
    version: int | None = None,
) -> LoadedModel:
    """Load the package stored under ``digest``, constructing only what ``trust`` allows.

    With ``cache_dir``, files are kept in ``cache_dir/<digest>`` between loads and each one
    is re-hashed on every load (a changed file is fetched again); without it, they go to a
    temporary folder.
    """
    manifest = read_manifest(artifacts, digest)
    files = package_files(manifest, digest)
    flavor = flavor_named(manifest["flavor"])
    where = f"{name}/{version}" if name else f"package {digest[:12]}…"
    policy = trust or TrustPolicy()
    if cache_dir is not None:
        folder = cache_dir / digest
        _materialise(artifacts, files, folder)
        predictor = _load(flavor, folder, manifest, policy, where)
    else:
        with tempfile.TemporaryDirectory(prefix="modelpilot-load-") as tmp:
            _materialise(artifacts, files, Path(tmp))
            predictor = _load(flavor, Path(tmp), manifest, policy, where)
    signature = Signature.from_dict(manifest["signature"])
    return LoadedModel(predictor, signature, manifest, name=name, version=version)


def _load(
    flavor: Flavor, folder: Path, manifest: dict[str, Any], trust: TrustPolicy, where: str
) -> Predictor:
    try:
        return flavor.load(folder, manifest.get("flavor_meta", {}), trust)
    except UnsafeModel as exc:
        raise UnsafeModel(f"Refusing to load {where}: {exc.message}", field=exc.field) from exc


def _materialise(artifacts: ArtifactStore, files: dict[str, str], folder: Path) -> None:
    """Make ``folder`` hold exactly the manifest's bytes: keep verified copies, fetch the rest.

    Hashing every cached file on every load is what makes the cache safe to share: a file
    replaced after the first load is fetched again from the (verified) artifact store.
    """
    folder.mkdir(parents=True, exist_ok=True)
    root = folder.resolve()
    for filename, file_digest in files.items():
        target = folder / filename
        if target.is_symlink() or (target.exists() and not target.is_file()):
            _remove(target)
        if target.resolve().parent != root:
            raise UnsafeModel(
                f"Refusing to write {filename!r} outside the package folder {folder}.",
                field="package",
            )
        if target.is_file() and sha256_file(target) == file_digest:
            continue
        artifacts.fetch_to(file_digest, target)


def _remove(path: Path) -> None:
    """Remove a link or folder that stands where a package file belongs."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
