"""The metadata tables, as SQLAlchemy Core.

Core rather than the ORM: the hot writes (metric points) are bulk inserts, and every service
returns plain frozen dataclasses, so identity maps and lazy loading would only cost time.
The Alembic migrations in ``migrations/versions`` create exactly these tables; a test checks
that the two agree.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Times are stored as integer milliseconds since the epoch: exact, sortable, portable.
experiments = Table(
    "experiments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("created_ms", BigInteger, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("experiment_id", Integer, ForeignKey("experiments.id"), nullable=False, index=True),
    Column("name", String(256), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_ms", BigInteger, nullable=False),
    Column("end_ms", BigInteger, nullable=True),
    Column("parent_run_id", String(32), ForeignKey("runs.id"), nullable=True, index=True),
    Column("code_revision", String(64), nullable=True),
    Column("environment", JSON, nullable=False),
    # Who runs it (host, process id, process start time): a RUNNING run whose process is gone
    # is marked KILLED the next time the store is opened on that host.
    Column("owner_host", String(256), nullable=True),
    Column("owner_pid", Integer, nullable=True),
    Column("owner_start_ms", BigInteger, nullable=True),
    # Who created it: the authenticated actor through the server (token:<name>), else null.
    Column("created_by", String(256), nullable=True),
    # The owner's boot id and start in clock ticks decide whether it is alive (a stepped wall
    # clock moves owner_start_ms, tracking/owner.py); null in rows written before 0012.
    Column("owner_boot_id", String(64), nullable=True),
    Column("owner_start_ticks", BigInteger, nullable=True),
    # Search's default order (newest first) and its tie-breaker, within an experiment.
    Index("ix_runs_experiment_start", "experiment_id", "start_ms", "id"),
)

run_params = Table(
    "run_params",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(256), primary_key=True),
    Column("value", Text, nullable=False),
)

run_tags = Table(
    "run_tags",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(256), primary_key=True),
    Column("value", Text, nullable=False),
)

# No foreign key on run_id: PostgreSQL checks one per inserted row, which took more than half
# of a 10,000-point batch (benchmarks/tracking.py --server). Every batch checks its runs exist
# once instead, in its own transaction (tracking/points.py); runs are never deleted.
run_metrics = Table(
    "run_metrics",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), nullable=False),
    Column("key", String(256), nullable=False),
    Column("value", Float, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp_ms", BigInteger, nullable=False),
    Index("ix_run_metrics_run_key", "run_id", "key", "step"),
)

# The latest point of each (run, metric): what run search filters and orders on. Kept up to
# date in the same transaction as every metric batch, so a search over 100,000 runs joins one
# row per run instead of ranking every point ever logged (benchmarks/search.py).
run_latest_metrics = Table(
    "run_latest_metrics",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(256), primary_key=True),
    Column("value", Float, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp_ms", BigInteger, nullable=False),
    Index("ix_run_latest_metrics_key_value", "key", "value"),
)

# Summaries of each (run, metric) series, kept in the same transaction as every metric batch
# (tracking/points.py): width 0 is the whole series in one bucket (the runs table's min/max);
# widths 100, 1,000, ... 1,000,000 cut the steps into buckets (step / width, truncated), whose
# min/max draw a long series without reading its points. A scan of a 1,000,000-point series
# took 200-400 ms on PostgreSQL; these rows answer in a few ms (benchmarks/dashboard.py).
run_metric_buckets = Table(
    "run_metric_buckets",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("key", String(256), primary_key=True),
    Column("width", BigInteger, primary_key=True),
    Column("bucket", BigInteger, primary_key=True),
    Column("min_value", Float, nullable=False),
    Column("max_value", Float, nullable=False),
    Column("first_step", BigInteger, nullable=False),
    Column("last_step", BigInteger, nullable=False),
    Column("points", BigInteger, nullable=False),
)

# Idempotency keys of metric batches already applied (client-generated uuids), written in the
# batch's own transaction: a batch re-sent after a dropped response is applied once. Keys
# older than a day are removed (the client retries for 30 s).
applied_batches = Table(
    "applied_batches",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("run_id", String(32), nullable=False),
    Column("created_ms", BigInteger, nullable=False, index=True),
)

run_artifacts = Table(
    "run_artifacts",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
)

datasets = Table(
    "datasets",
    metadata,
    Column("name", String(256), primary_key=True),
    Column("digest", String(64), primary_key=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("storage", String(16), nullable=False),  # "parquet" (a blob) or "reference"
    Column("location", Text, nullable=False),  # blob digest or the referenced URI
    Column("num_rows", BigInteger, nullable=False),
    Column("schema", JSON, nullable=False),
    Column("profile", JSON, nullable=False),
    Column("source", Text, nullable=True),
)

run_inputs = Table(
    "run_inputs",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("dataset_name", String(256), primary_key=True),
    Column("dataset_digest", String(64), primary_key=True),
    Column("role", String(32), nullable=False),
    ForeignKeyConstraint(["dataset_name", "dataset_digest"], ["datasets.name", "datasets.digest"]),
)

registered_models = Table(
    "registered_models",
    metadata,
    Column("name", String(256), primary_key=True),
    Column("description", Text, nullable=False, default=""),
    Column("created_ms", BigInteger, nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("model_name", String(256), ForeignKey("registered_models.name"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("run_id", String(32), ForeignKey("runs.id"), nullable=True),
    Column("flavor", String(32), nullable=False),
    Column("package_digest", String(64), nullable=False),
    Column("signature", JSON, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("tags", JSON, nullable=False),
    Column("is_deleted", Boolean, nullable=False, default=False),
    # Types the registering side saw and accepted when the package was written (skops'
    # untrusted-type list at save time). Loading trusts these, never a list inside the
    # package, which whoever writes the package controls.
    Column("trusted_types", JSON, nullable=False, server_default=text("'[]'")),
)

version_datasets = Table(
    "version_datasets",
    metadata,
    Column("model_name", String(256), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("dataset_name", String(256), primary_key=True),
    Column("dataset_digest", String(64), primary_key=True),
    # training, validation, test or reference: monitoring takes its drift reference by role
    Column("role", String(32), nullable=False, server_default="training"),
    ForeignKeyConstraint(
        ["model_name", "version"], ["model_versions.model_name", "model_versions.version"]
    ),
    ForeignKeyConstraint(["dataset_name", "dataset_digest"], ["datasets.name", "datasets.digest"]),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("model_name", String(256), primary_key=True),
    Column("alias", String(128), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    ForeignKeyConstraint(
        ["model_name", "version"], ["model_versions.model_name", "model_versions.version"]
    ),
)

# Documents attached to a version: evaluation results, gate verdicts, model-card edits.
version_records = Table(
    "version_records",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_name", String(256), nullable=False),
    Column("version", Integer, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("actor", String(256), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("blob_digest", String(64), nullable=True),
    ForeignKeyConstraint(
        ["model_name", "version"], ["model_versions.model_name", "model_versions.version"]
    ),
    Index("ix_version_records_version_kind", "model_name", "version", "kind", "id"),
)

# A deployment's current revision lives in `deployments`; every revision ever made, with who,
# why and the whole configuration, lives in `deployment_revisions`.
deployments = Table(
    "deployments",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

deployment_revisions = Table(
    "deployment_revisions",
    metadata,
    Column("deployment", String(128), ForeignKey("deployments.name"), primary_key=True),
    Column("revision", Integer, primary_key=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("actor", String(256), nullable=False),
    Column("action", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("is_stable", Boolean, nullable=False),
    Column("config", JSON, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time_ms", BigInteger, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("subject", String(512), nullable=False),
    Column("actor", String(256), nullable=False),
    Column("payload", JSON, nullable=False),
    # Hash chain (audit): entry_hash = sha256(prev_hash + canonical entry); a row edited,
    # deleted or reordered in the database breaks the chain from that row on.
    Column("prev_hash", String(64), nullable=True),
    Column("entry_hash", String(64), nullable=True),
    Index("ix_events_subject", "subject", "id"),
)

# API tokens: only a salted hash is stored; the token itself is shown once, at creation.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("role", String(16), nullable=False),
    Column("salt", String(64), nullable=False),
    Column("token_hash", String(128), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("expires_ms", BigInteger, nullable=True),
    Column("revoked_ms", BigInteger, nullable=True),
    Column("last_used_ms", BigInteger, nullable=True),
)

# Prediction-log policies per input column (keep, hash, redact, drop) and retention, for a
# model or a deployment.
logging_policies = Table(
    "logging_policies",
    metadata,
    Column("scope", String(16), primary_key=True),  # "model" or "deployment"
    Column("name", String(256), primary_key=True),
    Column("policy", JSON, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("actor", String(256), nullable=False),
)

# Pipeline runs and their step runs (modelpilot.pipelines). States move forward only:
# pipeline RUNNING -> SUCCEEDED | FAILED; step PENDING -> RUNNING -> SUCCEEDED | FAILED, or
# PENDING -> CACHED | SKIPPED. owner/heartbeat_ms are the lease a later agent takes over.
pipeline_runs = Table(
    "pipeline_runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("pipeline", String(128), nullable=False),
    Column("target", Text, nullable=False),  # file.py:name or module:name, as given
    Column("state", String(16), nullable=False),
    Column("params", JSON, nullable=False),
    Column("run_id", String(32), ForeignKey("runs.id"), nullable=True),  # the parent run
    Column("executor", String(32), nullable=False),
    Column("error", Text, nullable=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("ended_ms", BigInteger, nullable=True),
    Column("owner", String(256), nullable=True),
    Column("heartbeat_ms", BigInteger, nullable=True),
    Index("ix_pipeline_runs_pipeline_created", "pipeline", "created_ms"),
    Index("ix_pipeline_runs_created", "created_ms"),
)

step_runs = Table(
    "step_runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("pipeline_run_id", String(32), ForeignKey("pipeline_runs.id"), nullable=False),
    Column("name", String(256), nullable=False),  # unique in its pipeline run (train, train-2)
    Column("step", String(256), nullable=False),
    Column("position", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("upstream", JSON, nullable=False),
    Column("code_hash", String(64), nullable=True),
    Column("cache_key", String(64), nullable=True),
    Column("inputs", JSON, nullable=True),  # name -> stored reference (modelpilot.pipelines)
    Column("output", JSON, nullable=True),
    Column("run_id", String(32), ForeignKey("runs.id"), nullable=True),  # the child run
    Column("cached_from", String(32), nullable=True),  # the step run whose output was reused
    Column("error", Text, nullable=True),
    Column("log_tail", Text, nullable=True),
    Column("started_ms", BigInteger, nullable=True),
    Column("ended_ms", BigInteger, nullable=True),
    Column("owner", String(256), nullable=True),
    Column("heartbeat_ms", BigInteger, nullable=True),
    Index("ix_step_runs_pipeline_run_position", "pipeline_run_id", "position", unique=True),
    Index("ix_step_runs_cache_key_state", "cache_key", "state"),
)

# Pipeline triggers (modelpilot.pipelines.triggers): what starts a pipeline run by itself.
# kind: schedule | dataset | alert | manual; spec holds the kind's settings (cron, dataset,
# rule and subject). since_event_id: the newest event when the trigger was made (alerts older
# than the trigger never fire it).
triggers = Table(
    "triggers",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("target", Text, nullable=False),  # /abs/path/file.py:name or module:name
    Column("params", JSON, nullable=False),  # ["k=v", ...] as given, read at each launch
    Column("kind", String(16), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("cooldown_ms", BigInteger, nullable=False),
    Column("max_concurrent", Integer, nullable=False),
    Column("daily_budget", Integer, nullable=False),
    Column("since_event_id", BigInteger, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("created_by", String(256), nullable=False),
    Index("ix_triggers_name", "name", unique=True),
)

# One row per decision about one occurrence (a cron time, a dataset version, an alert event,
# a person's fire): fired or skipped with the reason. The unique (trigger_id, occurrence) is
# the claim: two evaluators on one database cannot both decide the same occurrence.
trigger_firings = Table(
    "trigger_firings",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("trigger_id", String(32), nullable=False),  # no FK: history outlives a trigger
    Column("trigger_name", String(128), nullable=False),
    Column("occurrence", String(256), nullable=False),
    Column("event_id", BigInteger, nullable=True),  # the alert event, for alert triggers
    Column("due_ms", BigInteger, nullable=False),
    Column("decided_ms", BigInteger, nullable=False),
    Column("decision", String(16), nullable=False),  # fired | skipped
    Column("reason", Text, nullable=False),
    Column("actor", String(256), nullable=False),
    Column("pipeline_run_id", String(32), nullable=True),
    Column("error", Text, nullable=True),  # the launch failed before or while running
    Index("ix_trigger_firings_occurrence", "trigger_id", "occurrence", unique=True),
    Index("ix_trigger_firings_decided", "trigger_id", "decided_ms"),
)

# Continuous-training policies (modelpilot.loop): one policy per deployment, every `set` a new
# revision with who and when. `policy` is the checked policy with paths made absolute,
# `source` the YAML as given, `triggers` the names of the triggers this revision owns.
ct_policies = Table(
    "ct_policies",
    metadata,
    Column("deployment", String(128), ForeignKey("deployments.name"), primary_key=True),
    Column("revision", Integer, primary_key=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("actor", String(256), nullable=False),
    Column("source_path", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("policy", JSON, nullable=False),
    Column("triggers", JSON, nullable=False),
)

# Continuous-training decisions (modelpilot.loop.decisions): one row per policy-owned trigger
# firing, walking trigger -> pipeline run -> candidate -> gate -> (approval) -> canary ->
# promoted | rolled back | stopped. `owner`/`lease_until_ms` is the agent working on it now
# (a killed agent's lease runs out and another takes over); `firing_id` unique is the claim
# that makes one decision per firing across agents.
loop_decisions = Table(
    "loop_decisions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("deployment", String(128), nullable=False),  # no FK: history outlives a deployment
    Column("policy_revision", Integer, nullable=False),
    Column("firing_id", String(32), nullable=False),
    Column("trigger_name", String(128), nullable=False),
    Column("pipeline_run_id", String(32), nullable=True),
    Column("candidate", String(300), nullable=True),  # model/version
    Column("champion", String(300), nullable=True),  # the stable version it was gated against
    Column("state", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("owner", String(256), nullable=True),
    Column("lease_until_ms", BigInteger, nullable=True),
    Index("ix_loop_decisions_firing", "firing_id", unique=True),
    Index("ix_loop_decisions_deployment", "deployment", "created_ms"),
    Index("ix_loop_decisions_state", "state"),
)

# Each state a decision entered, with who, when, why and the evidence (pipeline run, gate
# verdict, deployment revisions, approval).
loop_steps = Table(
    "loop_steps",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("decision_id", String(32), nullable=False),
    Column("state", String(32), nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("actor", String(256), nullable=False),
    Column("reason", Text, nullable=False),
    Column("evidence", JSON, nullable=False),
    Index("ix_loop_steps_decision", "decision_id", "id"),
)
