"""The build context of a model image: everything ``docker build`` (or buildah, kaniko) needs.

Layout of ``DIR``::

    Dockerfile          the build, layers ordered from the slowest-changing to the fastest
    requirements.txt    every distribution of the requirements layer, pinned (modelpilot excluded)
    wheelhouse/         those distributions as wheels, so the build needs no package index
    runtime/            modelpilot's own wheel (see :mod:`modelpilot.images.wheel`)
    model/              the model bundle, verified by digest (:mod:`modelpilot.serving.bundle`)
    sbom.cdx.json       CycloneDX SBOM of what the image installs (also copied into the image)
    image.json          the labels, the base, the entry point: what was packaged, for tools

Layers: the requirements (a venv built in a first stage from ``wheelhouse/``, with the files
no served model reads removed, see :mod:`modelpilot.images.slim`, copied whole into the final
stage), then modelpilot's wheel, then the model. A new model version on the same requirements
changes only ``model/``, the SBOM and the labels, so Docker reuses every layer before them and
rebuilds in seconds. The last step runs ``modelpilot serve --check``: a model that does not
load or predict its input example in the image fails the build, not the first request.

The platform's own image (:mod:`modelpilot.images.platform`) is rendered by the same
:func:`render_dockerfile` from a :class:`BuildPlan`: only its payload, entry point, health
route and labels differ.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from modelpilot.errors import InvalidInput, shown
from modelpilot.images.requirements import Pin
from modelpilot.images.slim import (
    FLAVOR_MODULES,
    link_duplicates_command,
    load_check_command,
    prune_command,
    warm_imports_command,
)

APP_DIR = "/opt/modelpilot"
VENV = f"{APP_DIR}/venv"
BUNDLE_DIR = f"{APP_DIR}/model"
SBOM_PATH = f"{APP_DIR}/sbom.cdx.json"
HOME_DIR = "/var/lib/modelpilot"
# A numeric user: Kubernetes' runAsNonRoot can only verify a numeric USER.
USER_ID = 10001
PORT = 8080
READY_ROUTE = "/v2/health/ready"
# Official images: python:3.11-slim, docker.io/library/python:3.11.9-slim-bookworm, ...
_OFFICIAL_PYTHON = re.compile(r"(?:^|/)python:(?P<major>\d+)\.(?P<minor>\d+)(?:[.\-]|$)")


@dataclass(frozen=True)
class ImageSpec:
    """What an image holds and how it starts; ``deployment`` makes a data-plane image that
    follows that deployment from a control plane instead of serving the bundle."""

    model: str
    version: int
    flavor: str
    package_digest: str
    run_id: str | None
    python_minor: str
    base: str
    modelpilot_version: str
    pins: tuple[Pin, ...]
    wheel_name: str
    deployment: str | None = None
    serve_env: dict[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        """``name/version``."""
        return f"{self.model}/{self.version}"


@dataclass(frozen=True)
class BuildPlan:
    """What :func:`render_dockerfile` needs, for a model image or the platform image.

    ``payload`` is the context's folders and files copied last, as ``(source, target)``;
    ``check`` the shell command of the build's smoke step (run as the image's user);
    ``command`` the default arguments after the entry point (``CMD``); ``warm_imports`` the
    modules whose imports get bytecode (None: every module of the venv, for the platform).
    """

    base: str
    python_minor: str
    modelpilot_version: str
    wheel_name: str
    environment: dict[str, str]
    labels: dict[str, str]
    entrypoint: list[str]
    port: int
    ready_route: str
    payload: tuple[tuple[str, str], ...]
    check: str
    command: list[str] = field(default_factory=list)
    ready_port_variable: str | None = None
    warm_imports: tuple[str, ...] | None = None


def default_base(python_minor: str) -> str:
    """The slim official Python image of ``python_minor``.

    >>> default_base("3.11")
    'python:3.11-slim'
    """
    return f"python:{python_minor}-slim"


def check_base(base: str, python_minor: str) -> None:
    """Refuse a base whose tag names another Python minor version than the package's.

    Only official-style tags (``python:3.12-slim``) say their version; any other base is
    checked when it runs (the Dockerfile's first step, and before a Docker build).

    >>> check_base("python:3.12-slim", "3.11")
    Traceback (most recent call last):
    modelpilot.errors.InvalidInput: Base image 'python:3.12-slim' has Python 3.12, but the package was made with Python 3.11: choose a base with Python 3.11 (e.g. python:3.11-slim).
    """  # noqa: E501
    if not base or any(c.isspace() for c in base):
        raise InvalidInput(
            f"Invalid base image {shown(base)}: expected an image reference such as "
            f"{default_base(python_minor)}.",
            field="base",
        )
    match = _OFFICIAL_PYTHON.search(base)
    if match is not None:
        found = f"{match['major']}.{match['minor']}"
        if found != python_minor:
            raise_python_mismatch(base, found, python_minor)


def raise_python_mismatch(base: str, found: str, python_minor: str) -> None:
    """The error of a base with the wrong Python (named by its tag or found by running it)."""
    raise InvalidInput(
        f"Base image {shown(base)} has Python {found}, but the package was made with Python "
        f"{python_minor}: choose a base with Python {python_minor} (e.g. "
        f"{default_base(python_minor)}).",
        field="base",
    )


def labels(spec: ImageSpec) -> dict[str, str]:
    """The image's OCI labels with the model's lineage (no time: builds stay repeatable)."""
    found = {
        "org.opencontainers.image.title": spec.model,
        "org.opencontainers.image.version": str(spec.version),
        "org.opencontainers.image.description": (
            f"modelpilot model {spec.ref} ({spec.flavor})"
            + (f", data plane of deployment {spec.deployment}" if spec.deployment else "")
        ),
        "org.opencontainers.image.base.name": spec.base,
        "io.modelpilot.model": spec.model,
        "io.modelpilot.version": str(spec.version),
        "io.modelpilot.flavor": spec.flavor,
        "io.modelpilot.package-digest": f"sha256:{spec.package_digest}",
        "io.modelpilot.run-id": spec.run_id or "",
        "io.modelpilot.modelpilot-version": spec.modelpilot_version,
        "io.modelpilot.python": spec.python_minor,
        "io.modelpilot.sbom": SBOM_PATH,
    }
    if spec.deployment:
        found["io.modelpilot.deployment"] = spec.deployment
    return found


def entrypoint(spec: ImageSpec) -> list[str]:
    """``modelpilot serve`` on the bundled version, or on the followed deployment."""
    return ["modelpilot", "serve", spec.deployment or spec.ref]


def environment(spec: ImageSpec) -> dict[str, str]:
    """The data plane's settings as environment variables (``docker run -e`` overrides)."""
    env = {
        "MODELPILOT_HOME": HOME_DIR,
        "MODELPILOT_SERVE_HOST": "0.0.0.0",
        "MODELPILOT_SERVE_PORT": str(PORT),
        "MODELPILOT_SERVE_MAX_BATCH_SIZE": "64",
        "MODELPILOT_SERVE_MAX_WAIT_MS": "0",
        "MODELPILOT_SERVE_DURABILITY": "async",
        # typer's rich help imports pygments, which a model image leaves out (NOT_IMPORTED):
        # `--help` prints click's plain help instead
        "TYPER_USE_RICH": "0",
    }
    if spec.deployment is None:
        env["MODELPILOT_SERVE_BUNDLE"] = BUNDLE_DIR
    return env | spec.serve_env


def check_command(spec: ImageSpec) -> str:
    """The model image's smoke step: load and predict the bundled version, or (a data-plane
    image, whose models come from a control plane at run time) import the serving path."""
    if spec.deployment is None:
        return f"modelpilot serve --check {spec.ref}"
    return "python3 -c 'import modelpilot.cli.main, modelpilot.serving.server'"


def model_plan(spec: ImageSpec) -> BuildPlan:
    """The build plan of a model image."""
    return BuildPlan(
        base=spec.base,
        python_minor=spec.python_minor,
        modelpilot_version=spec.modelpilot_version,
        wheel_name=spec.wheel_name,
        environment=environment(spec),
        labels=labels(spec),
        entrypoint=entrypoint(spec),
        port=PORT,
        ready_route=READY_ROUTE,
        payload=(("model/", f"{BUNDLE_DIR}/"), ("sbom.cdx.json", SBOM_PATH)),
        check=check_command(spec),
        ready_port_variable="MODELPILOT_SERVE_PORT",
        warm_imports=serving_modules(spec.flavor),
    )


def serving_modules(flavor: str) -> tuple[str, ...]:
    """What a model image's entry point imports before its first request: the command, the
    data plane and the flavor's loader.

    >>> serving_modules("sklearn")[-1]
    'skops.io'
    """
    return ("modelpilot.cli.main", "modelpilot.serving.server", *FLAVOR_MODULES.get(flavor, ()))


def render_dockerfile(plan: BuildPlan) -> str:
    """The Dockerfile text; stable for the same plan (the layer cache depends on it)."""
    python_check = (
        "import sys; v = '%d.%d' % sys.version_info[:2]; sys.exit(0 if v == "
        f"'{plan.python_minor}' else 'modelpilot: base image {plan.base} has Python ' + v + "
        f"', but the package was made with Python {plan.python_minor}')"
    )
    port = (
        f"os.environ.get('{plan.ready_port_variable}', '{plan.port}')"
        if plan.ready_port_variable
        else f"'{plan.port}'"
    )
    health = (
        f"import os, sys, urllib.request; port = {port}; urllib.request.urlopen("
        f"'http://127.0.0.1:' + port + '{plan.ready_route}', timeout=2); sys.exit(0)"
    )
    site_packages = f"{VENV}/lib/python{plan.python_minor}/site-packages"
    env_lines = " \\\n    ".join(f"{k}={_quoted(v)}" for k, v in plan.environment.items())
    label_lines = " \\\n      ".join(f"{k}={_quoted(v)}" for k, v in plan.labels.items())
    payload = "\n".join(f"COPY {source} {target}" for source, target in plan.payload)
    command = f"\nCMD {json.dumps(plan.command)}" if plan.command else ""
    bytecode = (
        f"python3 -m compileall -q {site_packages}"
        if plan.warm_imports is None
        else warm_imports_command(plan.warm_imports)
    )
    return f"""\
# Written by modelpilot {plan.modelpilot_version} (modelpilot package image).
# Layers, slowest-changing first: requirements, modelpilot, then the model, so a new model
# version on the same requirements rebuilds only the last layers.

# 1. The requirements, installed from wheelhouse/ into a venv (no package index needed),
#    without the test suites, headers and libraries nothing here runs, nor bytecode, with
#    identical files hard-linked; then every native library is loaded once (the wheels'
#    were stripped of symbol tables).
FROM {plan.base} AS requirements
RUN ["python3", "-c", {_quoted(python_check)}]
COPY requirements.txt /tmp/requirements.txt
COPY wheelhouse/ /tmp/wheelhouse/
RUN python3 -m venv {VENV} && \\
    {VENV}/bin/pip install --no-cache-dir --no-compile --no-index --no-deps \\
      --find-links /tmp/wheelhouse -r /tmp/requirements.txt && \\
    {prune_command(site_packages)} && \\
    {link_duplicates_command(site_packages)} && \\
    {load_check_command(site_packages)} && \\
    {VENV}/bin/python -m pip uninstall --quiet --yes pip setuptools && \\
    printf '%s\\n' '#!{VENV}/bin/python3' 'import sys' \\
      'from modelpilot.cli.main import main' 'sys.exit(main())' > {VENV}/bin/modelpilot && \\
    chmod 755 {VENV}/bin/modelpilot

FROM {plan.base}
ENV PATH={VENV}/bin:$PATH \\
    PYTHONUNBUFFERED=1
COPY --from=requirements {VENV} {VENV}

# 2. modelpilot's runtime, from a wheel built from the checkout that made the package: pure
#    Python, unpacked (the venv has no pip: nothing in the image installs). Then bytecode for
#    what the entry point imports: Python writes it as it imports them.
COPY runtime/{plan.wheel_name} /tmp/runtime/{plan.wheel_name}
RUN python3 -m zipfile -e /tmp/runtime/{plan.wheel_name} {site_packages} && \\
    {bytecode} && \\
    rm -rf /tmp/runtime && \\
    mkdir -p {HOME_DIR} && chown {USER_ID}:{USER_ID} {HOME_DIR}

ENV {env_lines}
USER {USER_ID}:{USER_ID}
EXPOSE {plan.port}
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \\
  CMD ["python3", "-c", {_quoted(health)}]

# 3. What this image serves, and the SBOM naming it.
{payload}
LABEL {label_lines}

# 4. Smoke test: the image fails to build, rather than at its first request, when it cannot
#    load what it serves (a missing library, a model its libraries cannot read).
RUN export MODELPILOT_HOME=/tmp/modelpilot-check PYTHONDONTWRITEBYTECODE=1 && \\
    {plan.check} && \\
    rm -rf /tmp/modelpilot-check
ENTRYPOINT {json.dumps(plan.entrypoint)}{command}
"""


def _quoted(value: str) -> str:
    """A double-quoted Dockerfile word (JSON string escaping, which Dockerfiles accept)."""
    return json.dumps(value)


def write_requirements(folder: Path, pins: tuple[Pin, ...]) -> None:
    """``requirements.txt``: one pinned line per distribution, sorted."""
    text = "".join(f"{p.line}\n" for p in sorted(pins))
    (folder / "requirements.txt").write_text(text)


def write_image_json(folder: Path, plan: BuildPlan, subject: dict[str, object]) -> None:
    """``image.json``: what the context packages (``subject``: the model version, or the
    platform), for tools that read it."""
    body = {
        **subject,
        "base": plan.base,
        "python": plan.python_minor,
        "labels": plan.labels,
        "entrypoint": plan.entrypoint,
        "command": plan.command,
        "environment": plan.environment,
    }
    (folder / "image.json").write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
