"""The prediction log: what the data plane answered, kept as Parquet segments, and the labels
that arrive for it later.

Owns the log's format together with everything that touches it: the writer
(:class:`PredictionLog`: batches, write-ahead files, recovery, segments), the one typed reader
(:class:`PredictionReader`: rows, windows, per-request and per-variant figures, read-only SQL),
the labels and their join (:mod:`.labels`), the per-column privacy policies and where they are
stored (:mod:`.log_policy`, :mod:`.policy_store`), retention (:mod:`.retention`), and where the
log lives in a home (:func:`log_folder`).

It never serves HTTP, never decides anything about a release or an alert (it reports what
was logged; ``release`` and ``monitoring`` judge it), and imports nothing above the core
records layer: no ``serving``, ``release``, ``monitoring``, workspace or SDK.
"""

from __future__ import annotations

from modelpilot.predictions.batch import LogBatch, LogRow
from modelpilot.predictions.files import labels_folder, log_folder
from modelpilot.predictions.labels import join_labels, log_labels, read_labels
from modelpilot.predictions.reader import PredictionReader, VariantEvidence, read_predictions
from modelpilot.predictions.segments import write_segments
from modelpilot.predictions.wal import recover_wal_files
from modelpilot.predictions.writer import PredictionLog

__all__ = [
    "LogBatch",
    "LogRow",
    "PredictionLog",
    "PredictionReader",
    "VariantEvidence",
    "join_labels",
    "labels_folder",
    "log_folder",
    "log_labels",
    "read_labels",
    "read_predictions",
    "recover_wal_files",
    "write_segments",
]
