"""``modelpilot package``: registered models packaged for deployment (container images)."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from modelpilot.cli.context import console, get_workspace
from modelpilot.errors import InvalidInput, shown
from modelpilot.version import __version__

if TYPE_CHECKING:
    from modelpilot.images.docker import BuiltImage
    from modelpilot.images.service import ImageContext

package_app = typer.Typer(
    help="Package registered models for deployment: container images.", no_args_is_help=True
)
# name[:tag], lower-case path components as Docker accepts them (registry host and port too)
_TAG = re.compile(
    r"(?:[a-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
)


@package_app.command("image")
def image(
    ref: str = typer.Argument(
        ...,
        help="The model version (churn/4, churn@champion), or modelpilot: the platform's own "
        "image (server, agent, data plane).",
    ),
    tag: str | None = typer.Option(
        None, "--tag", "-t", help="Image name and tag, e.g. churn:4 (needed to build)."
    ),
    base: str | None = typer.Option(
        None, "--base", help="Base image (default python:<the package's Python>-slim)."
    ),
    context_only: Path | None = typer.Option(
        None,
        "--context-only",
        help="Write the build context (Dockerfile, wheels, model, SBOM) to this new folder and "
        "stop: build it with docker, buildah or kaniko.",
    ),
    deployment: str | None = typer.Option(
        None,
        "--deployment",
        help="A data-plane image following this deployment from a control plane "
        "(MODELPILOT_SERVER_URI and MODELPILOT_TOKEN at run time) instead of serving REF alone.",
    ),
    wheel: Path | None = typer.Option(
        None,
        "--wheel",
        help="modelpilot's wheel to install (default: built from this source checkout).",
    ),
    network: str | None = typer.Option(
        None, "--network", help="Network mode of the build's steps (docker build --network)."
    ),
    extra: list[str] = typer.Option(
        [],
        "--extra",
        help="The platform image only: modelpilot's extras to install (default s3; "
        "repeat for several, e.g. --extra s3 --extra ml).",
    ),
    keep_symbols: bool = typer.Option(
        False,
        "--keep-symbols",
        help="Keep the symbol tables of the wheels' native libraries (by default they are "
        "stripped with this machine's strip, when it has one: a smaller image).",
    ),
) -> None:
    """Build a container image serving a model version, or the platform's own image (or
    write its build context)."""
    from modelpilot.images import docker
    from modelpilot.images.context import check_base, default_base
    from modelpilot.images.platform import PLATFORM_REF
    from modelpilot.images.service import python_minor_of, write_context
    from modelpilot.images.wheel import modelpilot_wheel

    if context_only is None and tag is None:
        raise InvalidInput(
            "Give --tag NAME:TAG to build an image (e.g. --tag churn:4), or --context-only DIR "
            "to write the build context only.",
            field="tag",
        )
    if tag is not None and _TAG.fullmatch(tag) is None:
        raise InvalidInput(
            f"Invalid image tag {shown(tag)}: expected name[:tag] in lower case, e.g. churn:4 "
            "or registry.example.com/team/churn:4.",
            field="tag",
        )
    if extra and ref != PLATFORM_REF:
        raise InvalidInput(
            f"--extra is for the platform image (modelpilot package image {PLATFORM_REF}); a "
            "model image installs what its flavor and the data plane need.",
            field="extra",
        )
    docker_cmd = None if context_only is not None else docker.require_daemon()
    if ref == PLATFORM_REF:
        _platform_image(
            tag, base, context_only, wheel, network, tuple(extra), docker_cmd, not keep_symbols
        )
        return
    ws = get_workspace()
    mv = ws.registry.get_version(ref)
    if deployment is not None:
        _check_deployment(deployment, mv.name)
    environment = ws.tracking.get_run(mv.run_id).environment if mv.run_id else None
    python_minor = python_minor_of(environment)
    check_base(base or default_base(python_minor), python_minor)  # before any slow step
    if docker_cmd is not None and base is not None:
        docker.check_base_python(docker_cmd, base, python_minor)
    cache = ws.settings.home / "cache" / "images"
    policy = ws.log_policies.policy_set([mv.name], []).models.get(mv.name)
    runtime_wheel = modelpilot_wheel(cache / "runtime", wheel)

    def write(folder: Path) -> ImageContext:
        return write_context(
            folder,
            mv,
            ws.artifacts,
            wheel=runtime_wheel,
            cache_dir=cache,
            python_minor=python_minor,
            base=base,
            log_policy=policy,
            deployment=deployment,
            strip=not keep_symbols,
        )

    built, result = _write_and_build(
        write, mv.ref, context_only, tag or f"{mv.name}:{mv.version}", docker_cmd, network
    )
    if result is None:
        return
    ws.registry.add_record(
        mv.ref,
        "image",
        {
            "tag": tag,
            "image_id": result.image_id,
            "size_bytes": result.size_bytes,
            "build_s": round(result.build_s, 2),
            "base": built.plan.base,
            "deployment": deployment,
        },
    )
    console.print(
        f"Built {tag} ({result.image_id}): {result.size_bytes / 2**20:.1f} MiB in "
        f"{result.build_s:.1f} s. Recorded on the model card of {mv.ref}.",
        highlight=False,
    )


def _platform_image(
    tag: str | None,
    base: str | None,
    context_only: Path | None,
    wheel: Path | None,
    network: str | None,
    extras: tuple[str, ...],
    docker_cmd: str | None,
    strip: bool,
) -> None:
    """``package image modelpilot``: the platform's image, through the model image's steps."""
    from modelpilot.config import Settings
    from modelpilot.images import docker
    from modelpilot.images.context import default_base
    from modelpilot.images.platform import DEFAULT_EXTRAS, write_platform_context
    from modelpilot.images.service import python_minor_of
    from modelpilot.images.wheel import modelpilot_wheel

    python_minor = python_minor_of(None)
    chosen = base or default_base(python_minor)
    if docker_cmd is not None and base is not None:
        docker.check_base_python(docker_cmd, base, python_minor)
    cache = Settings().home / "cache" / "images"  # no store: the platform is no version
    runtime_wheel = modelpilot_wheel(cache / "runtime", wheel)

    def write(folder: Path) -> ImageContext:
        return write_platform_context(
            folder,
            base=chosen,
            python_minor=python_minor,
            wheel=runtime_wheel,
            cache_dir=cache,
            extras=extras or DEFAULT_EXTRAS,
            strip=strip,
        )

    what = "the modelpilot platform image"
    _, result = _write_and_build(
        write, what, context_only, tag or f"modelpilot:{__version__}", docker_cmd, network
    )
    if result is not None:
        console.print(
            f"Built {result.tag} ({result.image_id}): {result.size_bytes / 2**20:.1f} MiB in "
            f"{result.build_s:.1f} s.",
            highlight=False,
        )


def _write_and_build(
    write: Callable[[Path], ImageContext],
    what: str,
    context_only: Path | None,
    tag: str,
    docker_cmd: str | None,
    network: str | None,
) -> tuple[ImageContext, BuiltImage | None]:
    """Write the context (to ``context_only``, or a scratch folder removed afterwards) and
    build it when there is a daemon to build with; the build is None for a context only."""
    from modelpilot.images import docker

    scratch = None if context_only else Path(tempfile.mkdtemp(prefix="modelpilot-image-"))
    folder = context_only or Path(str(scratch)) / "context"
    try:
        built = write(folder)
        console.print(
            f"Wrote the build context of {what} to {folder}: {len(built.pins)} pinned "
            f"requirements, base {built.plan.base}, Python {built.plan.python_minor}.",
            highlight=False,
        )
        if docker_cmd is None or context_only is not None:
            console.print(f"Build it with: docker build --tag {tag} {folder}", highlight=False)
            return built, None
        return built, docker.build(docker_cmd, folder, tag, network=network)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def _check_deployment(name: str, model: str) -> None:
    found = get_workspace().deployments.get_deployment(name)
    models = {v.model for v in found.config.variants}
    if model not in models:
        raise InvalidInput(
            f"Deployment {name!r} serves {', '.join(sorted(models)) or 'no model'}, not "
            f"{model!r}: package a version of a model the deployment serves.",
            field="deployment",
        )


def register(app: typer.Typer) -> None:
    """Attach ``package``."""
    app.add_typer(package_app, name="package")
