"""Move continuous-training decisions through their states, and run the rollout controller.

Each agent iteration calls :meth:`LoopRunner.monitor` before it evaluates the triggers (the
monitors that are due run and record the alerts ``on_alert`` triggers fire on), and
:meth:`LoopRunner.step` after: it opens a decision for every new firing
of a policy's trigger, ticks the rollout controller of every deployment whose canary walks a
rollout policy, then takes each open decision (a lease on it, so two agents never act on one)
and moves it as far as the evidence allows now:

- ``training``: waits for the pipeline run; a failed run fails the decision with the step's
  error; a succeeded one names its candidate, the newest version of the deployment's model
  the run produced (none: failed; the champion itself, as when every step was cached:
  unchanged).
- ``evaluating``: the gate of the policy (``evaluation.gate`` on ``evaluation.dataset``, or
  on the labelled requests of the last ``evaluation.window``, against the champion as
  baseline), recorded on the candidate; fails: stopped_at_gate.
- ``awaiting_approval``: waits for ``modelpilot approve`` (or a rejection).
- ``ready``: starts the canary under the policy's rollout once the deployment has no other
  candidate; the champion having changed since the gate supersedes it.
- ``canary``: follows the deployment, which the rollout controller advances, promotes or
  rolls back; the decision ends as what happened to it.

Every handler reads the state it acts on from the deployment and the store, so an agent
killed between an action and its record is replaced by one that finds the action done (a
canary already serving the candidate) and records it, never repeats it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import select

from modelpilot.assessment import gate_version
from modelpilot.errors import Conflict, InvalidInput, ModelpilotError, said
from modelpilot.evaluation import load_policy
from modelpilot.loop.decisions import (
    LoopDecision,
    LoopState,
    claim_decision,
    list_decisions,
    move_decision,
    open_decisions,
    release_decision,
)
from modelpilot.loop.monitors import run_due_monitors
from modelpilot.loop.policy import duration_ms
from modelpilot.loop.service import get_loop_policy
from modelpilot.monitoring.service import LocalMonitoring
from modelpilot.pipelines.entities import PipelineState
from modelpilot.pipelines.records import get_pipeline_run
from modelpilot.predictions import PredictionReader, log_folder
from modelpilot.predictions.labels import join_labels, read_labels
from modelpilot.release.evidence import PredictionLogStats
from modelpilot.release.rollout import StatsSource, tick
from modelpilot.store.schema import trigger_firings
from modelpilot.workspace import Workspace

log = logging.getLogger(__name__)
_MAX_MOVES = 8  # states one decision may pass in one step (the whole path is 6)
# Fewer labelled requests than this and a gate on traffic would judge on noise.
MIN_LABELLED_ROWS = 30


@dataclass(frozen=True)
class Move:
    """A handler's verdict: go to ``to`` for ``reason``, recording ``evidence``."""

    to: LoopState
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class LoopEvent:
    """Something the runner did, as the agent prints it."""

    line: str


Handler = Callable[[LoopDecision, int], "Move | str"]


class LoopRunner:
    """The decision side of the agent, on one workspace (local store)."""

    def __init__(
        self,
        ws: Workspace,
        *,
        owner: str,
        actor: str,
        lease_ms: int,
        stats: StatsSource | None = None,
    ) -> None:
        self.ws = ws
        self.store = ws.store
        self.owner = owner
        self.actor = actor
        self.lease_ms = lease_ms
        self.stats = stats or PredictionLogStats(log_folder(ws.settings.home))
        self._handlers: dict[LoopState, Handler] = {
            LoopState.TRAINING: self._training,
            LoopState.EVALUATING: self._evaluating,
            LoopState.AWAITING_APPROVAL: lambda _d, _n: "waiting for modelpilot approve",
            LoopState.READY: self._ready,
            LoopState.CANARY: self._canary,
        }

    def monitor(self, now_ms: int) -> list[LoopEvent]:
        """Run the monitors of every policy's ``monitoring`` section that are due, recording
        the alerts that change (which ``on_alert`` triggers then fire on)."""
        monitoring = LocalMonitoring(
            self.store, self.ws.artifacts, self.ws.settings.home, actor=self.actor
        )
        return [
            LoopEvent(outcome.line())
            for outcome in run_due_monitors(self.store, monitoring, now_ms, actor=self.actor)
        ]

    def step(self, now_ms: int) -> list[LoopEvent]:
        """Open new decisions, tick the rollouts, move every open decision; what happened."""
        events = [
            LoopEvent(f"decision {d.short_id} {d.deployment}: training: {d.reason}")
            for d in open_decisions(self.store, now_ms, actor=self.actor)
        ]
        events += self._tick_rollouts(now_ms)
        for decision in list_decisions(self.store, open_only=True, limit=10_000):
            events += self._advance(decision.id, now_ms)
        return events

    def _tick_rollouts(self, now_ms: int) -> list[LoopEvent]:
        events = []
        for deployment in self.ws.deployments.list_deployments():
            config = deployment.config
            if config.candidate() is None or config.rollout is None:
                continue
            try:
                decision = tick(self.ws.deployments, deployment.name, self.stats, at_ms=now_ms)
            except Conflict:  # a person or another agent changed it first: theirs stands
                continue
            except Exception as exc:  # one deployment's broken evidence never stops the rest
                events.append(LoopEvent(f"rollout {deployment.name}: error: {said(exc)}"))
                continue
            if decision.action != "hold":
                events.append(
                    LoopEvent(f"rollout {deployment.name}: {decision.action}: {decision.reason}")
                )
        return events

    def _advance(self, decision_id: str, now_ms: int) -> list[LoopEvent]:
        decision = claim_decision(
            self.store, decision_id, owner=self.owner, now_ms=now_ms, lease_ms=self.lease_ms
        )
        if decision is None:  # final meanwhile, or another agent holds it
            return []
        events = []
        try:
            for _ in range(_MAX_MOVES):
                if decision.state.is_final:
                    break
                verdict = self._verdict(decision, now_ms)
                if isinstance(verdict, str):
                    break
                decision = move_decision(
                    self.store,
                    decision,
                    verdict.to,
                    actor=self.actor,
                    reason=verdict.reason,
                    now_ms=now_ms,
                    evidence=verdict.evidence,
                    owner=self.owner,
                    **verdict.fields,
                )
                events.append(
                    LoopEvent(
                        f"decision {decision.short_id} {decision.deployment}: "
                        f"{verdict.to.value}: {verdict.reason}"
                    )
                )
                self._note_on_candidate(decision)
        except Conflict as exc:  # moved by a person (approve) meanwhile: theirs stands
            log.info("%s", exc.message)
        except Exception as exc:  # e.g. the database briefly away: tried again next iteration
            events.append(
                LoopEvent(f"decision {decision.short_id} {decision.deployment}: error in "
                          f"{decision.state.value}, tried again: {said(exc)}")
            )  # fmt: skip
        finally:
            if not decision.state.is_final:
                release_decision(self.store, decision.id, owner=self.owner)
        return events

    def _note_on_candidate(self, decision: LoopDecision) -> None:
        """Keep the decision's newest state on the candidate version too (a ``loop`` record),
        so its model card links the decision. The decision's own steps stay the record of
        truth: a crash between the move and this note loses only the note."""
        if decision.candidate is None:
            return
        self.ws.registry.add_record(
            decision.candidate,
            "loop",
            {"decision": decision.id, "deployment": decision.deployment,
             "trigger": decision.trigger_name, "state": decision.state.value,
             "reason": decision.reason, "pipeline_run": decision.pipeline_run_id,
             "champion": decision.champion},
        )  # fmt: skip

    def _verdict(self, decision: LoopDecision, now_ms: int) -> Move | str:
        try:
            return self._handlers[decision.state](decision, now_ms)
        except ModelpilotError as exc:
            return Move(
                LoopState.FAILED, f"{decision.state.value}: {exc.message}", {"error": exc.message}
            )

    # -- the stages -----------------------------------------------------------------------

    def _training(self, decision: LoopDecision, now_ms: int) -> Move | str:
        run_id = decision.pipeline_run_id
        if run_id is None:
            firing = self._firing(decision.firing_id)
            run_id = firing.get("pipeline_run_id")
            if run_id is None:
                if firing.get("error"):
                    return Move(
                        LoopState.FAILED, f"the training pipeline did not start: {firing['error']}"
                    )
                if now_ms - decision.created_ms > self.lease_ms:
                    return Move(
                        LoopState.FAILED,
                        "the training pipeline never started (its "
                        "launcher stopped before the run existed)",
                    )
                return "waiting for the training pipeline to start"
        run = get_pipeline_run(self.store, run_id)
        if run.state is PipelineState.RUNNING:
            return f"training: pipeline run {run.id[:8]} is running"
        evidence: dict[str, Any] = {"pipeline_run": run.id, "pipeline": run.pipeline}
        if run.state is PipelineState.FAILED:
            return Move(
                LoopState.FAILED,
                f"pipeline run {run.id[:8]} failed: {run.error}",
                evidence,
                {"pipeline_run_id": run.id},
            )
        champion = self.ws.deployments.get_deployment(decision.deployment).config.stable
        produced = sorted(
            (int(s.output["version"]), s.name)
            for s in run.steps
            if s.output and s.output.get("kind") == "model" and s.output["name"] == champion.model
        )
        if not produced:
            return Move(
                LoopState.FAILED,
                f"pipeline run {run.id[:8]} produced no version of model {champion.model!r} "
                f"(the model deployment {decision.deployment!r} serves); a step must return "
                "mp.log_model(..., name) of that model",
                evidence,
                {"pipeline_run_id": run.id},
            )
        version, step = produced[-1]
        candidate = f"{champion.model}/{version}"
        evidence.update(candidate=candidate, step=step)
        fields: dict[str, str | None] = {"pipeline_run_id": run.id, "candidate": candidate}
        if candidate == champion.ref:
            return Move(
                LoopState.UNCHANGED,
                f"pipeline run {run.id[:8]} produced {candidate}, the version already serving "
                "(its inputs and code did not change, so the step's output was reused)",
                evidence,
                fields,
            )
        return Move(
            LoopState.EVALUATING,
            f"pipeline run {run.id[:8]} produced candidate {candidate}",
            evidence,
            fields,
        )

    def _evaluating(self, decision: LoopDecision, now_ms: int) -> Move:
        policy = get_loop_policy(self.store, decision.deployment, decision.policy_revision).policy
        evaluation = policy.evaluation
        assert decision.candidate is not None  # set when it left training
        champion = self.ws.deployments.get_deployment(decision.deployment).config.stable.ref
        evidence: dict[str, Any] = {"champion": champion}
        data: str | pd.DataFrame
        if evaluation.dataset is not None:
            data = evidence["dataset"] = evaluation.dataset
        else:
            assert evaluation.window is not None  # the policy gives one of the two
            data = self._labelled_traffic(
                decision.deployment, evaluation.window, evaluation.target, now_ms
            )
            evidence.update(window=evaluation.window, labelled_rows=len(data))
        gate = load_policy(evaluation.gate)
        verdict = gate_version(
            self.ws, decision.candidate, evaluation.gate, data, evaluation.target,
            baseline=champion, robustness=gate.robustness is not None,
        )  # fmt: skip
        evidence["gate"] = verdict.to_dict()
        fields: dict[str, str | None] = {"champion": champion}
        if not verdict.passed:
            failed = "; ".join(f"{c.name}: {c.message}" for c in verdict.failed)
            return Move(
                LoopState.STOPPED_AT_GATE,
                f"{decision.candidate} failed the gate against {champion}: {failed}",
                evidence,
                fields,
            )
        checks = len(verdict.checks)
        passed = f"{decision.candidate} passed the gate against {champion} ({checks} checks)"
        if policy.require_approval:
            return Move(
                LoopState.AWAITING_APPROVAL,
                f"{passed}; waiting for: modelpilot approve {decision.short_id}",
                evidence,
                fields,
            )
        return Move(LoopState.READY, passed, evidence, fields)

    def _labelled_traffic(
        self, deployment: str, window: str, target: str, now_ms: int
    ) -> pd.DataFrame:
        """The deployment's served single-row requests of the last ``window`` that have a
        label, as the model's input columns plus ``target`` (what the gate evaluates on)."""
        home = self.ws.settings.home
        since = now_ms - duration_ms(window)
        rows = PredictionReader.of_home(home).window(deployment, since, now_ms + 1)
        single = rows.drop_duplicates("request_id", keep=False)  # a label names one request
        labelled = join_labels(single, read_labels(home, deployment), how="inner")
        if len(labelled) < MIN_LABELLED_ROWS:
            raise InvalidInput(
                f"evaluation.window: only {len(labelled)} labelled requests of {deployment!r} "
                f"in the last {window}; gating on traffic needs at least {MIN_LABELLED_ROWS}. "
                "Log labels with mp.log_labels, or give evaluation.dataset instead.",
                field="evaluation.window",
            )
        inputs = [c for c in labelled.columns if c.startswith("in.")]
        frame = labelled[inputs].rename(columns=lambda c: c[3:])
        return frame.assign(**{target: labelled["label"].to_numpy()})

    def _ready(self, decision: LoopDecision, now_ms: int) -> Move | str:
        deployment = self.ws.deployments.get_deployment(decision.deployment)
        config = deployment.config
        candidate = config.candidate()
        if candidate is not None and candidate.ref == decision.candidate:  # started, not recorded
            return Move(
                LoopState.CANARY,
                f"canary {decision.candidate} is serving",
                {"revision": deployment.revision},
            )
        if config.stable.ref != decision.champion:
            return Move(
                LoopState.SUPERSEDED,
                f"the stable version changed from {decision.champion} to {config.stable.ref} "
                f"after {decision.candidate} was gated against it",
            )
        if candidate is not None:
            return f"waiting: the deployment already has candidate {candidate.ref}"
        rollout = get_loop_policy(
            self.store, decision.deployment, decision.policy_revision
        ).policy.rollout
        assert decision.candidate is not None
        changed = self.ws.deployments.set_canary(
            decision.deployment,
            decision.candidate,
            rollout.steps[0],
            policy=rollout,
            reason=f"loop decision {decision.short_id}: canary {decision.candidate}",
            expected_revision=deployment.revision,
        )
        return Move(
            LoopState.CANARY,
            f"canary {decision.candidate} at {rollout.steps[0]}% (steps "
            f"{', '.join(str(s) for s in rollout.steps)})",
            {"revision": changed.revision, "steps": list(rollout.steps)},
        )

    def _canary(self, decision: LoopDecision, now_ms: int) -> Move | str:
        deployment = self.ws.deployments.get_deployment(decision.deployment)
        config = deployment.config
        candidate = config.candidate()
        if candidate is not None and candidate.ref == decision.candidate:
            step = config.rollout_step
            where = f" at {candidate.weight}%" + ("" if step is None else f" (step {step + 1})")
            return f"canary {decision.candidate}{where}"
        history = self.ws.deployments.history(decision.deployment)
        last = max(history, key=lambda r: r.revision)
        evidence = {"revision": last.revision, "action": last.action, "actor": last.actor}
        if config.stable.ref == decision.candidate:
            return Move(
                LoopState.PROMOTED, f"{decision.candidate} promoted: {last.reason}", evidence
            )
        if last.action in ("rollback", "auto_rollback"):
            return Move(
                LoopState.ROLLED_BACK, f"{decision.candidate} rolled back: {last.reason}", evidence
            )
        return Move(
            LoopState.SUPERSEDED,
            f"the canary of {decision.candidate} was replaced ({last.action} by {last.actor}: "
            f"{last.reason})",
            evidence,
        )

    def _firing(self, firing_id: str) -> dict[str, Any]:
        with self.store.read() as conn:
            row = conn.execute(
                select(trigger_firings).where(trigger_firings.c.id == firing_id)
            ).first()
        return {} if row is None else dict(row._mapping)


__all__ = ["LoopEvent", "LoopRunner", "Move"]
