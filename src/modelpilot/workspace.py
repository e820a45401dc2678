"""The Workspace: settings, store, artifacts and the active run, behind the SDK's functions.

``import modelpilot as mp`` calls go to the active workspace, built lazily from the
environment on first use (``MODELPILOT_HOME``, ``MODELPILOT_STORE_URI``) or explicitly with
``mp.init(...)``. Tests and services build their own ``Workspace(Settings(...))``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from math import isfinite
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, cast

import pandas as pd

from modelpilot.artifacts import ArtifactStore, open_artifact_store, remove_stale_temp_files
from modelpilot.audit.local import LocalAudit
from modelpilot.audit.protocol import AuditService
from modelpilot.clock import now_ms
from modelpilot.config import Settings
from modelpilot.data import DatasetVersion
from modelpilot.data.local import LocalDatasets
from modelpilot.data.protocol import DatasetService
from modelpilot.data.risks import DataRisks, assess_risks
from modelpilot.data.service import read_table
from modelpilot.errors import InvalidInput
from modelpilot.identity.service import LocalTokens, TokenService
from modelpilot.models import LoadedModel, Signature, TrustPolicy, build_package, load_package
from modelpilot.models.pii import detect_pii
from modelpilot.predictions.policy_service import LocalLogPolicies, LogPolicyService
from modelpilot.registry import ModelVersion, RegisteredModel
from modelpilot.registry.lineage import Lineage
from modelpilot.registry.local import LocalRegistry
from modelpilot.registry.protocol import RegistryService
from modelpilot.registry.refs import check_model_name
from modelpilot.registry.roles import DatasetsArg, link_datasets, training_domain
from modelpilot.release import get_deployment
from modelpilot.release.protocol import DeploymentService, LocalDeployments
from modelpilot.store import Store
from modelpilot.tracking import search, service
from modelpilot.tracking.artifacts import ArtifactService, LocalArtifacts
from modelpilot.tracking.buffer import MetricBuffer
from modelpilot.tracking.entities import Experiment, MetricPoint, Run, RunStatus
from modelpilot.tracking.environment import capture_environment, code_revision
from modelpilot.tracking.frame import runs_frame
from modelpilot.tracking.local import LocalTracking
from modelpilot.tracking.owner import current_owner
from modelpilot.tracking.protocol import MAX_PAGE_SIZE, MetricRow, TrackingService
from modelpilot.tracking.validation import (
    check_artifact_path,
    check_key,
    check_metric_value,
    check_step,
)

if TYPE_CHECKING:
    import optuna

    from modelpilot.alerting.protocol import AlertService
    from modelpilot.cards.protocol import CardService
    from modelpilot.client import HttpArtifactStore
    from modelpilot.client.http import HttpTracking
    from modelpilot.monitoring.service import MonitoringService
    from modelpilot.tuning import StudyStorage, TuneResult

DEFAULT_EXPERIMENT = "Default"


def _client() -> ModuleType:
    """The HTTP client package, imported on first use: only a workspace with a server needs
    it, and httpx with it costs every local command ~0.3 s of start-up (measured)."""
    import modelpilot.client

    return modelpilot.client


_log = logging.getLogger(__name__)
# Points per request when buffered metrics go to a server (about 400 KB of JSON).
_HTTP_BATCH_POINTS = 10_000
SERVED_CALLS = (
    "start_run, end_run, log_param(s), set_tag(s), log_metric(s), log_batch, flush, get_run, "
    "get_metric_history, search_runs, list_experiments, log_artifact, log_dataset, "
    "get_dataset, load_dataset, log_model, load_model, get_model_version, list_models, "
    "set_alias, delete_alias, lineage, create_deployment, canary, shadow, ab_test, promote, "
    "rollback, get_deployment, deployment_history, verify_audit, evaluate, gate, model_card, "
    "update_model_card, dataset_card, tune, monitoring jobs and reports (on the server's "
    "prediction log), tokens (admin), the rollout controller and the A/B report, log_labels "
    "and read_predictions (these three on this home's prediction log); not yet pipelines"
)


class ActiveRun:
    """A run in progress; also a context manager that ends it (FAILED if the block raises)."""

    def __init__(self, workspace: Workspace, run: Run) -> None:
        self.workspace = workspace
        self.id = run.id
        self.experiment = run.experiment
        self.name = run.name
        self.next_step: dict[str, int] = {}

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        status = RunStatus.FINISHED if exc_type is None else RunStatus.FAILED
        if exc_type is KeyboardInterrupt:
            status = RunStatus.KILLED
        self.workspace.end_run(status, run_id=self.id)

    def info(self) -> Run:
        """The run as stored now (flushing buffered metrics first)."""
        return self.workspace.get_run(self.id)

    def __repr__(self) -> str:
        return f"ActiveRun(id={self.id!r}, experiment={self.experiment!r}, name={self.name!r})"


class Workspace:
    """Everything one user session needs; the SDK's functions delegate here."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self._store: Store | None = None
        self._artifacts: ArtifactStore | None = None
        self._buffer: MetricBuffer | None = None
        self._tracking: TrackingService | None = None
        self._registry: RegistryService | None = None
        self._datasets: DatasetService | None = None
        self._deployments: DeploymentService | None = None
        self._log_policies: LogPolicyService | None = None
        self._run_artifacts: ArtifactService | None = None
        self._audit: AuditService | None = None
        self._alerts: AlertService | None = None
        self._cards: CardService | None = None
        self._monitoring: MonitoringService | None = None
        self._tokens: TokenService | None = None
        self._runs: list[ActiveRun] = []
        self._lock = threading.Lock()
        self._checked_keys: set[str] = set()

    # -- plumbing -------------------------------------------------------------------------
    @property
    def is_remote(self) -> bool:
        """True when tracking goes to ``modelpilot server`` (``MODELPILOT_SERVER_URI``)."""
        return bool(self.settings.server_uri)

    @property
    def tracking(self) -> TrackingService:
        """The tracking service: over HTTP when a server is configured, else in-process."""
        if self._tracking is None:
            with self._lock:
                if self._tracking is None and self.is_remote:
                    assert self.settings.server_uri is not None  # is_remote checked it
                    self._tracking = _client().HttpTracking(
                        self.settings.server_uri, token=self.settings.token
                    )
            if self._tracking is None:
                self._tracking = LocalTracking(self.local_store(), owner=current_owner())
        return self._tracking

    @property
    def store(self) -> Store:
        """The metadata store, opened (and migrated) on first use.

        With a server configured, calls that need it are refused rather than silently
        written to a local store the team never sees."""
        self._refuse_when_remote()
        return self.local_store()

    def _refuse_when_remote(self) -> None:
        if self.is_remote:
            raise InvalidInput(
                f"This call is not yet available over modelpilot server "
                f"(MODELPILOT_SERVER_URI={self.settings.server_uri}): served so far are "
                f"{SERVED_CALLS}. Other calls still need the local store: unset "
                "MODELPILOT_SERVER_URI (or call mp.init() without server=) to use them.",
                field="server_uri",
            )

    def local_store(self) -> Store:
        """The local metadata store, even when tracking goes to a server (``modelpilot
        tokens`` and the server itself work on it directly)."""
        if self._store is None:
            with self._lock:
                if self._store is None:
                    store = Store.open(
                        self.settings.resolved_store_uri(),
                        busy_timeout_ms=self.settings.sqlite_busy_timeout_ms,
                    )
                    try:
                        self._clean_crash_residue(store)
                    except BaseException:
                        store.close()
                        raise
                    self._store = store
        return self._store

    def _clean_crash_residue(self, store: Store) -> None:
        """What killed processes left: RUNNING runs become KILLED, day-old temp files go."""
        service.mark_abandoned_runs(store)
        remove_stale_temp_files(self.settings.resolved_artifact_root())
        remove_stale_temp_files(self.settings.home / "cache" / "packages", recursive=True)
        remove_stale_temp_files(self.settings.resolved_artifact_cache_dir())

    @property
    def artifacts(self) -> ArtifactStore:
        """The artifact store: a local folder, an S3 bucket (``MODELPILOT_ARTIFACTS_URI``), or
        the server's blobs (streamed over HTTP)."""
        if self._artifacts is None:
            with self._lock:
                if self._artifacts is None:
                    self._artifacts = (
                        _client().HttpArtifactStore(
                            self._server_uri(),
                            token=self.settings.token,
                            chunk_bytes=self.settings.upload_chunk_bytes,
                        )
                        if self.is_remote
                        else open_artifact_store(self.settings)
                    )
        return self._artifacts

    def _server_uri(self) -> str:
        assert self.settings.server_uri is not None  # callers checked is_remote
        return self.settings.server_uri

    @property
    def registry(self) -> RegistryService:
        """The registry service: over HTTP when a server is configured, else in-process."""
        if self._registry is None:
            self._registry = (
                _client().HttpRegistry(self._server_uri(), token=self.settings.token)
                if self.is_remote
                else LocalRegistry(self.local_store())
            )
        return self._registry

    @property
    def deployments(self) -> DeploymentService:
        """The deployment service: over HTTP when a server is configured, else in-process."""
        if self._deployments is None:
            self._deployments = (
                _client().HttpDeployments(self._server_uri(), token=self.settings.token)
                if self.is_remote
                else LocalDeployments(self.local_store())
            )
        return self._deployments

    @property
    def log_policies(self) -> LogPolicyService:
        """Prediction-log policies: over HTTP when a server is configured, else in-process."""
        if self._log_policies is None:
            if self.is_remote:
                self._log_policies = _client().HttpLogPolicies(
                    self._server_uri(), token=self.settings.token
                )
            else:
                store = self.local_store()
                self._log_policies = LocalLogPolicies(
                    store, check_deployment=lambda name: get_deployment(store, name)
                )
        return self._log_policies

    @property
    def datasets(self) -> DatasetService:
        """The dataset service: over HTTP when a server is configured, else in-process."""
        if self._datasets is None:
            blobs = self.artifacts
            self._datasets = (
                _client().HttpDatasets(
                    self._server_uri(),
                    artifacts=cast("HttpArtifactStore", blobs),
                    token=self.settings.token,
                )
                if self.is_remote
                else LocalDatasets(self.local_store(), blobs)
            )
        return self._datasets

    @property
    def audit(self) -> AuditService:
        """The audit log (list, export, verify): the server's when one is configured (an admin
        token), else the local store's."""
        if self._audit is None:
            self._audit = (
                _client().HttpAudit(self._server_uri(), token=self.settings.token)
                if self.is_remote
                else LocalAudit(self.local_store())
            )
        return self._audit

    @property
    def alerts(self) -> AlertService:
        """Recorded alerts: raised alerts land in the server's audit log when one is
        configured, else in the local store's."""
        if self._alerts is None:
            from modelpilot.alerting.local import LocalAlerts  # httpx sinks: on first use

            self._alerts = (
                _client().HttpAlerts(self._server_uri(), token=self.settings.token)
                if self.is_remote
                else LocalAlerts(self.local_store())
            )
        return self._alerts

    @property
    def cards(self) -> CardService:
        """Model and dataset cards: built by the server when one is configured, else here."""
        if self._cards is None:
            from modelpilot.cards.protocol import LocalCards  # on first use

            self._cards = (
                _client().HttpCards(self._server_uri(), token=self.settings.token)
                if self.is_remote
                else LocalCards(self.local_store(), self.artifacts)
            )
        return self._cards

    @property
    def monitoring(self) -> MonitoringService:
        """Monitoring jobs and their reports. With a server configured, the server runs them
        on the prediction log in its own home; locally they read this home's log."""
        if self._monitoring is None:
            from modelpilot.monitoring.service import LocalMonitoring  # scipy: on first use
            from modelpilot.predictions.bucket import log_bucket

            self._monitoring = (
                _client().HttpMonitoring(self._server_uri(), token=self.settings.token)
                if self.is_remote
                else LocalMonitoring(
                    self.local_store(),
                    self.artifacts,
                    self.settings.home,
                    log_bucket=log_bucket(self.settings),
                )
            )
        return self._monitoring

    @property
    def tokens(self) -> TokenService:
        """API tokens: the server's (an admin token) when one is configured, else the local
        store's (how the first admin token is made before a server runs)."""
        if self._tokens is None:
            self._tokens = (
                _client().HttpTokens(self._server_uri(), token=self.settings.token)
                if self.is_remote
                else LocalTokens(self.local_store())
            )
        return self._tokens

    def study_storage(self) -> StudyStorage:
        """Where tuning keeps its Optuna studies: the metadata store, or (with a server
        configured) a journal file in this home, one per server (see
        :mod:`modelpilot.tuning.storage`)."""
        from modelpilot.tuning import StudyStorage

        if self.is_remote:
            server = hashlib.sha256(self._server_uri().encode()).hexdigest()[:12]
            return StudyStorage(journal=self.settings.home / "tuning" / f"{server}.journal")
        self.local_store()  # creates the home folder and our tables before Optuna's
        return StudyStorage(
            url=self.settings.resolved_store_uri(),
            sqlite_timeout_s=self.settings.sqlite_busy_timeout_ms / 1000,
        )

    @property
    def run_artifacts(self) -> ArtifactService:
        """Run artifacts (``log_artifact``): over HTTP when a server is configured."""
        if self._run_artifacts is None:
            blobs = self.artifacts
            self._run_artifacts = (
                _client().HttpArtifacts(cast("HttpArtifactStore", blobs))
                if self.is_remote
                else LocalArtifacts(self.local_store(), blobs)
            )
        return self._run_artifacts

    @property
    def buffer(self) -> MetricBuffer:
        """The metric buffer shared by this workspace's runs."""
        if self._buffer is None:
            with self._lock:
                if self._buffer is None:
                    self._buffer = MetricBuffer(
                        self._send_remote if self.is_remote else self._write_local,
                        flush_interval_ms=self.settings.metric_flush_interval_ms,
                        max_points=self.settings.metric_flush_max_points,
                    )
        return self._buffer

    def _write_local(self, batch: Mapping[str, Sequence[MetricRow]]) -> None:
        service.log_metric_batches(self.local_store(), batch)

    def _send_remote(self, batch: Mapping[str, Sequence[MetricRow]]) -> None:
        """Send each run's points in requests of at most ``_HTTP_BATCH_POINTS``.

        The buffer hands over its own lists; removing each chunk once the server has it means
        a later failure puts back only what was not sent, so nothing is sent twice."""
        for run_id, rows in batch.items():
            while rows:
                chunk = rows[:_HTTP_BATCH_POINTS]
                tracking = self.tracking
                if self.is_remote:  # checked before they were buffered
                    cast("HttpTracking", tracking).send_checked_metrics(run_id, chunk)
                else:
                    tracking.log_metrics(run_id, chunk)
                if isinstance(rows, list):
                    del rows[: len(chunk)]
                else:
                    rows = rows[len(chunk) :]

    def flush(self) -> None:
        """Commit every buffered metric point now."""
        if self._buffer is not None:
            self._buffer.flush()

    def close(self) -> None:
        """Flush and release connections."""
        if self._buffer is not None:
            self._buffer.close()
        remotes = (
            self._tracking,
            self._registry,
            self._datasets,
            self._artifacts,
            self._deployments,
            self._audit,
            self._alerts,
            self._cards,
            self._monitoring,
            self._log_policies,
            self._tokens,
        )
        transport = sys.modules.get("modelpilot.client.transport")  # (none: nothing to close)
        for remote in remotes:
            if transport is not None and isinstance(remote, transport.HttpService):
                remote.close()
        if self._store is not None:
            self._store.close()

    # -- runs -----------------------------------------------------------------------------
    def start_run(
        self,
        experiment: str = DEFAULT_EXPERIMENT,
        *,
        name: str | None = None,
        tags: Mapping[str, str] | None = None,
        nested: bool = False,
        parent_run_id: str | None = None,
    ) -> ActiveRun:
        """Start a run; with ``nested=True`` (or inside another run) it becomes a child run."""
        if self._runs and not nested and parent_run_id is None:
            raise InvalidInput(
                f"Run {self._runs[-1].id[:8]} is still active. End it first, or pass nested=True "
                "to start a child run.",
                field="nested",
            )
        parent = parent_run_id or (self._runs[-1].id if self._runs else None)
        run = self.tracking.create_run(
            experiment,
            name=name,
            parent_run_id=parent,
            tags=tags,
            code_revision=code_revision(),
            environment=capture_environment(),
        )
        active = ActiveRun(self, run)
        self._runs.append(active)
        return active

    def end_run(self, status: RunStatus = RunStatus.FINISHED, *, run_id: str | None = None) -> None:
        """End the active run (or ``run_id``), after flushing its metrics."""
        target = run_id or self._active().id
        try:
            self.flush()
        finally:
            self.tracking.set_status(target, status)
            self._runs = [r for r in self._runs if r.id != target]

    @contextmanager
    def attached_run(self, run_id: str) -> Iterator[ActiveRun]:
        """Make an existing run the active one for the block, without ending it afterwards.

        A pipeline step runs this way: its engine created (and will end) the step's child
        run, and ``mp.log_metric`` inside the step must land there. Buffered metrics are
        flushed when the block ends."""
        active = ActiveRun(self, self.tracking.get_run(run_id))
        self._runs.append(active)
        try:
            yield active
        finally:
            try:
                self.flush()
            finally:
                self._runs = [r for r in self._runs if r is not active]

    def active_run(self) -> ActiveRun | None:
        """The innermost active run, if any."""
        return self._runs[-1] if self._runs else None

    def _active(self) -> ActiveRun:
        if not self._runs:
            raise InvalidInput(
                "No active run. Start one with `with mp.start_run(experiment=...):`.", field="run"
            )
        return self._runs[-1]

    # -- params, tags, metrics ------------------------------------------------------------
    def log_params(self, params: Mapping[str, object]) -> None:
        """Record parameters of the active run."""
        self.tracking.log_params(self._active().id, params)

    def set_tags(self, tags: Mapping[str, object]) -> None:
        """Set tags on the active run."""
        self.tracking.set_tags(self._active().id, tags)

    def log_metric(
        self, key: str, value: float, step: int | None = None, timestamp_ms: int | None = None
    ) -> None:
        """Log one point (buffered; see :mod:`modelpilot.tracking.buffer`)."""
        run = self._active()
        if key not in self._checked_keys:
            self._checked_keys.add(check_key(key, "metric"))
        number = check_metric_value(key, value)
        step = run.next_step.get(key, 0) if step is None else check_step(key, step)
        run.next_step[key] = step + 1
        self.buffer.add(run.id, (key, number, step, timestamp_ms or now_ms()))

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log several metrics at the same step."""
        for key, value in metrics.items():
            self.log_metric(key, value, step)

    def log_batch(
        self, key: str, values: Sequence[float], steps: Sequence[int] | None = None
    ) -> None:
        """Log many points of one metric at once (validated together, buffered together)."""
        run = self._active()
        check_key(key, "metric")
        start = run.next_step.get(key, 0)
        step_list = (
            list(range(start, start + len(values)))
            if steps is None
            else [s if type(s) is int else check_step(key, s) for s in steps]
        )
        if len(step_list) != len(values):
            raise InvalidInput(
                f"log_batch for {key!r}: {len(values)} values but {len(step_list)} steps.",
                field="steps",
            )
        stamp = now_ms()
        rows = [  # plain finite floats skip the full check (a third of log_batch's time)
            (key, v if type(v) is float and isfinite(v) else check_metric_value(key, v), s, stamp)
            for v, s in zip(values, step_list, strict=True)
        ]
        if step_list:
            run.next_step[key] = max(step_list) + 1
        self.buffer.add_many(run.id, rows)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> dict[str, str]:
        """Store a file, or every file under a folder, as artifacts of the active run."""
        run = self._active()
        source = Path(path)
        if not source.exists():
            raise InvalidInput(f"Cannot log artifact: no file or folder at {source}.", field="path")
        files = (
            [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
        )
        base = source.parent if source.is_file() else source
        prefix = (
            check_artifact_path(artifact_path.removesuffix("/")) + "/"
            if artifact_path
            else ("" if source.is_file() else source.resolve().name + "/")
        )
        stored: dict[str, str] = {}
        relatives = [check_artifact_path(prefix + f.relative_to(base).as_posix()) for f in files]
        for file, relative in zip(files, relatives, strict=True):
            stored[relative] = self.run_artifacts.log_file(run.id, file, relative)
        return stored

    # -- reading runs ---------------------------------------------------------------------
    def get_run(self, run_id: str) -> Run:
        """A run with params, latest metrics, tags, datasets and artifacts."""
        self.flush()
        return self.tracking.get_run(run_id)

    def get_metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        """Every point of a metric, by step."""
        self.flush()
        return self.tracking.get_metric_history(run_id, key)

    def search_runs(
        self,
        experiment: str | None = None,
        filter: str = "",
        order_by: Sequence[str] = (),
        max_results: int | None = None,
    ) -> pd.DataFrame:
        """Runs as a DataFrame, filtered (``metrics.auc > 0.9``) and ordered; fetched page by
        page from the tracking service until ``max_results`` (or every match) is in."""
        self.flush()
        found: list[Run] = []
        token: str | None = None
        while max_results is None or len(found) < max_results:
            want = MAX_PAGE_SIZE if max_results is None else max_results - len(found)
            page = self.tracking.search_runs(
                experiment,
                filter,
                order_by,
                page_token=token,
                max_results=min(max(want, 1), MAX_PAGE_SIZE),
            )
            found.extend(page.runs)
            token = page.next_page_token
            if token is None:
                break
        frame = runs_frame(found[:max_results] if max_results is not None else found)
        for column, _ in search.parse_order_by(list(order_by)):
            if column not in frame.columns:
                frame[column] = pd.NA
        return frame

    def list_experiments(self) -> list[Experiment]:
        """All experiments, oldest first."""
        return self.tracking.list_experiments()

    # -- datasets -------------------------------------------------------------------------
    def log_dataset(
        self,
        data: pd.DataFrame | str | Path,
        name: str,
        *,
        role: str = "training",
        source: str | None = None,
        label: str | None = None,
        leakage_against: DatasetVersion | str | pd.DataFrame | None = None,
        label_issues: bool = False,
        seed: int = 0,
    ) -> DatasetVersion:
        """Version a dataset (and record it as an input of the active run, if any).

        A DataFrame's data risks (outliers, duplicates, personal data; with ``label`` the
        class balance, with ``label_issues=True`` likely label errors, with
        ``leakage_against`` rows shared with that dataset) are assessed on at most 10,000
        seeded rows and stored in ``profile["risks"]``. A file logged by reference is
        assessed only when one of those options is given, and is then read whole.
        """
        risks = None
        asked = label is not None or leakage_against is not None or label_issues
        if isinstance(data, pd.DataFrame) or (asked and isinstance(data, (str, Path))):
            frame = data if isinstance(data, pd.DataFrame) else read_table(Path(data), name)
            risks = self.assess_data_risks(
                frame,
                label=label,
                leakage_against=leakage_against,
                label_issues=label_issues,
                seed=seed,
            ).to_dict()
        version = self.datasets.log_dataset(data, name, source=source, risks=risks)
        run = self.active_run()
        if run is not None:
            self.datasets.record_input(run.id, version.name, version.digest, role)
        return version

    def assess_data_risks(
        self,
        frame: pd.DataFrame,
        *,
        label: str | None = None,
        leakage_against: DatasetVersion | str | pd.DataFrame | None = None,
        label_issues: bool = False,
        seed: int = 0,
    ) -> DataRisks:
        """Data risks of ``frame`` (see :mod:`modelpilot.data.risks`), with personal data
        found by the detector behind the prediction log's PII policy."""
        against, against_name = None, "the given DataFrame"
        if isinstance(leakage_against, DatasetVersion):
            against_name = leakage_against.ref
            against = self.load_dataset(f"{leakage_against.name}@{leakage_against.digest}")
        elif isinstance(leakage_against, str):
            against_name = self.get_dataset(leakage_against).ref
            against = self.load_dataset(leakage_against)
        elif leakage_against is not None:
            against = leakage_against
        return assess_risks(
            frame,
            label=label,
            against=against,
            against_name=against_name,
            label_issues=label_issues,
            seed=seed,
            pii_detector=detect_pii,
        )

    def get_dataset(self, ref: str) -> DatasetVersion:
        """A dataset version by ``name@version`` or ``name``."""
        return self.datasets.get_dataset(ref)

    def load_dataset(self, ref: str) -> pd.DataFrame:
        """A dataset version's rows."""
        return self.datasets.load_dataset(ref)

    # -- models ---------------------------------------------------------------------------
    def log_model(
        self,
        model: object,
        name: str,
        *,
        input_example: object = None,
        signature: Signature | None = None,
        datasets: DatasetsArg = (),
        description: str = "",
        tags: Mapping[str, str] | None = None,
        trusted_types: Sequence[str] = (),
    ) -> ModelVersion:
        """Package ``model`` and register it as the next version of ``name``.

        ``datasets=[train]`` links training data; ``datasets={"training": train, "test":
        holdout}`` gives each dataset its role (monitoring's drift reference is the
        ``reference`` dataset if any, else the ``training`` one). The signature's input
        domain, which the data plane flags requests against, is read from that same data
        (``registry.roles.training_domain``), else from the input example.

        Bytes are written first (content-addressed, so a crash leaves only unreferenced
        blobs); the version appears in one transaction at the end, or not at all. Types in
        the saved file that loading would refuse, and that ``trusted_types`` names, are
        recorded on the version so it loads without flags; so is the import path of a
        python_function model, since the caller handed over the object itself.

        Inputs of the example that look like personal data (emails, phone numbers, names...)
        come back in ``pii_findings`` with a suggested prediction-log policy, and are logged
        (``modelpilot.workspace`` logger, level WARNING).
        """
        check_model_name(name)
        links = link_datasets(datasets)
        package = build_package(
            model,
            self.artifacts,
            input_example=input_example,
            signature=signature,
            trusted_types=trusted_types,
            domain_from=lambda final: training_domain(self.artifacts, datasets, final),
        )
        run = self.active_run()
        metrics: dict[str, float] = {}
        if run is not None:
            metrics = self.get_run(run.id).metrics
            for link in links:
                self.datasets.record_input(run.id, link.name, link.digest, link.role)
        version = self.registry.register_version(
            name,
            package_digest=package.digest,
            flavor=package.flavor,
            signature=package.signature.to_dict(),
            run_id=run.id if run else None,
            datasets=links,
            metrics=metrics,
            description=description,
            tags=tags,
            trusted_types=package.trusted_types,
        )
        findings = tuple(detect_pii(input_example))
        for finding in findings:
            _log.warning(
                "Model %s: %s (modelpilot logs policy set %s --column %s=%s)",
                version.ref,
                finding,
                name,
                finding.column,
                finding.suggested_action,
            )
        return dataclasses.replace(version, pii_findings=findings)

    def load_model(
        self,
        ref: str,
        *,
        trusted_types: Sequence[str] = (),
        allow_untrusted: bool = False,
        trusted_code: bool = False,
    ) -> LoadedModel:
        """Load a registered version (``churn@champion``, ``churn/3``, ``churn``) safely.

        Trusted are the flavor's safe types, those recorded on the version at registration
        and what the caller passes here; nothing the package itself claims.
        """
        mv = self.registry.get_version(ref)
        return load_package(
            self.artifacts,
            mv.package_digest,
            trust=TrustPolicy((*mv.trusted_types, *trusted_types), allow_untrusted, trusted_code),
            cache_dir=self.settings.home / "cache" / "packages",
            name=mv.name,
            version=mv.version,
        )

    def score(
        self,
        ref: str,
        source: str | Path,
        output: str | Path,
        *,
        executor: Literal["local", "ray"] = "local",
        ray_address: str | None = None,
        chunk_rows: int = 100_000,
        workers: int | None = None,
        progress: Callable[[int], None] | None = None,
        trusted_types: Sequence[str] = (),
        allow_untrusted: bool = False,
        trusted_code: bool = False,
    ) -> int:
        """Score a table file (:mod:`modelpilot.tables`) with a version into ``output``; returns
        the row count. ``executor="ray"`` scores on a Ray cluster (``ray_address``, else
        ``MODELPILOT_RAY_ADDRESS``, else a local one) into the same output; ``chunk_rows``
        is then the batch each Ray actor scores and ``workers`` the actor pool's size.

        The model is loaded here (trust as in :meth:`load_model`); on Ray only the actors
        load it, by digest and under the same trust, so an untrusted or altered package
        fails the job with the error :meth:`load_model` raises, before any of its code runs."""
        from modelpilot.serving.scoring import check_score_paths, score_file

        source, output = Path(source), Path(output)
        if executor not in ("local", "ray"):
            raise InvalidInput(
                f"Unknown executor {executor!r}; use 'local' (threads in this process) or "
                "'ray' (Ray actors).",
                field="executor",
            )
        check_score_paths(source, output)
        if executor == "ray" and self.is_remote:
            raise InvalidInput(
                "Scoring on Ray reads the store and blobs directly, so it needs the local "
                "settings (MODELPILOT_STORE_URI, MODELPILOT_ARTIFACTS_URI), not "
                "MODELPILOT_SERVER_URI; unset it or score without --executor ray.",
                field="executor",
            )

        if executor == "local":
            model = self.load_model(
                ref, trusted_types=trusted_types, allow_untrusted=allow_untrusted,
                trusted_code=trusted_code,
            )  # fmt: skip
            return score_file(
                model, source, output, chunk_rows=chunk_rows, workers=workers, progress=progress
            )
        from modelpilot.serving.ray_scoring import PackageRef, score_file_on_ray, start_pool

        mv = self.registry.get_version(ref)
        package = PackageRef(
            self.settings,
            mv.package_digest,
            TrustPolicy((*mv.trusted_types, *trusted_types), allow_untrusted, trusted_code),
            mv.name,
            mv.version,
        )
        pool = start_pool(package, address=ray_address or self.settings.ray_address,
                          workers=workers)  # fmt: skip
        return score_file_on_ray(
            Signature.from_dict(mv.signature), pool, source, output, batch_rows=chunk_rows,
            progress=progress,
        )  # fmt: skip

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        """Point an alias at a version."""
        return self.registry.set_alias(name, alias, version)

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove an alias."""
        self.registry.delete_alias(name, alias)

    def get_model_version(self, ref: str) -> ModelVersion:
        """Resolve a reference to its version record."""
        return self.registry.get_version(ref)

    def list_models(self) -> list[RegisteredModel]:
        """Every registered model with its newest version and aliases."""
        return self.registry.list_models()

    def lineage(self, ref: str) -> Lineage:
        """version -> run -> datasets -> code revision."""
        return self.registry.lineage(ref)

    # -- tuning ---------------------------------------------------------------------------
    def tune(
        self,
        train_fn: Callable[..., Any],
        space: Mapping[str, Any],
        *,
        n_trials: int = 50,
        metric: str = "score",
        direction: Literal["maximize", "minimize"] = "maximize",
        experiment: str = "tuning",
        study_name: str | None = None,
        n_jobs: int = 1,
        pruner: optuna.pruners.BasePruner | None = None,
        seed: int = 0,
        executor: Literal["process", "ray"] = "process",
        ray_address: str | None = None,
    ) -> TuneResult:
        """Tune with Optuna; each trial is a child run of this workspace's tracking (local or
        over the server), parallel workers (processes, or Ray tasks with ``executor="ray"``)
        each open a workspace of the same settings."""
        from modelpilot.tuning import tune

        return tune(
            self,
            train_fn,
            space,
            storage=self.study_storage(),
            new_runs=functools.partial(Workspace, self.settings),
            n_trials=n_trials,
            metric=metric,
            direction=direction,
            experiment=experiment,
            study_name=study_name,
            n_jobs=n_jobs,
            pruner=pruner,
            seed=seed,
            executor=executor,
            ray_address=ray_address or self.settings.ray_address,
        )


__all__ = ["ActiveRun", "Workspace", "runs_frame"]
