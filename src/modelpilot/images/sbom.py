"""The image's software bill of materials: CycloneDX 1.5 JSON.

It lists what the image's requirements layer and runtime layer install (each distribution
with its package URL) and, as the subject, the model version with its package digest (a model
image) or modelpilot itself (the platform image). Made
from the pinned requirements, not by scanning a built image, so the same file sits beside the
Dockerfile before any build and inside the image after it. Deterministic: no timestamp, and
the serial number is derived from the content, so a rebuild on the same inputs makes the same
bytes (and Docker reuses the layer).

Specification: https://cyclonedx.org/docs/1.5/json/
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from modelpilot.images.requirements import Pin

SPEC_VERSION = "1.5"
# Any fixed namespace works: it only has to make the same content give the same serial.
_SERIAL_NAMESPACE = uuid.UUID("6f1d4b8e-2c31-4a8f-9d0e-7b5a1c3e9f20")


def purl(name: str, version: str) -> str:
    """The package URL of a PyPI distribution.

    >>> purl("scikit-learn", "1.5.2")
    'pkg:pypi/scikit-learn@1.5.2'
    """
    return f"pkg:pypi/{name}@{version}"


def model_subject(model: str, version: int, package_digest: str) -> dict[str, Any]:
    """The SBOM's subject for a model image: the version, with its package digest."""
    return {
        "type": "machine-learning-model",
        "bom-ref": f"model:{model}/{version}",
        "name": model,
        "version": str(version),
        "hashes": [{"alg": "SHA-256", "content": package_digest}],
    }


def platform_subject(modelpilot_version: str) -> dict[str, Any]:
    """The SBOM's subject for the platform image: modelpilot, as an application."""
    return {
        "type": "application",
        "bom-ref": f"image:modelpilot/{modelpilot_version}",
        "name": "modelpilot",
        "version": modelpilot_version,
    }


def make_sbom(
    *,
    subject: dict[str, Any],
    pins: Sequence[Pin],
    modelpilot_version: str,
    wheel_sha256: str,
) -> dict[str, Any]:
    """The CycloneDX document of an image whose ``subject`` is what it serves.

    >>> doc = make_sbom(subject=model_subject("churn", 4, "a" * 64),
    ...                 pins=[Pin("numpy", "2.0.0")], modelpilot_version="0.1.0",
    ...                 wheel_sha256="b" * 64)
    >>> doc["bomFormat"], [c["name"] for c in doc["components"]]
    ('CycloneDX', ['modelpilot', 'numpy'])
    """
    components = [
        {
            "type": "library",
            "bom-ref": purl("modelpilot", modelpilot_version),
            "name": "modelpilot",
            "version": modelpilot_version,
            "purl": purl("modelpilot", modelpilot_version),
            "hashes": [{"alg": "SHA-256", "content": wheel_sha256}],
        }
    ]
    components += [
        {
            "type": "library",
            "bom-ref": purl(p.name, p.version),
            "name": p.name,
            "version": p.version,
            "purl": purl(p.name, p.version),
        }
        for p in sorted(pins)
    ]
    doc: dict[str, Any] = {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "version": 1,
        "metadata": {
            "tools": {
                "components": [
                    {"type": "application", "name": "modelpilot", "version": modelpilot_version}
                ]
            },
            "component": subject,
        },
        "components": components,
        "dependencies": [
            {"ref": subject["bom-ref"], "dependsOn": [c["bom-ref"] for c in components]}
        ],
    }
    serial = uuid.uuid5(_SERIAL_NAMESPACE, json.dumps(doc, sort_keys=True))
    return {"serialNumber": f"urn:uuid:{serial}", **doc}


def sbom_json(doc: dict[str, Any]) -> str:
    """The document as the file's text (stable key order, one trailing newline)."""
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"
