"""What the prediction log records per batch: one row per input row, typed columns, ids."""

from __future__ import annotations

import math
import struct

import numpy as np
import pyarrow as pa
from serving_stubs import runtime

from modelpilot.predictions.batch_log import log_batch
from modelpilot.serving.app import RequestContext
from modelpilot.serving.batching import Pending
from modelpilot.serving.runtime import BatchOutput


def test_a_batch_becomes_typed_columns_with_one_row_per_input_row() -> None:
    rt = runtime()
    batch = [
        Pending([[30, 1.5], [40, math.nan]], None, RequestContext("r1", "shop", "canary"), 0.0),
        Pending([[50, 2.5]], None, RequestContext("r2", None, None), 0.0),
    ]
    output = BatchOutput(np.array([60.0, 80.0, 100.0]), None)
    logged = log_batch(rt, batch, output, None)
    table = logged.table()
    assert logged.size == table.num_rows == 3
    assert table.column("request_id").to_pylist() == ["r1", "r1", "r2"]
    assert table.column("row").to_pylist() == [0, 1, 0]
    assert table.column("variant").to_pylist() == ["canary", "canary", None]
    assert table.schema.field("in.age").type == pa.int64()  # int64 input stays an integer
    assert table.column("in.age").to_pylist() == [30, 40, 50]
    assert table.column("in.income").to_pylist()[0] == 1.5
    assert math.isnan(table.column("in.income").to_pylist()[1])
    assert table.column("out.prediction").to_pylist() == [60.0, 80.0, 100.0]
    assert table.column("version").to_pylist() == [1, 1, 1]


def test_rows_the_compiled_decoder_packed_log_the_same_values_beside_checked_rows() -> None:
    """A batch mixes both kinds when a request with its own id took the checked path."""
    packed = Pending([struct.pack("2d", 30.0, 1.5)], None, RequestContext("r1", None, None), 0.0)
    checked = Pending([[40, 2.5]], None, RequestContext("r2", None, None), 0.0)
    for batch in ([packed, checked], [checked, packed], [packed, packed]):
        output = BatchOutput(np.zeros(len(batch)), None)
        table = log_batch(runtime(), batch, output, None).table()
        expected = [30 if p is packed else 40 for p in batch]
        assert table.column("in.age").to_pylist() == expected
        assert table.column("in.income").to_pylist() == [1.5 if e == 30 else 2.5 for e in expected]


def test_a_failed_batch_records_the_error_and_no_outputs() -> None:
    batch = [Pending([[1, 1.0]], None, RequestContext("r9", None, None), 0.0)]
    logged = log_batch(runtime(), batch, None, RuntimeError("negative age"))
    assert logged.columns["error"] == ["RuntimeError: negative age"]
    assert "out.prediction" not in logged.columns
