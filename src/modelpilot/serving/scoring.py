"""Batch scoring: stream a Parquet, CSV or TSV file through a model in chunks, on every core.

Memory stays bounded whatever the input size: the reader yields ``chunk_rows`` at a time, at
most ``2 x workers`` chunks are in flight, and results are appended to the output in input
order as they complete. Workers are threads sharing one loaded model: the tree ensembles'
predict loops and Arrow/NumPy conversions release the GIL, and a second Python process would
cost ~300 MB of imports (measured with benchmarks/scoring.py), against the 1 GiB budget.
"""

from __future__ import annotations

import math
import os
import re
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from modelpilot.errors import InvalidInput, ModelFailed, ModelpilotError, shown
from modelpilot.models import LoadedModel
from modelpilot.models.signature import NUMERIC_DTYPES, Signature
from modelpilot.serving.threads import limit_native_threads
from modelpilot.tables import ACCEPTED, TableKind, delimiter, is_gzip, table_kind, text_stream


def score_chunk(
    model: LoadedModel, table: pa.Table, offset: int, missing_text: float | None = None
) -> pa.Table:
    """The chunk's columns as they came, then ``prediction`` (and ``proba_<class>`` for
    classifiers). ``offset`` is the chunk's first row in the file: a bad value names its
    file row; ``missing_text`` is :func:`missing_text_of` the file."""
    inputs = model_inputs(model.signature, table)
    return attach_predictions(table, predict_columns(model, inputs, offset, missing_text))


def missing_text_of(path: Path) -> float | None:
    """What a missing value in a text column is to the model: what pandas reads from that
    file, since that is what the model was trained on from such a file. ``pandas.read_csv``
    gives NaN (which scikit-learn's SimpleImputer imputes), ``pandas.read_parquet`` None.

    >>> missing_text_of(Path("in.csv.gz")), missing_text_of(Path("in.parquet"))
    (nan, None)
    """
    return None if table_kind(path) == "parquet" else math.nan


def model_inputs(signature: Signature, table: pa.Table) -> pa.Table:
    """The columns of ``table`` the model reads, in its order; refuses a chunk that lacks any
    (before a Ray worker would receive it)."""
    missing = [name for name in signature.column_names if name not in table.column_names]
    if missing:
        raise InvalidInput(
            f"The input file lacks column(s) the model needs: {', '.join(missing)}. Expected: "
            f"{', '.join(signature.column_names)}.",
            field="input",
        )
    return table.select(signature.column_names)


def predict_columns(
    model: LoadedModel, inputs: pa.Table, offset: int, missing_text: float | None = None
) -> pa.Table:
    """``prediction`` (and one ``proba_<class>`` per class) for the rows of ``inputs`` (the
    model's columns only, :func:`model_inputs`): all a Ray worker sends back. A missing
    value in a text column reaches the model as ``missing_text`` (:func:`missing_text_of`)."""
    inputs = numbers_from_text(model, inputs, offset)
    frame = inputs.to_pandas()
    if missing_text is not None:
        for spec in model.signature.inputs:
            if spec.dtype == "string" and spec.name in frame:
                column = frame[spec.name]
                frame[spec.name] = column.astype(object).where(column.notna(), missing_text)
    try:
        frame = model.with_missing_text_as_trained(model.signature.coerce(frame, where="input"))
    except InvalidInput as exc:
        message = _shift_row(exc.message.replace("(row ", "(file row "), offset)
        raise InvalidInput(message, field=exc.field) from None
    columns: dict[str, pa.Array] = {}
    try:
        if model.signature.is_classifier:
            proba = model.predict_proba_prepared(frame)
            classes = model.classes or list(range(proba.shape[1]))
            columns["prediction"] = pa.array(np.asarray(classes)[np.argmax(proba, axis=1)])
            for index, label in enumerate(classes):
                columns[f"proba_{label}"] = pa.array(np.ascontiguousarray(proba[:, index]))
        else:
            columns["prediction"] = pa.array(np.asarray(model.predict_prepared(frame)))
    except ModelpilotError:
        raise
    except Exception as exc:  # the model's own (an unseen category, a bug in its code)
        last = offset + max(inputs.num_rows - 1, 0)
        raise ModelFailed(
            f"The model raised on file rows {offset:,}-{last:,}: {type(exc).__name__}: "
            f"{str(exc)[:300]}. No output was written."
        ) from exc
    return pa.table(columns)


def numbers_from_text(model: LoadedModel, inputs: pa.Table, offset: int) -> pa.Table:
    """Numeric model columns that a CSV reader typed as text (one bad value among numbers
    makes a whole block text) parsed as numbers; InvalidInput naming the first value that is
    not one and its file row. Only a text file's columns are text here: the data plane's JSON
    keeps refusing a number sent as a string."""
    for index, spec in enumerate(model.signature.inputs):
        column = inputs.column(index)
        if spec.dtype not in NUMERIC_DTYPES or not pa.types.is_string(column.type):
            continue
        trimmed = pc.utf8_trim_whitespace(column)
        text = pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)
        try:  # Arrow's parser reads every float exactly (pandas' fast one may not)
            numbers = pc.cast(text, pa.float64())
        except pa.ArrowInvalid:
            row = _first_not_a_number(text)
            raise InvalidInput(
                f"Input column {spec.name!r} (file row {offset + row}): expected a number "
                f"({spec.dtype}); got {shown(column[row].as_py())}.",
                field=spec.name,
            ) from None
        inputs = inputs.set_column(index, spec.name, numbers)
    return inputs


def _first_not_a_number(text: pa.ChunkedArray) -> int:
    """The position of the first value Arrow cannot cast to a number (one exists): a
    bisection over slices, so the answer is Arrow's own, in about log2(rows) casts."""
    low, high = 0, len(text)  # the first bad value is in text[low:high]
    while high - low > 1:
        middle = (low + high) // 2
        try:
            pc.cast(text.slice(low, middle - low), pa.float64())
            low = middle
        except pa.ArrowInvalid:
            high = middle
    return low


def attach_predictions(table: pa.Table, predictions: pa.Table) -> pa.Table:
    """``table`` with the prediction columns after its own (one of the same name replaced).

    The input's columns keep their Arrow types exactly (an integer column with missing
    values stays integer); the input's pandas metadata is dropped, as it describes only the
    input's columns."""
    out = table.replace_schema_metadata(None)
    for name, column in zip(predictions.column_names, predictions.columns, strict=True):
        if name in out.column_names:
            out = out.set_column(out.column_names.index(name), name, column)
        else:
            out = out.append_column(name, column)
    return out


def _shift_row(message: str, offset: int) -> str:
    """A chunk's "(file row N)" counted from the file's start."""
    return re.sub(
        r"\(file row (\d+)\)", lambda m: f"(file row {int(m.group(1)) + offset})", message
    )


def check_score_paths(source: Path, target: Path) -> None:
    """Refuse a missing or unreadable input and an output of another format, before any work
    (the CLI calls it before loading the model or drawing a progress bar)."""
    if not source.is_file():
        raise InvalidInput(f"No input file at {source}.", field="input")
    if table_kind(source) is None:
        raise InvalidInput(f"Cannot score {source.name}: use a {ACCEPTED} file.", field="input")
    if table_kind(target) is None:
        raise InvalidInput(
            f"Cannot write {target.name}: use a {ACCEPTED} output file.", field="output"
        )


# pandas.read_csv's default missing-value strings (pandas._libs.parsers.STR_NA_VALUES):
# models are trained on frames pandas read, so "n/a" or "" in a text column must reach the
# model as missing, as in training, not as a category never seen (a silently different score).
PANDAS_NA_STRINGS = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)  # fmt: skip


def csv_parse_options(kind: TableKind) -> pacsv.ParseOptions:
    """A text table's separator (a comma, or a tab for .tsv)."""
    return pacsv.ParseOptions(delimiter=delimiter(kind))


def csv_options(signature: Signature) -> pacsv.ConvertOptions:
    """How a scored CSV is read: pandas' missing values, in text columns too, and the
    signature's text columns as text even where a block holds only missing values (Arrow
    would call such a column null-typed and refuse the first value of a later block)."""
    text = {c.name: pa.string() for c in signature.inputs if c.dtype == "string"}
    return pacsv.ConvertOptions(
        null_values=list(PANDAS_NA_STRINGS), strings_can_be_null=True, column_types=text
    )


def read_chunks(
    path: Path, chunk_rows: int, signature: Signature
) -> tuple[Iterator[pa.Table], int | None]:
    """Chunks of the input and the total row count when the format knows it; a CSV is read
    with :func:`csv_options`."""
    kind = table_kind(path)
    if not path.is_file():
        raise InvalidInput(f"No input file at {path}.", field="input")
    if kind is None:
        raise InvalidInput(f"Cannot score {path.name}: use a {ACCEPTED} file.", field="input")
    if kind == "parquet":
        parquet = pq.ParquetFile(path)
        batches = parquet.iter_batches(batch_size=chunk_rows)
        return (pa.Table.from_batches([b]) for b in batches), parquet.metadata.num_rows
    reader = pacsv.open_csv(
        text_stream(path),
        read_options=pacsv.ReadOptions(block_size=chunk_rows * 200),
        parse_options=csv_parse_options(kind),
        convert_options=csv_options(signature),
    )
    return _csv_chunks(reader), None


def _csv_chunks(reader: pacsv.CSVStreamingReader) -> Iterator[pa.Table]:
    """The reader's blocks as tables; a value its column's type cannot hold (the type comes
    from the file's first block) as InvalidInput naming the column, the value and the rows."""
    rows = 0
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except pa.ArrowInvalid as exc:
            raise InvalidInput(_csv_error(str(exc), reader.schema, rows), field="input") from None
        rows += batch.num_rows
        yield pa.Table.from_batches([batch])


def _csv_error(message: str, schema: pa.Schema, rows: int) -> str:
    """Arrow's "In CSV column #0: CSV conversion error to double: invalid value 'oops'" in
    the file's terms.

    >>> schema = pa.schema([("a", pa.int64()), ("b", pa.float64())])
    >>> _csv_error("In CSV column #1: CSV conversion error to double: invalid value 'x'",
    ...            schema, 5000)[:58]
    "Input column 'b' (a file row after 5,000): expected double"
    """
    found = re.match(
        r"In CSV column #(\d+): CSV conversion error to (\w+): invalid value (.*)", message
    )
    if found is None or int(found.group(1)) >= len(schema):
        return f"Cannot read the CSV input after file row {rows:,}: {message}"
    name = schema.names[int(found.group(1))]
    return (
        f"Input column {name!r} (a file row after {rows:,}): expected {found.group(2)}, the "
        f"type of its first rows; got {found.group(3)}. Fix the value (or give the column one "
        "type throughout)."
    )


class _Writer:
    def __init__(self, path: Path, kind: TableKind, gzip: bool) -> None:
        self.path = path
        self.kind = kind
        self.gzip = gzip
        self.parquet: pq.ParquetWriter | None = None
        self.csv: pacsv.CSVWriter | None = None
        self.stream: pa.NativeFile | None = None

    def write(self, table: pa.Table) -> None:
        if self.kind != "parquet":
            if self.csv is None:
                self.stream = (
                    pa.CompressedOutputStream(str(self.path), "gzip")
                    if self.gzip
                    else pa.OSFile(str(self.path), "wb")
                )
                options = pacsv.WriteOptions(delimiter=delimiter(self.kind))
                self.csv = pacsv.CSVWriter(self.stream, table.schema, write_options=options)
            self.csv.write_table(table)
        else:
            if self.parquet is None:
                self.parquet = pq.ParquetWriter(self.path, table.schema)
            self.parquet.write_table(table.cast(self.parquet.schema))

    def close(self) -> None:
        """Close the writer, then the (gzip) stream under it; a second call does nothing."""
        writers = (self.parquet, self.csv, self.stream)
        self.parquet, self.csv, self.stream = None, None, None
        for writer in writers:
            if writer is not None:
                writer.close()


def score_file(
    model: LoadedModel,
    source: Path,
    target: Path,
    *,
    chunk_rows: int = 100_000,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Score ``source`` into ``target`` (.parquet or .csv); returns the number of rows."""
    check_score_paths(source, target)
    chunks, _total = read_chunks(source, chunk_rows, model.signature)
    missing = missing_text_of(source)
    workers = workers or max(1, len(os.sched_getaffinity(0)))

    def scored() -> Iterator[pa.Table]:
        with ThreadPoolExecutor(
            workers,
            thread_name_prefix="modelpilot-score",
            initializer=limit_native_threads,
            initargs=(1,),
        ) as pool:
            in_flight: deque[Future[pa.Table]] = deque()
            offset = 0
            for chunk in chunks:
                in_flight.append(pool.submit(score_chunk, model, chunk, offset, missing))
                offset += chunk.num_rows
                while len(in_flight) >= 2 * workers:
                    yield in_flight.popleft().result()
            while in_flight:
                yield in_flight.popleft().result()

    return write_scored(
        target,
        scored(),
        lambda: empty_output(model.signature, input_schema(source, model.signature)),
        progress,
    )


def write_scored(
    target: Path,
    tables: Iterator[pa.Table],
    empty: Callable[[], pa.Table],
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write scored tables, in the order they come, to ``target``; returns the row count.

    The rows go to a hidden ``.<name>.partial`` file that becomes ``target`` (a rename) only
    once every table arrived, so a failure (a bad value, a worker that died) leaves no output
    that looks complete. No table at all writes ``empty()``: an output with every column."""
    tmp = target.with_name(f".{target.name}.partial")
    kind = table_kind(target)
    assert kind is not None  # (check_score_paths refused any other output)
    writer = _Writer(tmp, kind, gzip=is_gzip(target))
    rows = 0
    try:
        for table in tables:
            writer.write(table)
            rows += table.num_rows
            if progress is not None:
                progress(table.num_rows)
        if rows == 0:  # a header-only file: an empty output that still has every column
            writer.write(empty())
        writer.close()
        os.replace(tmp, target)
    except BaseException:
        close = getattr(tables, "close", None)  # a generator: stop its workers now
        if close is not None:
            close()
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    return rows


def input_schema(path: Path, signature: Signature) -> pa.Schema:
    """The columns of a .parquet or .csv input, read from its metadata or header (a CSV as
    :func:`read_chunks` reads it)."""
    kind = table_kind(path)
    if kind == "parquet":
        return pq.ParquetFile(path).schema_arrow
    parse = csv_parse_options(kind or "csv")
    with pacsv.open_csv(
        text_stream(path), parse_options=parse, convert_options=csv_options(signature)
    ) as r:
        return r.schema


def empty_output(signature: Signature, schema: pa.Schema) -> pa.Table:
    """The zero-row result of scoring an input with ``schema``: its columns, then
    ``prediction`` and (for classifiers) one ``proba_<class>`` per class, as for any chunk."""
    columns = {name: pa.array([], schema.field(name).type) for name in schema.names}
    if signature.is_classifier:
        classes = list(signature.classes or [])
        columns["prediction"] = pa.array(np.asarray(classes)[:0])
        for label in classes:
            columns[f"proba_{label}"] = pa.array([], pa.float64())
    else:
        columns["prediction"] = pa.array([], pa.float64())
    return pa.table(columns)


def total_rows(path: Path) -> int | None:
    """Row count from Parquet metadata (None for CSV)."""
    return pq.ParquetFile(path).metadata.num_rows if table_kind(path) == "parquet" else None
