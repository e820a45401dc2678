"""Fixtures of the pipeline tests: one local Ray cluster for the Ray executor's tests."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def ray_address() -> Iterator[str]:
    """One local Ray cluster (2 CPUs) per test session or xdist worker, shut down at the end;
    the Ray executor uses the Ray this process already initialised. Its address lets a CLI
    subprocess connect to it (``--ray-address``)."""
    ray = pytest.importorskip("ray", reason="the ray extra: pip install 'modelpilot[ray]'")
    started = time.monotonic()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    print(f"\nRay local cluster up in {time.monotonic() - started:.1f} s", file=sys.stderr)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()
