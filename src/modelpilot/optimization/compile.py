"""Compiling a tree ensemble to a shared library: Treelite reads the trees, TL2cgen writes C,
the machine's C compiler (gcc, cc or clang) builds it (``modelpilot optimize --to compiled``).

What compiles: scikit-learn's RandomForest, ExtraTrees, GradientBoosting and
HistGradientBoosting (classifiers and regressors), XGBoost and LightGBM models (what Treelite 4
reads), on numeric inputs. A scikit-learn pipeline compiles only when every step before the
trees passes its input through unchanged (``"passthrough"`` or ``None``): the library holds
trees and nothing else, so a scaler, an imputer or an encoder would be silently dropped.
Such a step is refused by name; ``--to onnx`` converts the whole pipeline, and trees need no
scaling (HistGradientBoosting, XGBoost and LightGBM take NaN themselves).

Missing values: NaN enters the library as missing and takes the branch each split recorded
(scikit-learn's ``missing_go_to_left``, XGBoost's and LightGBM's default direction), as in the
source. scikit-learn's forests and GradientBoosting compare float32 features; the library is
fed the same float32-rounded values, so a value between a float32 and its float64 neighbour
takes the source's branch.

>>> find_compiler(search_path="/nonexistent")  # doctest: +ELLIPSIS
Traceback (most recent call last):
modelpilot.errors.InvalidInput: --to compiled needs a C compiler to build the shared library, ...
"""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modelpilot.errors import InvalidInput
from modelpilot.models import LoadedModel
from modelpilot.models.flavors.compiled import CompiledPredictor, build_platform

COMPILERS = ("gcc", "cc", "clang")
# gcc -O1 rather than TL2cgen's default -O3 (measured, 2-core machine: a 20-tree fully grown
# forest compiled in 13.6 s at -O1, 98 s at -O2; batch-1 latency 6.7 vs 6.4 us, batch 64
# 27 vs 30 us). Options after TL2cgen's own -O3 override it.
_OPTIONS = ["-O1"]
_FLOAT32_SPLITS = (  # scikit-learn's tree module casts X to float32 (sklearn.tree._tree.DTYPE)
    "RandomForestClassifier",
    "RandomForestRegressor",
    "ExtraTreesClassifier",
    "ExtraTreesRegressor",
    "GradientBoostingClassifier",
    "GradientBoostingRegressor",
)
# scikit-learn's tree ensembles, by class name (also what convert.float32_flip_hint reads)
SKLEARN_TREE_ENSEMBLES = (
    *_FLOAT32_SPLITS,
    "HistGradientBoostingClassifier",  # bins float64 values against float64 thresholds
    "HistGradientBoostingRegressor",
)
_NUMERIC = ("float64", "float32", "int64", "int32", "bool")


def find_compiler(search_path: str | None = None) -> str:
    """The C compiler's absolute path (gcc, else cc, else clang on ``PATH``), or InvalidInput
    saying what to install."""
    for name in COMPILERS:
        found = shutil.which(name, path=search_path)
        if found:
            return found
    raise InvalidInput(
        "--to compiled needs a C compiler to build the shared library, and none of "
        f"{', '.join(COMPILERS)} is on PATH. Install one (Debian/Ubuntu: apt-get install gcc; "
        "Fedora: dnf install gcc; macOS: xcode-select --install) or use --to onnx, which needs "
        "no compiler.",
        field="to",
    )


def to_compiled(model: LoadedModel, *, search_path: str | None = None) -> CompiledPredictor:
    """``model``'s trees as a loaded shared library (same inputs, same classes), or
    InvalidInput saying why not."""
    where = model.display_name
    _check_inputs(model)
    trees, kind = _trees(model)
    compiler = find_compiler(search_path)
    with _quiet():
        ensemble = _treelite(trees, kind, where)
        library = _build(ensemble, compiler, where)
    info = {
        "source_flavor": model.flavor,
        "source_class": kind,
        "round_float32": kind in _FLOAT32_SPLITS,
        "platform": build_platform(),
        "compiler": Path(compiler).name,
    }
    predictor = CompiledPredictor.from_library(
        library, model.signature.column_names, model.classes, info
    )
    if predictor.library.num_feature > len(predictor.columns):
        raise InvalidInput(
            f"Cannot compile {where}: its trees read {predictor.library.num_feature} features, "
            f"its signature has {len(predictor.columns)} columns.",
            field="model",
        )
    return predictor


def _check_inputs(model: LoadedModel) -> None:
    signature = model.signature
    if signature.input_kind != "columns":
        raise InvalidInput(
            f"Cannot compile {model.display_name}: it takes a tensor; --to compiled compiles "
            "tree ensembles over named numeric columns.",
            field="model",
        )
    for spec in signature.inputs:
        if spec.dtype not in _NUMERIC:
            raise InvalidInput(
                f"Cannot compile {model.display_name}: input {spec.name!r} is {spec.dtype}; a "
                "compiled tree ensemble takes numbers only. Use --to onnx, which converts the "
                "encoding steps too, or --to distilled.",
                field=spec.name,
            )


def _trees(model: LoadedModel) -> tuple[Any, str]:
    """The tree ensemble to compile and its class name, or InvalidInput naming what is not."""
    native: Any = model.predictor
    if model.flavor == "xgboost":
        booster = native.get_booster() if hasattr(native, "get_booster") else native.booster
        return booster, "xgboost"
    if model.flavor == "lightgbm":
        return getattr(native, "booster", None) or native.booster_, "lightgbm"
    if model.flavor != "sklearn":
        raise _not_trees(model, f"a {model.flavor} model")
    from sklearn.pipeline import Pipeline

    path = ""
    while isinstance(native, Pipeline):
        for name, step in native.steps[:-1]:
            if step is not None and step != "passthrough":
                raise InvalidInput(
                    f"Cannot compile {model.display_name}: step {path + name!r} "
                    f"({type(step).__name__}) transforms the inputs before the trees, and a "
                    "compiled library holds the trees only. Use --to onnx, which converts the "
                    "whole pipeline, or fit the trees on the raw columns (trees need no "
                    "scaling; HistGradientBoosting, XGBoost and LightGBM take NaN themselves).",
                    field="model",
                )
        path += native.steps[-1][0] + "."
        native = native.steps[-1][1]
    library = type(native).__module__.split(".")[0]
    if library == "xgboost" and hasattr(native, "get_booster"):  # at the end of a pipeline
        return native.get_booster(), "xgboost"
    if library == "lightgbm" and hasattr(native, "booster_"):
        return native.booster_, "lightgbm"
    kind = type(native).__name__
    if kind not in SKLEARN_TREE_ENSEMBLES:
        step = f"step {path[:-1]!r}, " if path else ""
        raise _not_trees(model, f"{step}a {kind}")
    names = getattr(native, "feature_names_in_", None)
    if names is not None and [str(n) for n in names] != model.signature.column_names:
        raise InvalidInput(
            f"Cannot compile {model.display_name}: its trees were fitted on columns "
            f"{[str(n) for n in names]}, not the signature's {model.signature.column_names}.",
            field="model",
        )
    return native, kind


def _not_trees(model: LoadedModel, what: str) -> InvalidInput:
    return InvalidInput(
        f"--to compiled applies to tree ensembles (scikit-learn RandomForest, ExtraTrees, "
        f"GradientBoosting, HistGradientBoosting; XGBoost; LightGBM), and "
        f"{model.display_name} is {what}. Use --to onnx.",
        field="to",
    )


def _treelite(trees: Any, kind: str, where: str) -> Any:
    import treelite

    try:
        if kind == "xgboost":
            return treelite.frontend.from_xgboost(trees)
        if kind == "lightgbm":
            return treelite.frontend.from_lightgbm(trees)
        return treelite.sklearn.import_model(trees)
    except Exception as exc:  # Treelite raises its own, ValueError and NotImplementedError
        raise InvalidInput(
            f"Cannot compile {where}: Treelite cannot read its {kind} trees: "
            f"{type(exc).__name__}: {str(exc)[:300]}. Use --to onnx; nothing was registered.",
            field="model",
        ) from exc


def _build(ensemble: Any, compiler: str, where: str) -> bytes:
    import tl2cgen

    cpus = os.cpu_count() or 1
    # Several translation units per core: gcc's time grows faster than a file's length
    # (20 depth-8 trees, 690 KB of C: 5.6 s as 2 units, 3.7 s as 8 on two cores).
    params = {"parallel_comp": max(1, min(int(ensemble.num_tree), max(8, 2 * cpus)))}
    with tempfile.TemporaryDirectory(prefix="modelpilot-compile-") as tmp:
        library = Path(tmp) / "model.so"
        try:
            tl2cgen.export_lib(
                ensemble, shlex.quote(compiler), library, params,
                nthread=cpus, options=list(_OPTIONS),
            )  # fmt: skip
        except Exception as exc:
            raise InvalidInput(
                f"Cannot compile {where}: {compiler} failed to build the shared library: "
                f"{type(exc).__name__}: {str(exc)[:300]}. Nothing was registered.",
                field="model",
            ) from exc
        return library.read_bytes()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence Treelite's and TL2cgen's chatter for the few seconds of a build: progress
    printed through Python, warnings, and TL2cgen's bundled Treelite 4.1 writing straight to
    file descriptor 2 that the checkpoint "originated from a newer Treelite version" (Treelite
    4.8 made it; the format is compatible, and the fidelity check proves each library). A
    failed build still raises with TL2cgen's own message."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
