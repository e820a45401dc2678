"""The platform's own image: ``modelpilot package image modelpilot --tag modelpilot:0.1.0``.

One image for the control plane (``modelpilot server``, the default command), the agent
(``docker run IMAGE agent``) and data planes (``docker run IMAGE serve churn-prod``): every
runtime dependency of modelpilot (the ``s3`` extra too, for artifacts in a bucket; never the
test or development tools), modelpilot from the same wheel as a model image, the same
non-root user, home and layers. It is rendered by the model image's
:func:`~modelpilot.images.context.render_dockerfile` and written by
:func:`~modelpilot.images.service.write_plan`; only the payload (nothing but the SBOM), the
entry point, the health route and the labels differ.
"""

from __future__ import annotations

from pathlib import Path

from modelpilot.errors import InvalidInput
from modelpilot.images.context import HOME_DIR, SBOM_PATH, BuildPlan, check_base
from modelpilot.images.requirements import SELF, image_requirements
from modelpilot.images.sbom import platform_subject
from modelpilot.images.service import ImageContext, write_plan
from modelpilot.version import __version__

# The name that means the platform, not a registered model (a model called modelpilot is
# packaged as modelpilot/4 or modelpilot@champion).
PLATFORM_REF = "modelpilot"
SERVER_PORT = 5000
HEALTH_ROUTE = "/health"
DEFAULT_EXTRAS = ("s3",)
# Extras an image never carries: the test suite's tools.
_NEVER = frozenset({"test"})


def platform_plan(base: str, python_minor: str, wheel_name: str) -> BuildPlan:
    """The build plan of the platform image."""
    check_base(base, python_minor)
    description = "modelpilot: control plane (server), agent and data plane (serve)"
    labels = {
        "org.opencontainers.image.title": "modelpilot",
        "org.opencontainers.image.version": __version__,
        "org.opencontainers.image.description": description,
        "org.opencontainers.image.base.name": base,
        "org.opencontainers.image.licenses": "Apache-2.0",
        "io.modelpilot.modelpilot-version": __version__,
        "io.modelpilot.python": python_minor,
        "io.modelpilot.sbom": SBOM_PATH,
    }
    return BuildPlan(
        base=base,
        python_minor=python_minor,
        modelpilot_version=__version__,
        wheel_name=wheel_name,
        environment={"MODELPILOT_HOME": HOME_DIR},
        labels=labels,
        entrypoint=["modelpilot"],
        command=["server", "--host", "0.0.0.0", "--port", str(SERVER_PORT)],
        port=SERVER_PORT,
        ready_route=HEALTH_ROUTE,
        payload=(("sbom.cdx.json", SBOM_PATH),),
        # the server's app and the data plane import, as the image's user
        check="python3 -c 'import modelpilot.server.app, modelpilot.serving.server' && "
        "modelpilot version",
    )


def check_extras(extras: tuple[str, ...], known: tuple[str, ...]) -> None:
    """Refuse an extra modelpilot does not declare, or the test tools.

    >>> check_extras(("s3",), ("s3", "ml", "test"))
    >>> check_extras(("test",), ("s3", "test"))
    Traceback (most recent call last):
    modelpilot.errors.InvalidInput: --extra test is not an extra an image can carry; modelpilot's are: s3.
    """  # noqa: E501
    allowed = [e for e in known if e not in _NEVER]
    for extra in extras:
        if extra not in allowed:
            raise InvalidInput(
                f"--extra {extra} is not an extra an image can carry; modelpilot's are: "
                f"{', '.join(allowed)}.",
                field="extra",
            )


def write_platform_context(
    folder: Path,
    *,
    base: str,
    python_minor: str,
    wheel: Path,
    cache_dir: Path,
    extras: tuple[str, ...] = DEFAULT_EXTRAS,
    strip: bool = True,
) -> ImageContext:
    """Write the platform image's build context into ``folder`` (new or empty)."""
    from importlib import metadata

    check_extras(extras, tuple(metadata.metadata(SELF).get_all("Provides-Extra") or ()))
    plan = platform_plan(base, python_minor, wheel.name)
    pins = tuple(image_requirements([], python_minor, serving_only=False, extras=extras))
    return write_plan(
        folder,
        plan,
        pins,
        sbom_subject=platform_subject(__version__),
        image_subject={"image": "platform", "version": __version__, "extras": list(extras)},
        wheel=wheel,
        cache_dir=cache_dir,
        payload=lambda staging: None,
        strip=strip,
    )


__all__ = ["PLATFORM_REF", "platform_plan", "write_platform_context"]
