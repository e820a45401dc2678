"""A model ready to serve: its validator, and one predict call per batch of rows.

A batch reaches the model as the DataFrame it was trained on, built once per batch. One
exception, measured in benchmarks/serving.py: a plain scikit-learn estimator (no pipeline)
fitted on numeric columns gets a float64 matrix in the same column order instead, because
scikit-learn's DataFrame checks cost more than the prediction itself at small batches
(HistGradientBoostingClassifier, 20 columns, 32 rows: ~1.5 ms as a DataFrame, ~0.7 ms as a
matrix). The estimator's ``feature_names_in_`` must equal the signature's columns, so the
matrix means exactly what the DataFrame means.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pandas as pd

from modelpilot.matrix import float_matrix
from modelpilot.models import LoadedModel
from modelpilot.serving.records_decoder import RecordsDecoder, records_decoder
from modelpilot.serving.validation import NUMBER_TYPES, RequestValidator, Row

_NUMERIC = ("float64", "float32", "int64", "int32")


@dataclass(eq=False)
class BatchOutput:
    """Predictions for a batch, row-aligned with its input rows (made once per batch and only
    read after; not frozen: a frozen dataclass's ``__init__`` sets each field through
    ``object.__setattr__``, ~12,000 instructions a batch against ~2,000)."""

    predictions: np.ndarray
    probabilities: np.ndarray | None
    # The batch as the float64 matrix the model was given, when it took one: the domain
    # flags and the prediction log reuse it instead of converting the rows again (~20-35 us
    # for 32 rows of 20 columns).
    matrix: np.ndarray | None = None

    @functools.cached_property
    def prediction_list(self) -> list[Any]:
        """Predictions as Python values, converted once per batch (each request slices it)."""
        return list(self.predictions.tolist())

    @functools.cached_property
    def probability_list(self) -> list[Any] | None:
        """Probabilities as nested lists, converted once per batch."""
        return None if self.probabilities is None else list(self.probabilities.tolist())

    @functools.cached_property
    def row_json(self) -> tuple[list[bytes], list[bytes] | None] | None:
        """Each row's prediction as JSON and, for a classifier, its probabilities (without the
        outer brackets); None when a prediction is not a plain number.

        Built once per batch from one ``orjson.dumps`` of each array, split at the rows'
        boundaries (numbers hold no comma or bracket; a text label could, hence None), so that
        a one-row request joins bytes instead of building and serialising a dict of its slices
        (see DataPlane.predict_payload). A float64 or integer array is serialised as it is,
        which orjson writes exactly as the Python numbers of ``tolist()`` (the property test
        in tests/unit/serving/test_serving_answers.py holds both to the dict answer): ~20,000
        instructions for 32 rows and two classes, against ~100,000 through the lists.
        """
        labels = _numbers_json(self.predictions, 1)
        if labels is None:
            predictions = self.prediction_list
            if not NUMBER_TYPES.issuperset(map(type, predictions)):  # (bool is neither)
                return None
            labels = orjson.dumps(predictions)
        if self.probabilities is None:
            return labels[1:-1].split(b","), None
        probabilities = _numbers_json(self.probabilities, 2)
        if probabilities is None:
            probabilities = orjson.dumps(self.probability_list)
        return labels[1:-1].split(b","), probabilities[2:-2].split(b"],[")


def _numbers_json(values: np.ndarray, ndim: int) -> bytes | None:
    """orjson's JSON of a float64 or integer array of ``ndim`` dimensions; None for any other
    (float32 would be written at its own precision, not as the float64 ``tolist()`` gives)."""
    dtype = values.dtype
    if values.ndim != ndim or (dtype.kind not in "iu" and dtype != np.float64):
        return None
    try:
        return orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)
    except orjson.JSONEncodeError:  # an array orjson does not take (not contiguous)
        return None


@dataclass
class ModelRuntime:
    """One loaded model version in the server."""

    name: str
    version: int
    model: LoadedModel
    validator: RequestValidator = field(init=False)
    all_numeric: bool = field(init=False)
    takes_matrix: bool = field(init=False)

    matrix_predictor: Any = field(init=False)
    # The usual /predict body of an all-float model, parsed and checked in one pass (None:
    # other signatures, which orjson and the validator handle).
    decode_records: RecordsDecoder | None = field(init=False)

    def __post_init__(self) -> None:
        self.validator = RequestValidator(self.model.signature)
        self.decode_records = (
            records_decoder(self.validator.names) if self.validator.all_float else None
        )
        self.all_numeric = all(s.dtype in _NUMERIC for s in self.model.signature.inputs)
        self.takes_matrix = self.all_numeric and accepts_matrix(self.model)
        self.matrix_predictor = nameless(self.model.predictor) if self.takes_matrix else None

    @functools.cached_property
    def labels(self) -> tuple[str, str]:
        """(model, version) as metric label values."""
        return self.name, str(self.version)

    @property
    def key(self) -> str:
        """``name/version``."""
        return f"{self.name}/{self.version}"

    @functools.cached_property
    def classes(self) -> list[Any] | None:
        """Class labels of a classifier (read on every answer: kept, not recomputed)."""
        return self.model.classes

    def frame(self, rows: list[Row]) -> pd.DataFrame:
        """The batch as the DataFrame the model was trained on (built once per batch)."""
        specs = self.model.signature.inputs
        names = [s.name for s in specs]
        if self.all_numeric:
            matrix = float_matrix(rows)
            frame = pd.DataFrame(matrix, columns=names, copy=False)
            casts = {s.name: s.dtype for s in specs if s.dtype != "float64"}
            return frame.astype(casts) if casts else frame
        columns = list(zip(*rows, strict=True))
        data: dict[str, Any] = {}
        for spec, values in zip(specs, columns, strict=True):
            if spec.dtype in _NUMERIC:
                data[spec.name] = np.asarray(values, dtype=spec.dtype)
            elif spec.dtype == "bool":
                data[spec.name] = np.asarray(values, dtype=bool)
            elif spec.dtype == "datetime":
                data[spec.name] = pd.to_datetime(pd.Series(values), utc=True)
            else:
                data[spec.name] = np.asarray(values, dtype=object)
        return self.model.with_missing_text_as_trained(pd.DataFrame(data))

    def predict_rows(self, rows: list[Row]) -> BatchOutput:
        """One predict (and predict_proba for classifiers) for the whole batch."""
        classifier = self.model.signature.is_classifier
        if self.takes_matrix:
            matrix = float_matrix(rows)
            if classifier:
                proba = np.asarray(self.matrix_predictor.predict_proba(matrix))
                return BatchOutput(self.class_labels[proba.argmax(axis=1)], proba, matrix)
            return BatchOutput(np.asarray(self.matrix_predictor.predict(matrix)), None, matrix)
        if classifier:
            proba = self.model.predict_proba_prepared(self.frame(rows))
            return BatchOutput(self.class_labels[proba.argmax(axis=1)], proba)
        return BatchOutput(self.model.predict_prepared(self.frame(rows)), None)

    @functools.cached_property
    def answer_head(self) -> bytes:
        """What follows the request id in a one-row answer, up to its prediction:
        ``,"model":..,"version":..,"predictions":[``."""
        name = orjson.dumps(self.name)
        return b',"model":%s,"version":%d,"predictions":[' % (name, self.version)

    @functools.cached_property
    def answer_tail(self) -> bytes:
        """What ends a classifier's answer after its probabilities: ``]],"classes":[..]}``."""
        classes = orjson.dumps(self.classes, option=orjson.OPT_SERIALIZE_NUMPY)
        return b']],"classes":' + classes + b"}"

    @functools.cached_property
    def class_labels(self) -> np.ndarray:
        """The classifier's labels as an array, indexed by predict_proba's columns."""
        return np.asarray(self.model.classes)


def accepts_matrix(model: LoadedModel) -> bool:
    """Whether a float64 matrix in signature order means exactly what the DataFrame means.

    True for an ONNX graph that takes one float tensor, for a compiled tree ensemble, for a
    scikit-learn estimator fitted on a plain matrix of as many columns, and for a plain
    estimator (not a pipeline or column transformer, which may select columns by name) whose
    ``feature_names_in_`` are the signature's columns.
    """
    signature, predictor = model.signature, model.predictor
    if model.flavor in ("onnx", "compiled"):  # one float matrix in signature order
        return bool(getattr(predictor, "takes_matrix", False))
    if model.flavor != "sklearn" or signature.input_kind != "columns":
        return False
    names = getattr(predictor, "feature_names_in_", None)
    if names is None:
        return getattr(predictor, "n_features_in_", None) == len(signature.inputs)
    composite = any(hasattr(predictor, a) for a in ("steps", "transformers", "estimators"))
    return not composite and [str(n) for n in names] == signature.column_names


def nameless(predictor: Any) -> Any:
    """The fitted estimator as if fitted on a plain matrix: a shallow copy without names.

    scikit-learn warns on every matrix call to an estimator fitted with column names; the
    order is the signature's (checked by accepts_matrix), so the warning says nothing new, and
    silencing it per batch with ``warnings.catch_warnings`` cost ~45 us a call (measured:
    HistGradientBoostingClassifier at 16 rows, 454 vs 498 us). The copy shares the fitted
    state, so it costs no memory.
    """
    if not hasattr(predictor, "feature_names_in_"):
        return predictor
    view = copy.copy(predictor)
    del view.feature_names_in_
    return view
