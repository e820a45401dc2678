"""What the requirements layer drops after installing: files a served model never reads.

Wheels carry their own test suites (pandas, scipy, numpy and scikit-learn: about 100 MB
with their bytecode), C headers and Cython sources for building against them, type stubs,
and pyarrow's Arrow Flight RPC libraries (27 MB; the prediction log writes Parquet and never
imports ``pyarrow.flight``). Deleting them in the same ``RUN`` as the install keeps them out
of the layer. Only these fixed kinds of file are removed, never a module an import of the
package's own code reaches: the build's smoke step (``modelpilot serve --check``) imports
the serving path and predicts the model's input example after the removal, so a wrong
removal fails the build, not the first request. The SBOM still lists every distribution at
its version; the removed files are not code that runs.
"""

from __future__ import annotations

# Folders named like this, anywhere below site-packages: the distributions' own test suites.
TEST_FOLDERS = ("tests",)
# Files of these kinds: headers and sources for compiling against a package, type stubs.
BUILD_ONLY_SUFFIXES = (".pyx", ".pxd", ".pxi", ".h", ".hpp", ".pyi")
# Paths below site-packages (shell globs): Arrow's C++ headers and sources, and Arrow Flight.
UNUSED_PATHS = (
    "pyarrow/include",
    "pyarrow/src",
    "pyarrow/libarrow_flight.so*",
    "pyarrow/libarrow_python_flight.so*",
    "pyarrow/_flight.*.so",
    "pyarrow/flight.py",
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
