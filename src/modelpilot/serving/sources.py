"""What a model server follows: a model source, a deployment feed, logging policies, tokens.

The data plane imports neither the SDK nor a workspace. The CLI (``modelpilot serve``) builds
a :class:`ControlPlane` from the services of its home, in this process on the store and the
artifact folder, or over HTTP to ``modelpilot server`` (``--server URI --token T``), and
the data plane runs the same way on both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from modelpilot.artifacts import ArtifactStore
from modelpilot.identity.cache import TokenAuthenticator
from modelpilot.models import LoadedModel, TrustPolicy, load_package
from modelpilot.predictions.bucket import LogBucket
from modelpilot.release.entities import Deployment

if TYPE_CHECKING:
    # store-backed modules (SQLAlchemy): a model image's data plane only names their seams
    from modelpilot.predictions.policy_service import LogPolicyService
    from modelpilot.registry.protocol import RegistryService


class ModelSource(Protocol):
    """Registered versions by reference: resolve one, load one."""

    def resolve(self, ref: str) -> tuple[str, int]:
        """``churn@champion`` -> ``("churn", 3)`` (NotFound naming what exists)."""

    def load(self, ref: str) -> LoadedModel:
        """Load the version a reference names, safely (trust decided on this side)."""


class DeploymentFeed(Protocol):
    """Deployments at their current revision (NotFound for an unknown name)."""

    def get_deployment(self, name: str) -> Deployment:
        """The current revision of ``name``."""


class RegistryModels:
    """A :class:`ModelSource` over a registry service and the artifact store it points into.

    Packages are verified and cached under ``cache_dir`` (the server's own home), as
    ``mp.load_model`` does: trusted are the flavor's safe types and the types recorded on
    the version at registration, never what the package claims.
    """

    def __init__(
        self, registry: RegistryService, artifacts: ArtifactStore, *, cache_dir: Path
    ) -> None:
        self.registry = registry
        self.artifacts = artifacts
        self.cache_dir = cache_dir

    def resolve(self, ref: str) -> tuple[str, int]:
        """The name and version ``ref`` names now."""
        mv = self.registry.get_version(ref)
        return mv.name, mv.version

    def load(self, ref: str) -> LoadedModel:
        """Resolve and load (the package from the cache when its digest is already there)."""
        mv = self.registry.get_version(ref)
        return load_package(
            self.artifacts,
            mv.package_digest,
            trust=TrustPolicy(tuple(mv.trusted_types)),
            cache_dir=self.cache_dir,
            name=mv.name,
            version=mv.version,
        )


@dataclass(frozen=True)
class ControlPlane:
    """Everything a model server reads from outside itself.

    ``hash_key`` gives the HMAC key of hashed log columns; it belongs to the server's own home
    (``MODELPILOT_PREDLOG_HASH_KEY`` or the key file), never to a remote control plane, and is
    read only once a policy hashes something. ``tokens`` verifies callers of guarded routes
    (None: no token store, and then neither model control nor ``--require-token`` can start).
    ``where`` names the control plane in messages.
    """

    models: ModelSource
    deployments: DeploymentFeed
    policies: LogPolicyService
    hash_key: Callable[[], bytes]
    log_folder: Path
    tokens: TokenAuthenticator | None
    where: str
    # MODELPILOT_PREDICTIONS_URI: the log's segments are also shipped there (None: local only)
    log_bucket: LogBucket | None = None


__all__ = ["ControlPlane", "DeploymentFeed", "ModelSource", "RegistryModels"]
