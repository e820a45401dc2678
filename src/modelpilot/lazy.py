"""Names a package exports from submodules that are imported only when one is first used.

A package whose ``__init__`` re-exports store-backed services (``registry.set_alias``) would
otherwise import SQLAlchemy for every module below it, and the data plane imports those
packages' entity modules: a model image serves without SQLAlchemy (docs/images.md, "Size").
The names stay importable as before (``from modelpilot.registry import set_alias``); the
package imports them under ``TYPE_CHECKING`` too, for type checkers (PEP 562).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Collection


def lazy_exports(
    package: str, exported: Collection[str], modules: tuple[str, ...]
) -> Callable[[str], object]:
    """The module ``__getattr__`` of ``package``: a name of ``exported`` (its ``__all__``)
    that the package did not import itself is looked up in ``modules``, in order, each
    imported on first need.

    >>> getattr_ = lazy_exports("json", ["JSONDecodeError"], ("json.decoder",))
    >>> getattr_("JSONDecodeError").__name__
    'JSONDecodeError'
    >>> getattr_("nothing")
    Traceback (most recent call last):
    AttributeError: module 'json' has no attribute 'nothing'
    """

    def __getattr__(name: str) -> object:
        if name in exported:
            for module in modules:
                found = importlib.import_module(module)
                if hasattr(found, name):
                    return getattr(found, name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
