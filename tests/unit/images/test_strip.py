"""Wheels whose native libraries are stripped where the context is written: the libraries
still load, RECORD stays true, and what auditwheel grafted (``*.libs/``) is left alone.

Real parts: a wheel built here around a native library of this environment, the host's
``strip``, and the dynamic loader (``ctypes``).
"""

from __future__ import annotations

import base64
import csv
import ctypes
import hashlib
import io
import subprocess
import zipfile
from pathlib import Path

import pytest
import yaml

from modelpilot.images.slim import link_duplicates_command
from modelpilot.images.strip import strip_command, strip_wheel

STRIP = strip_command()
pytestmark = pytest.mark.skipif(STRIP is None, reason="no strip command (binutils) here")


def native_library() -> Path:
    """A small native library of this environment (PyYAML's C extension)."""
    from yaml import _yaml  # type: ignore[attr-defined]

    assert yaml.__with_libyaml__
    return Path(_yaml.__file__)


def record_line(name: str, data: bytes) -> list[str]:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return [name, f"sha256={digest}", str(len(data))]


def make_wheel(path: Path, members: dict[str, bytes]) -> None:
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    writer.writerows(record_line(n, d) for n, d in members.items())
    writer.writerow(["demo-1.0.dist-info/RECORD", "", ""])
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0))
            info.external_attr = 0o755 << 16
            wheel.writestr(info, data)
        wheel.writestr("demo-1.0.dist-info/RECORD", record.getvalue())


def test_a_stripped_library_is_smaller_still_loads_and_record_matches(tmp_path: Path) -> None:
    assert STRIP is not None
    library = native_library().read_bytes()
    members = {
        "demo/_native.cpython-311-x86_64-linux-gnu.so": library,
        "demo.libs/libgrafted-1234.so.1": library,  # auditwheel's: left as it is
        "demo/__init__.py": b"",
    }
    make_wheel(tmp_path / "demo.whl", members)
    saved = strip_wheel(tmp_path / "demo.whl", tmp_path / "stripped.whl", STRIP)

    with zipfile.ZipFile(tmp_path / "stripped.whl") as wheel:
        native = wheel.read("demo/_native.cpython-311-x86_64-linux-gnu.so")
        assert 0 < saved == len(library) - len(native)
        assert wheel.read("demo.libs/libgrafted-1234.so.1") == library
        info = wheel.getinfo("demo/_native.cpython-311-x86_64-linux-gnu.so")
        assert info.external_attr == 0o755 << 16
        rows = list(csv.reader(io.StringIO(wheel.read("demo-1.0.dist-info/RECORD").decode())))
    for name, data in [(n, native if n.startswith("demo/_native") else d)
                       for n, d in members.items()]:  # fmt: skip
        assert record_line(name, data) in rows

    loaded = tmp_path / "_native.so"
    loaded.write_bytes(native)
    ctypes.CDLL(str(loaded), mode=1)  # the dynamic loader accepts it (RTLD_LAZY)


def test_a_wheel_without_native_libraries_is_copied_byte_for_byte(tmp_path: Path) -> None:
    assert STRIP is not None
    make_wheel(tmp_path / "pure.whl", {"pure/__init__.py": b"x = 1\n"})
    assert strip_wheel(tmp_path / "pure.whl", tmp_path / "out.whl", STRIP) == 0
    assert (tmp_path / "out.whl").read_bytes() == (tmp_path / "pure.whl").read_bytes()


def test_identical_files_become_one_hard_link_and_different_ones_stay(tmp_path: Path) -> None:
    """The build step that stores numpy's and scipy's identical libgfortran once."""
    site = tmp_path / "site-packages"
    for folder in ("numpy.libs", "scipy.libs"):
        (site / folder).mkdir(parents=True)
        (site / folder / "libgfortran.so.5").write_bytes(b"\x7fELF same bytes")
    (site / "scipy.libs" / "libquadmath.so.0").write_bytes(b"\x7fELF other bytes")
    (site / "numpy.libs" / "empty.txt").write_bytes(b"")
    (site / "scipy.libs" / "empty.txt").write_bytes(b"")
    done = subprocess.run(["sh", "-c", link_duplicates_command(str(site))],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    numpy_copy, scipy_copy = (site / f / "libgfortran.so.5" for f in ("numpy.libs", "scipy.libs"))
    assert numpy_copy.stat().st_ino == scipy_copy.stat().st_ino
    assert scipy_copy.read_bytes() == b"\x7fELF same bytes"
    assert (site / "scipy.libs" / "libquadmath.so.0").stat().st_nlink == 1
    assert (site / "scipy.libs" / "empty.txt").stat().st_nlink == 1  # empty files left alone
    assert sorted(p.name for p in site.rglob("*")) == sorted(
        ["numpy.libs", "scipy.libs", "libgfortran.so.5", "libgfortran.so.5", "libquadmath.so.0",
         "empty.txt", "empty.txt"]
    )  # fmt: skip
