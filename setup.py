"""The compiled part of the package: the data plane's records decoder (C++17).

Everything else is declared in pyproject.toml. The extension is optional: where no C++17
compiler or Python headers are found, the install goes on without it and the data plane
reads the same bodies with msgspec (modelpilot/serving/records_decoder.py).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "modelpilot.serving._records",
            sources=["src/modelpilot/serving/_records.cpp"],
            language="c++",
            extra_compile_args=["-std=c++17", "-O2"],
            optional=True,
        )
    ]
)
