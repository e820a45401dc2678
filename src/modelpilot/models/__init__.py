"""Model packaging: flavors, signatures, captured requirements and safe loading.

Owns how a model becomes bytes and back; never speaks HTTP and never decides which version
serves.
"""

from __future__ import annotations

from modelpilot.models.flavors import TrustPolicy, detect_flavor
from modelpilot.models.loading import LoadedModel, load_package
from modelpilot.models.package import PackageInfo, build_package, read_manifest
from modelpilot.models.signature import ColumnSpec, Signature, infer_signature

__all__ = [
    "ColumnSpec",
    "LoadedModel",
    "PackageInfo",
    "Signature",
    "TrustPolicy",
    "build_package",
    "detect_flavor",
    "infer_signature",
    "load_package",
    "read_manifest",
]
