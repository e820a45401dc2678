"""Find user code: ``train.py:pipeline`` (a file) or ``package.module:pipeline`` (a module).

A file is imported the way ``python train.py`` would see it (its folder first on
``sys.path``, so sibling modules import), under a private module name, so its
``if __name__ == "__main__":`` block does not run. Step workers import steps the same way,
by file and qualified name.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from modelpilot.errors import InvalidInput
from modelpilot.pipelines.graph import Pipeline, PipelineDef, PipelineFunction
from modelpilot.pipelines.step import Step


def load_module_file(path: Path, where: str) -> ModuleType:
    """Import the Python file at ``path`` afresh (``where`` names the caller in errors)."""
    resolved = path.expanduser().resolve()
    if not resolved.is_file() or resolved.suffix != ".py":
        raise InvalidInput(
            f"{where}: no Python file at {path} (expected an existing .py file, e.g. "
            "train.py:pipeline).",
            field="target",
        )
    label = hashlib.sha256(str(resolved).encode()).hexdigest()[:12]
    name = f"_modelpilot_user_{label}_{resolved.stem}"
    folder = str(resolved.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has one
        raise InvalidInput(f"{where}: cannot import {resolved}.", field="target")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise InvalidInput(
            f"{where}: importing {resolved} failed with {type(exc).__name__}: {exc}",
            field="target",
        ) from exc
    return module


def _import_module(name: str, where: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except Exception as exc:
        raise InvalidInput(
            f"{where}: cannot import module {name!r} ({type(exc).__name__}: {exc}); give a "
            "file (train.py:pipeline) or a module importable from here (package.train:pipeline).",
            field="target",
        ) from exc


def load_target(target: str) -> PipelineDef:
    """The pipeline ``target`` names: ``FILE.py:NAME`` or ``MODULE:NAME``."""
    where = f"Pipeline target {target!r}"
    source, sep, attr = target.rpartition(":")
    if not sep or not source or not attr.isidentifier():
        raise InvalidInput(
            f"{where}: expected FILE.py:NAME or MODULE:NAME, e.g. train.py:pipeline.",
            field="target",
        )
    is_file = source.endswith(".py") or "/" in source or "\\" in source
    module = load_module_file(Path(source), where) if is_file else _import_module(source, where)
    found = getattr(module, attr, None)
    if isinstance(found, Pipeline):
        return found.validate()
    if isinstance(found, PipelineFunction):
        return found
    names = sorted(
        k for k, v in vars(module).items() if isinstance(v, (Pipeline, PipelineFunction))
    )
    there = f"pipelines in it: {', '.join(names)}" if names else "it defines no pipeline"
    what = "nothing" if found is None else f"a {type(found).__name__}"
    raise InvalidInput(
        f"{where}: {attr!r} is {what}, not a pipeline ({there}). Decorate a function with "
        "@mp.pipeline or assign mp.Pipeline(name, steps...).",
        field="target",
    )


def step_location(step: Step) -> tuple[Path, str]:
    """The file and qualified name a fresh process imports ``step`` by; InvalidInput when it
    cannot (defined inside a function, or without a source file)."""
    fn = step.fn
    qualname = getattr(fn, "__qualname__", "")
    found = inspect.getsourcefile(fn) if inspect.isfunction(fn) else None
    if "<" in qualname or found is None or not Path(found).is_file():
        raise InvalidInput(
            f"Step {step.name!r} ({qualname or fn!r}) cannot be imported by a step worker: "
            "define it at the top level of a .py file, or run with the inline executor "
            "(--executor inline).",
            field=step.name,
        )
    return Path(found).resolve(), qualname


def load_step_function(path: Path, qualname: str) -> Any:
    """The function of the step ``qualname`` in the file at ``path``."""
    where = f"Step {qualname!r} in {path}"
    module = load_module_file(path, where)
    found: Any = module
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if isinstance(found, Step):
        return found.fn
    if callable(found):
        return found
    raise InvalidInput(
        f"{where}: the module has no function {qualname!r} any more (renamed or removed since "
        "the pipeline was traced).",
        field="step",
    )


__all__ = ["load_module_file", "load_step_function", "load_target", "step_location"]
