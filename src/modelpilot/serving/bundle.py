"""A model bundle: one registered version, its verified package and its logging policy in a
folder, so a model server runs without a metadata store or a control plane.

``modelpilot package image`` writes one into a container image's build context;
``modelpilot serve --bundle DIR churn/4`` serves it. The folder holds ``model.json`` (this
module's format) and ``blobs/``, the package's blobs in the local artifact store's layout, so
loading verifies every byte as ``modelpilot serve`` does on a home. Trust (the types loading
may construct) travels as the registry recorded it at registration; the package still never
decides it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelpilot.artifacts import ArtifactStore
from modelpilot.artifacts.local import LocalArtifactStore
from modelpilot.errors import CorruptArtifact, InvalidInput, NotFound, shown
from modelpilot.models import LoadedModel, TrustPolicy, load_package
from modelpilot.models.package import package_files, read_manifest
from modelpilot.predictions import log_folder
from modelpilot.predictions.log_policy import Action, LogPolicy, PolicySet, load_hash_key
from modelpilot.registry.entities import ModelVersion
from modelpilot.registry.refs import parse_ref
from modelpilot.release.entities import Deployment
from modelpilot.serving.sources import ControlPlane

if TYPE_CHECKING:
    from modelpilot.predictions.policy_store import StoredPolicy  # the store's (SQLAlchemy)

BUNDLE_FORMAT = "modelpilot-bundle/1"
MANIFEST_NAME = "model.json"


@dataclass(frozen=True)
class BundledVersion:
    """What ``model.json`` records about the bundled version."""

    name: str
    version: int
    package_digest: str
    flavor: str
    aliases: tuple[str, ...] = ()
    trusted_types: tuple[str, ...] = ()
    run_id: str | None = None
    log_policy: dict[str, Any] | None = None
    blobs: tuple[str, ...] = field(default=())

    @property
    def ref(self) -> str:
        """``name/version``."""
        return f"{self.name}/{self.version}"


def write_bundle(
    folder: Path,
    version: ModelVersion,
    artifacts: ArtifactStore,
    *,
    log_policy: LogPolicy | None = None,
) -> BundledVersion:
    """Copy ``version``'s package into ``folder``, verifying every blob by its digest.

    A blob whose bytes do not match its digest raises CorruptArtifact naming the version, and
    ``folder`` is then not a bundle (no ``model.json`` is written).
    """
    store = LocalArtifactStore(folder / "blobs")
    digest = version.package_digest
    try:
        manifest_bytes = artifacts.get_bytes(digest)
        store.put_bytes(manifest_bytes)
        manifest = read_manifest(store, digest)
        digests = [digest, *package_files(manifest, digest).values()]
        if manifest.get("input_example"):
            digests.append(str(manifest["input_example"]))
        for blob in digests[1:]:
            artifacts.fetch_to(blob, store.path_for(blob))  # hashed on the way
    except CorruptArtifact as exc:
        raise CorruptArtifact(
            f"The package of {version.ref} does not verify: {exc.message} Nothing was packaged.",
            field="package",
        ) from exc
    bundled = BundledVersion(
        name=version.name,
        version=version.version,
        package_digest=digest,
        flavor=version.flavor,
        aliases=tuple(sorted(version.aliases)),
        trusted_types=tuple(version.trusted_types),
        run_id=version.run_id,
        log_policy=None if log_policy is None else log_policy.model_dump(mode="json"),
        blobs=tuple(sorted(set(digests))),
    )
    body = {"format": BUNDLE_FORMAT, **asdict(bundled)}
    (folder / MANIFEST_NAME).write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
    return bundled


def read_bundle(folder: Path) -> BundledVersion:
    """The bundled version in ``folder`` (InvalidInput when it is not a bundle)."""
    path = folder / MANIFEST_NAME
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInput(
            f"{folder} is not a model bundle: cannot read {path} ({exc}). A bundle is written "
            "by 'modelpilot package image'.",
            field="bundle",
        ) from exc
    if not isinstance(data, dict) or data.get("format") != BUNDLE_FORMAT:
        raise InvalidInput(
            f"{path} is not a {BUNDLE_FORMAT} file; got format "
            f"{shown(data.get('format') if isinstance(data, dict) else data)}.",
            field="bundle",
        )
    try:
        return BundledVersion(
            name=str(data["name"]),
            version=int(data["version"]),
            package_digest=str(data["package_digest"]),
            flavor=str(data["flavor"]),
            aliases=tuple(str(a) for a in data.get("aliases", ())),
            trusted_types=tuple(str(t) for t in data.get("trusted_types", ())),
            run_id=data.get("run_id"),
            log_policy=data.get("log_policy"),
            blobs=tuple(str(b) for b in data.get("blobs", ())),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"{path} is incomplete: {exc}.", field="bundle") from exc


class BundledModels:
    """A ModelSource that knows one version: ``name``, ``name/version`` and its aliases."""

    def __init__(self, folder: Path, *, cache_dir: Path) -> None:
        self.folder = folder
        self.cache_dir = cache_dir

    def resolve(self, ref: str) -> tuple[str, int]:
        """The bundled version when ``ref`` names it, else NotFound naming what is bundled."""
        bundled = read_bundle(self.folder)
        parsed = parse_ref(ref)
        names_it = parsed.name == bundled.name and (
            (parsed.version is None and parsed.alias is None)
            or parsed.version == bundled.version
            or (parsed.alias is not None and parsed.alias in bundled.aliases)
        )
        if not names_it:
            known = [bundled.ref, *(f"{bundled.name}@{a}" for a in bundled.aliases)]
            raise NotFound(
                f"Model {shown(ref)} is not in the bundle {self.folder}; it holds "
                f"{', '.join(known)} only.",
                field="model",
            )
        return bundled.name, bundled.version

    def load(self, ref: str) -> LoadedModel:
        """Load the bundled package, verified, trusting what the registry recorded."""
        name, version = self.resolve(ref)
        bundled = read_bundle(self.folder)
        return load_package(
            LocalArtifactStore(self.folder / "blobs"),
            bundled.package_digest,
            trust=TrustPolicy(bundled.trusted_types),
            cache_dir=self.cache_dir,
            name=name,
            version=version,
        )


class _NoDeployments:
    """A bundle serves its model only: every deployment name is unknown."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def get_deployment(self, name: str) -> Deployment:
        raise NotFound(
            f"No deployment {shown(name)}: the bundle {self.folder} serves one model version; "
            "to follow a deployment, serve with --server.",
            field="deployment",
        )


class _FixedPolicies:
    """The logging policy the model had when it was bundled; changed only by a new bundle."""

    def __init__(self, policies: PolicySet) -> None:
        self.policies = policies

    def set_policy(
        self,
        model: str,
        columns: Mapping[str, Action],
        *,
        deployment: str | None = None,
        retention_days: int | None = None,
    ) -> StoredPolicy:
        raise InvalidInput(
            "A bundle's logging policy is fixed when it is packaged; set it in the registry "
            "and package the image again.",
            field="policy",
        )

    def list_policies(self) -> list[StoredPolicy]:
        return []

    def policy_set(self, models: Iterable[str], deployments: Iterable[str]) -> PolicySet:
        wanted = set(models)
        return PolicySet({k: v for k, v in self.policies.models.items() if k in wanted})


def bundle_control_plane(folder: Path, home: Path, hash_secret: str | None = None) -> ControlPlane:
    """What ``modelpilot serve --bundle`` follows: the bundle, and ``home`` for its own state
    (package cache, prediction log, hashing key)."""
    bundled = read_bundle(folder)
    policies = PolicySet()
    if bundled.log_policy:
        policies = PolicySet({bundled.name: LogPolicy.model_validate(bundled.log_policy)})
    return ControlPlane(
        models=BundledModels(folder, cache_dir=home / "cache" / "packages"),
        deployments=_NoDeployments(folder),
        policies=_FixedPolicies(policies),
        hash_key=lambda: load_hash_key(home, hash_secret),
        log_folder=log_folder(home),
        tokens=None,
        where=f"the bundle {folder}",
    )


def check_bundle(folder: Path, ref: str, cache_dir: Path) -> str:
    """Load ``ref`` from the bundle and predict its input example: the image build's smoke
    step (``modelpilot serve --check``), so a library missing from the image or a model its
    libraries cannot read fails the build. Returns what was checked, as a sentence."""
    models = BundledModels(folder, cache_dir=cache_dir)
    loaded = models.load(ref)
    example = loaded.input_example(LocalArtifactStore(folder / "blobs"))
    if example is None:
        return f"{loaded.display_name} loads; its package has no input example to predict."
    predictions = loaded.predict(example)
    if loaded.signature.is_classifier:
        loaded.predict_proba(example)
    return f"{loaded.display_name} loads and predicts its input example ({len(predictions)} rows)."


__all__ = [
    "BundledModels",
    "BundledVersion",
    "bundle_control_plane",
    "check_bundle",
    "read_bundle",
    "write_bundle",
]
