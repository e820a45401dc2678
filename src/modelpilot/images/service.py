"""Writing an image's build context: a model image from a registered version, or (through
the same :func:`write_plan`) the platform image.

The caller resolves the version and hands in what the context needs (the artifact store, the
model's logging policy, modelpilot's wheel); nothing here opens a store or reads settings.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelpilot.artifacts import ArtifactStore
from modelpilot.errors import InvalidInput
from modelpilot.images.context import (
    BuildPlan,
    ImageSpec,
    check_base,
    default_base,
    model_plan,
    render_dockerfile,
    write_image_json,
    write_requirements,
)
from modelpilot.images.requirements import Pin, image_requirements
from modelpilot.images.sbom import make_sbom, model_subject, sbom_json
from modelpilot.images.wheelhouse import fill_wheelhouse
from modelpilot.models.flavors import flavor_named
from modelpilot.models.package import read_manifest
from modelpilot.predictions.log_policy import LogPolicy
from modelpilot.registry.entities import ModelVersion
from modelpilot.serving.bundle import write_bundle
from modelpilot.version import __version__


@dataclass(frozen=True)
class ImageContext:
    """A written build context."""

    folder: Path
    plan: BuildPlan
    pins: tuple[Pin, ...]
    sbom: dict[str, Any]
    downloaded_bytes: int


def python_minor_of(environment: Mapping[str, Any] | None) -> str:
    """The Python minor version a package was made with: its run's, else this interpreter's.

    >>> python_minor_of({"python": "3.12.4"})
    '3.12'
    """
    found = str((environment or {}).get("python") or "")
    parts = found.split(".")
    if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
        return f"{parts[0]}.{parts[1]}"
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def check_flavor(version: ModelVersion) -> None:
    """Refuse a flavor an image cannot carry: one whose code is only referenced by the
    package (a python function names a module that is not in the package)."""
    flavor = flavor_named(version.flavor)
    if flavor.is_code_by_reference:
        raise InvalidInput(
            f"{version.ref} is a {version.flavor} model: its package names code by import "
            f"path ({', '.join(version.trusted_types) or 'a module'}) instead of holding it, "
            "so an image built from the package could not load it. Log the model with a "
            "flavor that saves the model itself (scikit-learn, xgboost, lightgbm, onnx).",
            field="model",
        )


def write_context(
    folder: Path,
    version: ModelVersion,
    artifacts: ArtifactStore,
    *,
    wheel: Path,
    cache_dir: Path,
    python_minor: str,
    base: str | None = None,
    log_policy: LogPolicy | None = None,
    deployment: str | None = None,
    strip: bool = True,
) -> ImageContext:
    """Write the build context of ``version`` into ``folder`` (new or empty); ``strip``
    False keeps the wheels as downloaded (:func:`write_plan`).

    Written in a temporary sibling folder and renamed at the end: a failure (a package that
    does not verify, a requirement without a wheel) leaves ``folder`` as it was.
    """
    check_flavor(version)
    chosen_base = base or default_base(python_minor)
    check_base(chosen_base, python_minor)
    _check_target(folder)
    manifest = read_manifest(artifacts, version.package_digest)
    pins = tuple(image_requirements(list(manifest.get("requirements", [])), python_minor))
    spec = ImageSpec(
        model=version.name,
        version=version.version,
        flavor=version.flavor,
        package_digest=version.package_digest,
        run_id=version.run_id,
        python_minor=python_minor,
        base=chosen_base,
        modelpilot_version=__version__,
        pins=pins,
        wheel_name=wheel.name,
        deployment=deployment,
    )
    plan = model_plan(spec)
    subject = {
        "model": version.name,
        "version": version.version,
        "package_digest": version.package_digest,
    }

    def payload(staging: Path) -> None:
        write_bundle(staging / "model", version, artifacts, log_policy=log_policy)

    return write_plan(
        folder,
        plan,
        pins,
        sbom_subject=model_subject(version.name, version.version, version.package_digest),
        image_subject=subject,
        wheel=wheel,
        cache_dir=cache_dir,
        payload=payload,
        strip=strip,
    )


def write_plan(
    folder: Path,
    plan: BuildPlan,
    pins: tuple[Pin, ...],
    *,
    sbom_subject: dict[str, Any],
    image_subject: dict[str, Any],
    wheel: Path,
    cache_dir: Path,
    payload: Callable[[Path], None],
    strip: bool = True,
) -> ImageContext:
    """Write any image's context: ``payload`` puts what the image serves into the staging
    folder first (so a package that does not verify stops before any download), then the
    requirements, wheels, modelpilot's wheel, SBOM, Dockerfile and ``image.json``. The wheels'
    native libraries are stripped of symbol tables unless ``strip`` is False (tests that only
    read the context skip the work).

    Written in a temporary sibling folder and renamed at the end: a failure leaves
    ``folder`` as it was.
    """
    _check_target(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        payload(staging)
        write_requirements(staging, pins)
        downloaded = fill_wheelhouse(
            (staging / "requirements.txt").read_text(),
            plan.python_minor,
            cache_dir / "wheelhouse",
            staging / "wheelhouse",
            strip=strip,
        )
        (staging / "runtime").mkdir()
        shutil.copyfile(wheel, staging / "runtime" / wheel.name)
        sbom = make_sbom(
            subject=sbom_subject,
            pins=pins,
            modelpilot_version=__version__,
            wheel_sha256=hashlib.sha256(wheel.read_bytes()).hexdigest(),
        )
        (staging / "sbom.cdx.json").write_text(sbom_json(sbom))
        (staging / "Dockerfile").write_text(render_dockerfile(plan))
        (staging / ".dockerignore").write_text("image.json\n")
        write_image_json(staging, plan, image_subject)
        _readable_by_all(staging)
        if folder.exists():
            folder.rmdir()  # empty, checked above
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ImageContext(folder, plan, pins, sbom, downloaded)


def _readable_by_all(folder: Path) -> None:
    """0644 files, 0755 folders: the image's non-root user reads what COPY puts there as root
    (blobs are written 0600), and the same modes keep Docker's layer cache keys stable."""
    folder.chmod(0o755)
    for path in folder.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)


def _check_target(folder: Path) -> None:
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InvalidInput(
            f"--context-only {folder} exists and is not an empty folder; give a new or empty "
            "folder (the context is written whole, never merged into other files).",
            field="context_only",
        )
