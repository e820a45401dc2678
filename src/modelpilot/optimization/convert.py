"""Converting a loaded model to ONNX: scikit-learn with skl2onnx, XGBoost and LightGBM with
onnxmltools, and int8 quantisation with ONNX Runtime where the graph has weights to quantise.

Every step of a pipeline is checked before conversion, so a model that cannot be converted is
refused with the step's path and the reason (a ``FunctionTransformer`` runs arbitrary Python,
which an ONNX graph cannot express), not with a converter's traceback.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import logging
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from modelpilot.errors import InvalidInput
from modelpilot.models import LoadedModel
from modelpilot.models.flavors.onnx import OnnxInput, OnnxPredictor
from modelpilot.models.signature import Signature
from modelpilot.models.steps import estimator_steps, missing_text_marker

# skl2onnx's tested opsets for its own and ai.onnx.ml operators; onnxmltools' XGBoost and
# LightGBM converters stop at 15.
_SKLEARN_OPSET = {"": 17, "ai.onnx.ml": 3}
_BOOSTER_OPSET = 15
# Operators whose parameters live in weight tensors that dynamic int8 quantisation rewrites.
_QUANTISABLE = ("MatMul", "Gemm")
_TREE_OPS = ("TreeEnsembleClassifier", "TreeEnsembleRegressor", "TreeEnsemble")


def to_onnx(model: LoadedModel) -> OnnxPredictor:
    """The ONNX twin of ``model`` (same inputs, same classes), or InvalidInput saying why not."""
    signature = model.signature
    if signature.input_kind != "columns":
        raise InvalidInput(
            f"Cannot convert {model.display_name} to ONNX: it takes a tensor; this version of "
            "modelpilot optimize converts models that take named columns.",
            field="model",
        )
    native = model.predictor
    classes = model.classes
    info = {"source_flavor": model.flavor, "source_class": type(native).__name__}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # converters warn about opsets and deprecated APIs
        if model.flavor == "sklearn":
            inputs = _inputs(signature, by_column=_selects_by_name(native, signature))
            graph = _sklearn_graph(native, inputs, classes is not None, model.display_name)
        elif model.flavor in ("xgboost", "lightgbm"):
            inputs = _inputs(signature, by_column=False)
            graph = _booster_graph(model.flavor, native, inputs, model.display_name)
        else:
            raise InvalidInput(
                f"Cannot convert {model.display_name} to ONNX: it is a {model.flavor} model. "
                "modelpilot optimize converts scikit-learn, XGBoost and LightGBM models.",
                field="model",
            )
    candidate = OnnxPredictor.from_bytes(graph, _as_named_in(graph, inputs), classes, info)
    booster = model.flavor in ("xgboost", "lightgbm")
    if booster and classes is None and len(candidate.session.get_outputs()) > 1:
        # A raw XGBoost or LightGBM Booster trained with a classifier objective: its predict
        # gives the probability of class 1 (two classes) or of each class, which the graph
        # writes as its second output; its first is the label the source never gave.
        candidate.info["predicts"] = "probabilities"
    return candidate


def _as_named_in(graph: bytes, inputs: list[OnnxInput]) -> list[OnnxInput]:
    """``inputs`` under the names the graph gave them: skl2onnx turns a column name that is
    no identifier ("hours per week", "capital-gain", "1st") into one ("hours_per_week",
    "_1st"), in the order it was given the inputs. (The fidelity check then proves the
    columns went where they belong.)"""
    import onnx

    names = [i.name for i in onnx.load_from_string(graph).graph.input]
    if len(names) != len(inputs) or names == [i.name for i in inputs]:
        return inputs
    return [dataclasses.replace(i, name=n) for i, n in zip(inputs, names, strict=True)]


def float32_flip_hint(native: Any) -> str:
    """Why an ONNX twin of ``native`` may fail its fidelity check, when its structure says so:
    a tree ensemble after a scaler or a median imputer (docs/optimize.md, "Fidelity, and where
    float32 differs"); "" otherwise. A user whose candidate failed reads this next to the
    failed bound instead of guessing at the converter.

    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> "'standardscaler'" in float32_flip_hint(
    ...     make_pipeline(StandardScaler(), RandomForestClassifier()))
    True
    """
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler, StandardScaler

    steps = list(estimator_steps(native))
    if not steps or not _is_tree_ensemble(steps[-1][1]):
        return ""
    scalers = (StandardScaler, MinMaxScaler, RobustScaler, MaxAbsScaler)
    before = [
        path
        for path, step in steps[:-1]
        if isinstance(step, scalers)
        or (isinstance(step, SimpleImputer) and step.strategy in ("median", "mean"))
    ]
    if not before:
        return ""
    named = ", ".join(repr(p) for p in before)
    return (
        f"likely cause: the graph computes in float32, and the trees follow {named}: a value "
        "that lands within a float32 step of a split threshold takes the other branch "
        "(docs/optimize.md, Fidelity). Trees need no scaling: without the scaler, and with a "
        "constant fill instead of a median or mean, the graph agrees to ~1e-7; or accept "
        "the difference with --max-abs-proba-diff"
    )


def _is_tree_ensemble(step: Any) -> bool:
    """scikit-learn forests and boosting, XGBoost and LightGBM estimators."""
    from modelpilot.optimization.compile import SKLEARN_TREE_ENSEMBLES

    kind = type(step)
    return kind.__module__.startswith(("xgboost", "lightgbm")) or (
        kind.__module__.startswith("sklearn.ensemble") and kind.__name__ in SKLEARN_TREE_ENSEMBLES
    )


def quantise_int8(candidate: OnnxPredictor, where: str) -> OnnxPredictor:
    """Dynamic int8 quantisation of the graph's MatMul/Gemm weights (ONNX Runtime).

    Refused where it does not apply: tree ensembles keep thresholds and leaf values as
    operator attributes (quantising them would move splits, and they are not weights). Linear
    models, which skl2onnx writes as ai.onnx.ml Linear* operators with attribute coefficients,
    are first rewritten as MatMul + Add (see :func:`_linear_as_matmul`), so their weights are
    quantised like a network's.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = _one_opset_per_domain(_linear_as_matmul(onnx.load_from_string(candidate.model_bytes)))
    ops = {node.op_type for node in graph.graph.node}
    if not ops & set(_QUANTISABLE):
        if ops & set(_TREE_OPS):
            why = (
                "it is a tree ensemble: its thresholds and leaf values are operator "
                "attributes, not weights, and int8 would move the splits"
            )
        else:
            why = f"its graph has no MatMul/Gemm weights to quantise (operators: {sorted(ops)})"
        raise InvalidInput(
            f"onnx-int8 does not apply to {where}: {why}. Use --to onnx.", field="to"
        )
    with tempfile.TemporaryDirectory(prefix="modelpilot-int8-") as tmp:
        source, target = Path(tmp) / "model.onnx", Path(tmp) / "model.int8.onnx"
        source.write_bytes(graph.SerializeToString())
        root = logging.getLogger()  # the quantiser logs advice there, printed on stderr
        root.addFilter(_quantiser_advice)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                quantize_dynamic(source, target, weight_type=QuantType.QInt8)
            except Exception as exc:  # the quantiser's own refusals: say whose, and why
                raise InvalidInput(
                    f"onnx-int8 failed for {where}: ONNX Runtime's quantiser refused the graph "
                    f"({type(exc).__name__}: {exc}). Use --to onnx.",
                    field="to",
                ) from exc
            finally:
                root.removeFilter(_quantiser_advice)
        data = target.read_bytes()
    info = {**candidate.info, "quantised": "int8 (dynamic, MatMul/Gemm weights)"}
    classes = None if candidate.classes_ is None else list(candidate.classes_)
    return OnnxPredictor.from_bytes(data, candidate.inputs, classes, info)


def _quantiser_advice(record: logging.LogRecord) -> bool:
    """False for ONNX Runtime's "consider pre-processing before quantization" line, which it
    logs on the root logger for every graph (a WARNING with a URL on the user's terminal)."""
    return "pre-processing before quantization" not in record.getMessage()


def _one_opset_per_domain(model: Any) -> Any:
    """``model`` importing each operator domain once, at the highest version it names.

    skl2onnx can import the standard domain twice (a LinearSVC's graph did), which ONNX
    Runtime runs but its quantiser refuses ("Failed to find proper ai.onnx domain")."""
    versions: dict[str, int] = {}
    for opset in model.opset_import:
        versions[opset.domain] = max(versions.get(opset.domain, 0), opset.version)
    if len(versions) < len(model.opset_import):
        from onnx import helper

        del model.opset_import[:]
        model.opset_import.extend(helper.make_opsetid(d, v) for d, v in versions.items())
    return model


_LINEAR_OPS = ("LinearClassifier", "LinearRegressor")
_POST_TRANSFORMS = {"NONE": None, "LOGISTIC": "Sigmoid", "SOFTMAX": "Softmax"}


def _linear_as_matmul(model: Any) -> Any:
    """``model`` with each ai.onnx.ml LinearClassifier / LinearRegressor on a float32 input
    replaced by the standard operators it computes: ``scores = post(X @ W.T + b)`` (post:
    none, Sigmoid or Softmax) and, for a classifier, ``label = classlabels[argmax(scores)]``.

    The weights then sit in a MatMul's initializer, which ONNX Runtime's dynamic quantiser
    rewrites to int8; nodes it does not know how to rewrite exactly (another post transform,
    one coefficient row for two classes, a float64 input) are left as they are.
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    inferred = onnx.shape_inference.infer_shapes(model)
    float32 = {
        v.name
        for v in [*inferred.graph.value_info, *inferred.graph.input]
        if v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    }
    nodes, initializers = [], []
    for index, node in enumerate(model.graph.node):
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        transform = attrs.get("post_transform", b"NONE").decode()
        if (
            node.op_type not in _LINEAR_OPS
            or node.input[0] not in float32
            or transform not in _POST_TRANSFORMS
        ):
            nodes.append(node)
            continue
        post = _POST_TRANSFORMS[transform]
        coefficients = np.asarray(attrs["coefficients"], dtype=np.float32)
        rows = len(attrs["intercepts"]) if "intercepts" in attrs else attrs.get("targets", 1)
        intercepts = np.asarray(attrs.get("intercepts", [0.0] * rows), dtype=np.float32)
        weights = coefficients.reshape(rows, -1)
        labels = list(attrs.get("classlabels_ints") or attrs.get("classlabels_strings") or [])
        if node.op_type == "LinearClassifier" and len(labels) != len(intercepts):
            nodes.append(node)
            continue
        name = f"linear{index}"
        initializers += [
            numpy_helper.from_array(weights.T.copy(), f"{name}_W"),
            numpy_helper.from_array(intercepts, f"{name}_b"),
        ]
        scores = node.output[1] if node.op_type == "LinearClassifier" else node.output[0]
        raw = f"{name}_raw" if post else scores
        nodes += [
            helper.make_node("MatMul", [node.input[0], f"{name}_W"], [f"{name}_xw"]),
            helper.make_node("Add", [f"{name}_xw", f"{name}_b"], [raw]),
        ]
        if post == "Sigmoid":
            nodes.append(helper.make_node("Sigmoid", [raw], [scores]))
        elif post == "Softmax":
            nodes.append(helper.make_node("Softmax", [raw], [scores], axis=1))
        if node.op_type == "LinearClassifier":
            classes = (
                np.asarray([c.decode() for c in labels], dtype=object)  # classlabels_strings
                if isinstance(labels[0], bytes)
                else np.asarray(labels, dtype=np.int64)
            )
            initializers.append(numpy_helper.from_array(classes, f"{name}_labels"))
            nodes += [
                helper.make_node("ArgMax", [scores], [f"{name}_best"], axis=1, keepdims=0),
                helper.make_node("Gather", [f"{name}_labels", f"{name}_best"], [node.output[0]]),
            ]
    if not initializers:  # nothing rewritten
        return model
    rewritten = copy.deepcopy(model)
    del rewritten.graph.node[:]
    rewritten.graph.node.extend(nodes)
    rewritten.graph.initializer.extend(initializers)
    if not any(o.domain in ("", "ai.onnx") for o in rewritten.opset_import):
        # a graph of ai.onnx.ml operators only (a LinearSVC's) imports no standard opset
        rewritten.opset_import.append(helper.make_opsetid("", _SKLEARN_OPSET[""]))
    return rewritten


def _inputs(signature: Signature, *, by_column: bool) -> list[OnnxInput]:
    specs = signature.inputs
    for spec in specs:
        if spec.dtype == "datetime":
            raise InvalidInput(
                f"Cannot convert to ONNX: input {spec.name!r} is a datetime, which ONNX-ML "
                "operators do not take. Encode it as numbers before the model.",
                field=spec.name,
            )
    if not by_column:
        return [OnnxInput("X", "float", tuple(s.name for s in specs))]
    return [
        OnnxInput(s.name, "string" if s.dtype == "string" else "float", (s.name,)) for s in specs
    ]


def _selects_by_name(native: Any, signature: Signature) -> bool:
    """Per-column inputs when a column is text or a ColumnTransformer picks columns by name."""
    from sklearn.compose import ColumnTransformer

    if any(s.dtype == "string" for s in signature.inputs):
        return True
    return any(isinstance(step, ColumnTransformer) for _, step in estimator_steps(native))


@functools.cache
def _register_booster_converters() -> None:
    """Teach skl2onnx the scikit-learn estimators of XGBoost and LightGBM with onnxmltools'
    converters (as skl2onnx documents), so a pipeline ending in one converts as a whole; once
    per process, and only for the libraries installed."""
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    classifier_options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    try:
        import xgboost
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
    except ImportError:
        pass
    else:
        for kind in (xgboost.XGBClassifier, xgboost.XGBRFClassifier):
            update_registered_converter(
                kind, f"XGBoost{kind.__name__}", calculate_linear_classifier_output_shapes,
                convert_xgboost, options=classifier_options,
            )  # fmt: skip
        for kind in (xgboost.XGBRegressor, xgboost.XGBRFRegressor):
            update_registered_converter(
                kind, f"XGBoost{kind.__name__}", calculate_linear_regressor_output_shapes,
                convert_xgboost,
            )  # fmt: skip
    try:
        import lightgbm
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
    except ImportError:
        return
    update_registered_converter(
        lightgbm.LGBMClassifier, "LightGbmLGBMClassifier",
        calculate_linear_classifier_output_shapes, convert_lightgbm, options=classifier_options,
    )  # fmt: skip
    update_registered_converter(
        lightgbm.LGBMRegressor, "LightGbmLGBMRegressor",
        calculate_linear_regressor_output_shapes, convert_lightgbm, options={"split": None},
    )  # fmt: skip


def _copy_changing(native: Any, needs: Callable[[Any], bool], change: Callable[[Any], None]) -> Any:
    """``native`` itself when none of its steps ``needs`` a change, else a deep copy with
    ``change`` applied to each step that does: the caller's model is never modified."""
    if not any(needs(step) for _, step in estimator_steps(native)):
        return native
    clone = copy.deepcopy(native)
    for _, step in estimator_steps(clone):
        if needs(step):
            change(step)
    return clone


def _named_xgboost(step: Any) -> bool:
    """An XGBoost step whose booster names its features: onnxmltools reads splits on ``f0, f1,
    ...`` only, and a step fitted on a DataFrame (``set_output(transform="pandas")``) names
    its splits by column."""
    return type(step).__module__.startswith("xgboost") and bool(
        getattr(step.get_booster(), "feature_names", None)
    )


def _text_imputer(step: Any) -> bool:
    """A fitted SimpleImputer of text columns (its statistics are strings; a numeric constant
    fill keeps an object array too: ``fill_value=-1``)."""
    from sklearn.impute import SimpleImputer

    if not isinstance(step, SimpleImputer) or getattr(step, "statistics_", None) is None:
        return False
    return any(isinstance(v, str) for v in step.statistics_)


def _is_missing_marker(value: Any, marker: Any) -> bool:
    """Whether ``value`` is how ``marker`` (None or NaN) writes a missing text value."""
    if marker is None:
        return value is None
    return isinstance(value, float) and value != value


def _encodes_missing(step: Any, marker: Any) -> bool:
    """A fitted encoder that learnt the missing-text marker as a category."""
    categories = getattr(step, "categories_", None)
    if categories is None or type(step).__name__ not in ("OneHotEncoder", "OrdinalEncoder"):
        return False
    return any(_is_missing_marker(v, marker) for values in categories for v in values)


# What a text imputer that imputed nothing in scikit-learn looks for in the graph: a string no
# request carries (skl2onnx converts a text imputer only with a string to look for).
_NEVER_MISSING = "\x00modelpilot: imputes nothing"


def _convertible_copy(native: Any) -> Any:
    """``native`` as skl2onnx can convert it, computing what scikit-learn computes (one copy at
    most; the caller's model is never changed).

    A missing text value reaches the graph as ``""`` (:class:`OnnxInput` feeds it so), and
    reaches scikit-learn as the marker the model was fitted with (None or NaN,
    :func:`missing_text_marker`: the data plane sends that one). So in the copy, a text imputer
    that imputes the marker looks for ``""`` instead; one that does not (``SimpleImputer()``
    looks for NaN and passes None on) looks for a string no request carries; and an encoder
    that learnt the marker as a category learns ``""`` in its place. XGBoost steps forget
    their feature names (onnxmltools reads ``f0, f1, ...`` only).
    """
    marker = missing_text_marker(native)

    def needs(step: Any) -> bool:
        return _text_imputer(step) or _encodes_missing(step, marker) or _named_xgboost(step)

    def change(step: Any) -> None:
        if _text_imputer(step):
            imputes = _is_missing_marker(step.missing_values, marker)
            step.missing_values = "" if imputes else _NEVER_MISSING
        elif _encodes_missing(step, marker):
            step.categories_ = [
                np.asarray(["" if _is_missing_marker(v, marker) else v for v in values], object)
                for values in step.categories_
            ]
        else:
            step.get_booster().feature_names = None

    return _copy_changing(native, needs, change)


def _ends_in_linear_svc(model: Any) -> bool:
    from sklearn.pipeline import Pipeline
    from sklearn.svm import LinearSVC

    while isinstance(model, Pipeline):
        model = model.steps[-1][1]
    return isinstance(model, LinearSVC)


def _check_convertible(native: Any, where: str) -> None:
    from skl2onnx._supported_operators import sklearn_operator_name_map
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    _register_booster_converters()
    if isinstance(native, Pipeline) and _ends_in_linear_svc(native):
        # skl2onnx asks every pipeline's final classifier for a zipmap option that its
        # LinearSVC converter refuses (NameError), whatever options are passed
        raise InvalidInput(
            f"Cannot convert {where} to ONNX: skl2onnx cannot convert a pipeline that ends in "
            "a LinearSVC (a LinearSVC on its own converts). Log the pipeline with "
            "LogisticRegression or SGDClassifier(loss='hinge') as its last step, or wrap the "
            "LinearSVC in CalibratedClassifierCV (which also gives probabilities); nothing "
            "was registered.",
            field="model",
        )

    for path, step in estimator_steps(native):
        kind = type(step).__name__
        if isinstance(step, FunctionTransformer) and step.func is not None:
            func = getattr(step.func, "__name__", repr(step.func))
            raise InvalidInput(
                f"Cannot convert {where} to ONNX: step {path!r} is a FunctionTransformer "
                f"calling {func}, arbitrary Python that an ONNX graph cannot express. Replace "
                "it with a built-in transformer (e.g. SplineTransformer, PowerTransformer) or "
                "apply it before the model; nothing was registered.",
                field="model",
            )
        categorical = getattr(step, "is_categorical_", None)
        if categorical is not None and bool(categorical.any()):
            raise InvalidInput(
                f"Cannot convert {where} to ONNX: step {path!r} ({kind}) encodes categorical "
                "features itself (categorical_features, or pandas category columns), which "
                "skl2onnx's converter does not support. To convert it, give it those columns "
                "as plain numbers: one-hot encode them before it (a OneHotEncoder in a "
                "ColumnTransformer), or keep an OrdinalEncoder and drop categorical_features; "
                "or use --to distilled, whose hgb student keeps the categories. Nothing was "
                "registered.",
                field="model",
            )
        if type(step) not in sklearn_operator_name_map:
            raise InvalidInput(
                f"Cannot convert {where} to ONNX: step {path!r} ({kind}) has no ONNX "
                "converter in skl2onnx. Convertible are scikit-learn's own estimators and "
                "transformers, and XGBoost's and LightGBM's scikit-learn estimators; nothing "
                "was registered.",
                field="model",
            )


def _sklearn_graph(native: Any, inputs: list[OnnxInput], is_classifier: bool, where: str) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    _check_convertible(native, where)
    types = [
        (
            i.name,
            (StringTensorType if i.kind == "string" else FloatTensorType)([None, len(i.columns)]),
        )
        for i in inputs
    ]
    from sklearn.preprocessing import StandardScaler

    # Scale in double, as scikit-learn does, before the tree operators cast to float32: a
    # float32 (x - mean) / scale can land on the other side of a split threshold.
    options: dict[Any, Any] = {StandardScaler: {"div": "div_cast"}}
    model = _convertible_copy(native)
    if is_classifier and not _ends_in_linear_svc(model):  # (LinearSVC takes no zipmap option)
        options[id(model)] = {"zipmap": False}
    try:
        graph = convert_sklearn(
            model, initial_types=types, options=options, target_opset=_SKLEARN_OPSET
        )
    except Exception as exc:
        raise InvalidInput(
            f"Cannot convert {where} to ONNX: skl2onnx failed: {type(exc).__name__}: "
            f"{str(exc)[:300]}. Nothing was registered.",
            field="model",
        ) from exc
    return bytes(graph.SerializeToString())


def _booster_graph(flavor: str, native: Any, inputs: list[OnnxInput], where: str) -> bytes:
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    types = [("X", FloatTensorType([None, len(inputs[0].columns)]))]
    try:
        if flavor == "lightgbm":
            booster = getattr(native, "booster", native)  # the flavor's adapter keeps it
            graph = onnxmltools.convert_lightgbm(
                booster, initial_types=types, target_opset=_BOOSTER_OPSET, zipmap=False
            )
        else:
            import xgboost

            # a raw Booster's adapter keeps it as .booster (an XGBClassifier's .booster is
            # the name of its booster type)
            raw = getattr(native, "booster", None)
            model = raw if isinstance(raw, xgboost.Booster) else native
            graph = onnxmltools.convert_xgboost(
                _positional(model), initial_types=types, target_opset=_BOOSTER_OPSET
            )
    except Exception as exc:
        raise InvalidInput(
            f"Cannot convert {where} to ONNX: onnxmltools failed on the {flavor} model: "
            f"{type(exc).__name__}: {str(exc)[:300]}. Nothing was registered.",
            field="model",
        ) from exc
    return bytes(graph.SerializeToString())


def _positional(model: Any) -> Any:
    """A copy whose booster has no feature names (onnxmltools reads ``f0, f1, ...`` only); the
    graph takes the columns in signature order, the order the model was fitted in."""
    clone = copy.deepcopy(model)
    booster = clone.get_booster() if hasattr(clone, "get_booster") else clone
    booster.feature_names = None
    return clone
