"""What the requirements layer drops after installing (files a served model never reads), the
identical files it stores once, the check that every native library still loads, and which
modules get bytecode.

Wheels carry their own test suites (pandas, scipy, numpy and scikit-learn: about 100 MB with
their bytecode), C headers, sources, static libraries and Cython sources for building against
them, type stubs, scikit-learn's toy data sets, pyarrow's Arrow Flight RPC libraries (27 MB;
the prediction log writes Parquet and never imports ``pyarrow.flight``) and its cloud file
systems and ORC modules, which pyarrow imports only if present. Deleting them in the same
``RUN`` as the install keeps them out of the layer. Only these fixed kinds of file are removed,
never a module an import of the package's own code reaches: the build's smoke step
(``modelpilot serve --check``) imports the serving path and predicts the model's input example
after the removal, so a wrong removal fails the build, not the first request (it caught
``numpy/f2py``: scipy's array API layer touches every attribute of numpy, so that build tool
stays). The SBOM still lists every distribution at its version; the removed files are not code
that runs.

Bytecode: pip installs without compiling (``--no-compile``: all of it is 77 MB in a
scikit-learn image), and a later step imports what ``modelpilot serve`` imports as root, so
Python writes ``__pycache__`` for exactly those modules (44 MB with skops' trusted types,
which import all of scikit-learn). A module nothing imported at build time compiles in memory
when first imported; without any bytecode, start-up took 4 s longer.
"""

from __future__ import annotations

# Folders named like this, anywhere below site-packages: the distributions' own test suites.
TEST_FOLDERS = ("tests",)
# Files of these kinds: headers, sources and static libraries for compiling against a
# package, type stubs.
BUILD_ONLY_SUFFIXES = (".pyx", ".pxd", ".pxi", ".h", ".hpp", ".c", ".cpp", ".a", ".pyi")
# Paths below site-packages (shell globs): Arrow's C++ headers and sources, Arrow Flight,
# and the copies of libarrow_python the loader never opens.
UNUSED_PATHS = (
    "pyarrow/include",
    "pyarrow/src",
    "pyarrow/libarrow_flight.so*",
    "pyarrow/libarrow_python_flight.so*",
    "pyarrow/_flight.*.so",
    "pyarrow/flight.py",
    # the loader opens libarrow_python.so.2300 (its soname); the wheel also carries the
    # linker's name and the full version as copies (zip files hold no links)
    "pyarrow/libarrow_python*.so",
    "pyarrow/libarrow_python*.so.*.*.*",
    "pyarrow/_pyarrow_cpp_tests.*",
    # cloud and HDFS file systems and ORC: pyarrow.fs and pyarrow.dataset import them inside
    # ``try: ... except ImportError`` (pyarrow builds without them exist); the log is local
    "pyarrow/_azurefs.*.so",
    "pyarrow/_gcsfs.*.so",
    "pyarrow/_hdfs.*.so",
    "pyarrow/_s3fs.*.so",
    "pyarrow/_orc.*.so",
    "pyarrow/_dataset_orc.*.so",
    # scikit-learn's toy data sets (not numpy/f2py: scipy's array API layer imports it)
    "sklearn/datasets/data",
    "sklearn/datasets/descr",
    "sklearn/datasets/images",
)
# Modules a flavor's loader imports, imported at build time so they get bytecode.
FLAVOR_MODULES: dict[str, tuple[str, ...]] = {
    "sklearn": ("skops.io",),
    "xgboost": ("xgboost",),
    "lightgbm": ("lightgbm",),
    "onnx": ("onnxruntime",),
}
# Replace each file that is byte for byte another's (numpy.libs and scipy.libs both carry
# the same libgfortran and libquadmath; pytz and tzdata the same zone files) by a hard link
# to the first, so the layer stores it once.
LINK_DUPLICATES = (
    "import hashlib, os, sys; first = {}; paths = sorted(os.path.join(d, n) for d, _, names "
    "in os.walk(sys.argv[1]) for n in names if not os.path.islink(os.path.join(d, n))); "
    '[os.replace(os.link(first[key], path + ".link") or path + ".link", path) '
    "if key in first else first.setdefault(key, path) for path in paths "
    'for key in [(os.path.getsize(path), hashlib.sha256(open(path, "rb").read()).digest())] '
    "if key[0]]"
)
# dlopen each native library of the venv (lazily, as Python imports them): one that does
# not load (a stripped library the loader refuses, a missing system library) fails the build
# with its path and the loader's message.
LOAD_CHECK = (
    "import ctypes, sys; [ctypes.CDLL(path, mode=1) for path in sys.argv[1:] "  # RTLD_LAZY
    'if open(path, "rb").read(4) == b"\\x7fELF"]'
)


def prune_command(site_packages: str) -> str:
    """The shell command that removes those files below ``site_packages`` (one ``RUN``).

    >>> command = prune_command("/venv/lib/python3.11/site-packages")
    >>> "-type d -name tests -prune -exec rm -rf {} +" in command, "pyarrow/include" in command
    (True, True)
    """
    folders = " -o ".join(f"-name {name}" for name in TEST_FOLDERS)
    suffixes = " -o ".join(f"-name '*{suffix}'" for suffix in BUILD_ONLY_SUFFIXES)
    return (
        f"find {site_packages} -type d {folders} -prune -exec rm -rf {{}} + && \\\n"
        f"    find {site_packages} -type f \\( {suffixes} \\) -delete && \\\n"
        f"    cd {site_packages} && rm -rf {' '.join(UNUSED_PATHS)}"
    )


def link_duplicates_command(site_packages: str) -> str:
    """The shell command that hard-links identical files below ``site_packages``.

    >>> "os.link" in link_duplicates_command("/venv/lib/python3.11/site-packages")
    True
    """
    return f"python3 -c '{LINK_DUPLICATES}' {site_packages}"


def load_check_command(site_packages: str) -> str:
    """The shell command that loads every ELF shared library below ``site_packages``.

    >>> "ctypes.CDLL" in load_check_command("/venv/lib/python3.11/site-packages")
    True
    """
    return f"find {site_packages} -type f -name '*.so*' -exec python3 -c '{LOAD_CHECK}' {{}} +"


def warm_imports_command(modules: tuple[str, ...]) -> str:
    """The shell command that imports ``modules`` with bytecode writing on, so each module
    they import gets its ``__pycache__`` entry. Without the column offsets of each
    instruction (``PYTHONNODEBUGRANGES``, the setting CPython has for smaller bytecode: 6%
    here); tracebacks then show lines without the ``^^^`` under the failing expression.

    >>> warm_imports_command(("modelpilot.serving.server", "skops.io"))
    "PYTHONNODEBUGRANGES=1 python3 -c 'import modelpilot.serving.server, skops.io'"
    """
    return f"PYTHONNODEBUGRANGES=1 python3 -c 'import {', '.join(modules)}'"
