"""Wheels with their shared libraries' symbol tables removed, made where the context is
written: ``strip --strip-unneeded`` (binutils) on every ELF library of a wheel.

Binary wheels keep the static symbol tables (and some, uvloop's, debug sections) of their
native libraries: 62 MB of a scikit-learn image's requirements, nothing a served model reads
(the dynamic symbols the loader resolves stay). The slim base has no binutils and the build
needs no network to install them, so the wheels are stripped here, once, and cached with the
downloads; a host without ``strip`` keeps them as downloaded.

Not stripped: the libraries auditwheel grafted into ``<name>.libs/`` (OpenBLAS, libgfortran).
patchelf rewrote their program headers, and ``strip`` then writes load segments the dynamic
loader refuses ("ELF load command address/offset not page-aligned", measured on numpy's and
scipy's). The image's build loads every native library after installing
(:data:`modelpilot.images.slim.LOAD_CHECK`), so a library broken any other way fails the
build, naming it. RECORD is rewritten with each stripped file's hash and size, so the wheel
stays valid.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

_ELF_MAGIC = b"\x7fELF"
_STRIP_TIMEOUT_S = 300


def strip_command() -> str | None:
    """The ``strip`` executable here, or None (the wheels are then left as downloaded)."""
    return shutil.which("strip")


def is_strippable(member: str) -> bool:
    """Whether a wheel member is a native library ``strip`` may rewrite (not a grafted one).

    >>> is_strippable("pyarrow/libarrow.so.2300"), is_strippable("numpy/_core/x.cpython-311.so")
    (True, True)
    >>> is_strippable("numpy.libs/libgfortran-040039e1.so.5.0.0"), is_strippable("a/b.py")
    (False, False)
    """
    name = member.rsplit("/", 1)[-1]
    top = member.split("/", 1)[0]
    return (name.endswith(".so") or ".so." in name) and not top.endswith(".libs")


def strip_wheel(source: Path, target: Path, strip: str) -> int:
    """Write ``source`` to ``target`` with its native libraries stripped; the bytes saved.

    A wheel without any library ``strip`` shrinks is copied unchanged (pure-Python wheels).
    """
    with zipfile.ZipFile(source) as wheel:
        infos = wheel.infolist()
        stripped: dict[str, bytes] = {}
        for info in infos:
            if is_strippable(info.filename):
                data = wheel.read(info)
                if data[:4] == _ELF_MAGIC:
                    smaller = _stripped(data, strip)
                    if len(smaller) < len(data):
                        stripped[info.filename] = smaller
        if not stripped:
            shutil.copyfile(source, target)
            return 0
        saved = sum(wheel.getinfo(name).file_size - len(d) for name, d in stripped.items())
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
            for info in infos:
                data = stripped.get(info.filename) or wheel.read(info)
                if info.filename.endswith(".dist-info/RECORD"):
                    data = _record(data, stripped)
                copy = zipfile.ZipInfo(info.filename, info.date_time)
                copy.external_attr = info.external_attr
                copy.compress_type = zipfile.ZIP_DEFLATED
                out.writestr(copy, data)
    return saved


def strip_wheels(folder: Path, strip: str) -> int:
    """Strip every wheel of ``folder`` in place; the bytes saved."""
    saved = 0
    for wheel in sorted(folder.glob("*.whl")):
        partial = wheel.with_name(wheel.name + ".partial")
        saved += strip_wheel(wheel, partial, strip)
        partial.replace(wheel)
    return saved


def _stripped(data: bytes, strip: str) -> bytes:
    """``data`` after ``strip --strip-unneeded``; unchanged when strip refuses the file (a
    foreign architecture, a format it does not know)."""
    with tempfile.TemporaryDirectory(prefix="modelpilot-strip-") as tmp:
        path = Path(tmp) / "library.so"
        path.write_bytes(data)
        done = subprocess.run(
            [strip, "--strip-unneeded", str(path)],
            capture_output=True,
            timeout=_STRIP_TIMEOUT_S,
            check=False,
        )
        return path.read_bytes() if done.returncode == 0 else data


def _record(text: bytes, changed: dict[str, bytes]) -> bytes:
    """RECORD with the hash and size of each ``changed`` file replaced (PEP 376 rows)."""
    rows = list(csv.reader(io.StringIO(text.decode())))
    for row in rows:
        if row and row[0] in changed:
            data = changed[row[0]]
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            row[1:3] = [f"sha256={digest.decode()}", str(len(data))]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()
