"""The agent: the loop that runs the continuous-training machinery without a person.

Each iteration, at the time its clock gives, first reclaims the pipeline runs whose owner
stopped heartbeating (so the trigger slots they held are free again), then evaluates every
trigger and starts the runs that fire. All its state is in the metadata store: two agents on
one database decide each trigger occurrence once and reclaim each abandoned run once, and a
restarted agent picks up where the last one stopped. The clock and the launcher are
parameters, so tests drive iterations with a controllable clock and no sleeps.

With a :class:`~modelpilot.loop.runner.LoopRunner`, each iteration first runs the monitors
that are due (their alerts fire ``on_alert`` triggers in the same iteration), and after the
triggers moves the continuous-training decisions: it opens one per firing of a policy's
trigger, ticks the rollout controller of every canary under a rollout policy, and takes
each decision as far as the evidence allows (gate, approval, canary, promotion or rollback).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelpilot.loop.options import DEFAULT_INTERVAL_S, DEFAULT_LEASE_S, check_agent_options
from modelpilot.pipelines.evaluator import Launch, evaluate_triggers, summarised
from modelpilot.pipelines.lease import Reclaimed, owner_id, reclaim_abandoned
from modelpilot.pipelines.triggers import Firing
from modelpilot.store import Store

if TYPE_CHECKING:  # the runner brings monitoring and evaluation; an agent without one doesn't
    from modelpilot.loop.runner import LoopEvent, LoopRunner

Clock = Callable[[], int]  # milliseconds since the epoch


@dataclass(frozen=True)
class AgentIteration:
    """What one iteration decided: the runs it reclaimed and the trigger decisions."""

    number: int
    now_ms: int
    reclaimed: tuple[Reclaimed, ...]
    firings: tuple[Firing, ...]
    loop: tuple[LoopEvent, ...] = ()
    monitored: tuple[LoopEvent, ...] = ()

    def lines(self) -> list[str]:
        """One line per decision, in the order they happened: reclaims, monitors, triggers,
        the loop's decisions."""
        out = [
            f"reclaimed pipeline run {r.pipeline_run_id[:8]} ({r.pipeline}): {r.reason}"
            for r in self.reclaimed
        ] + [e.line for e in self.monitored]
        for f in summarised(list(self.firings)):
            if isinstance(f, tuple):
                out.append(f"skipped trigger {f[0]}: missed {f[1]} schedule time(s) while no "
                           "evaluator decided (recorded; only the newest may fire)")  # fmt: skip
                continue
            run = f" -> pipeline run {f.pipeline_run_id[:8]}" if f.pipeline_run_id else ""
            error = f"; error: {f.error}" if f.error else ""
            out.append(f"{f.decision.value} trigger {f.trigger_name}: {f.reason}{run}{error}")
        return out + [e.line for e in self.loop]


class Agent:
    """One agent on one store: ``iterate()`` once, or ``run()`` until stopped.

    >>> from modelpilot.store import Store
    >>> agent = Agent(Store.open("sqlite:///:memory:"), clock=lambda: 1_000_000_000_000)
    >>> agent.iterate().lines()
    []
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock,
        launch: Launch | None = None,
        lease_s: float = DEFAULT_LEASE_S,
        agent_id: str | None = None,
        loop: LoopRunner | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.launch = launch
        self.lease_s = lease_s
        self.agent_id = agent_id or owner_id()
        self.loop = loop
        self.iterations = 0

    @property
    def actor(self) -> str:
        """Who the agent's decisions are recorded as."""
        return f"agent:{self.agent_id}"

    def iterate(self) -> AgentIteration:
        """Reclaim abandoned runs, evaluate every trigger, then move the loop's decisions, at
        the clock's time now."""
        now = self.clock()
        reclaimed = reclaim_abandoned(
            self.store, now, lease_ms=int(self.lease_s * 1000), actor=self.actor
        )
        monitored = self.loop.monitor(now) if self.loop is not None else []
        firings = evaluate_triggers(self.store, now, launch=self.launch, actor=self.actor)
        loop = self.loop.step(self.clock()) if self.loop is not None else []
        self.iterations += 1
        return AgentIteration(
            self.iterations, now, tuple(reclaimed), tuple(firings), tuple(loop), tuple(monitored)
        )

    def run(
        self,
        *,
        interval_s: float,
        stop: threading.Event,
        max_iterations: int | None = None,
        on_iteration: Callable[[AgentIteration], None] = lambda _: None,
        on_error: Callable[[Exception], None] | None = None,
    ) -> int:
        """Iterate every ``interval_s`` until ``stop`` is set (checked between iterations,
        and it ends the wait at once) or ``max_iterations`` ran; the iterations run.

        An iteration that raises ends the loop, unless ``on_error`` is given: then it is
        handed the error and the next iteration comes as usual (the agent inside a
        long-running server outlives a database that was briefly away)."""
        check_agent_options(interval_s=interval_s, lease_s=self.lease_s,
                            max_iterations=max_iterations)  # fmt: skip
        done = 0
        while not stop.is_set():
            try:
                on_iteration(self.iterate())
            except Exception as exc:
                if on_error is None:
                    raise
                on_error(exc)
            done += 1
            if max_iterations is not None and done >= max_iterations:
                break
            stop.wait(interval_s)
        return done


__all__ = [
    "DEFAULT_INTERVAL_S",
    "DEFAULT_LEASE_S",
    "Agent",
    "AgentIteration",
    "Clock",
    "check_agent_options",
]
