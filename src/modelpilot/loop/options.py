"""The agent's options (``modelpilot agent``, ``modelpilot server --agent``): their defaults
and their checks, apart from the agent (which brings the pipelines and the store), so the
CLI declares its options without importing either.
"""

from __future__ import annotations

from modelpilot.errors import InvalidInput

DEFAULT_INTERVAL_S = 30.0
DEFAULT_LEASE_S = 120.0


def check_agent_options(
    *, interval_s: float, lease_s: float, max_iterations: int | None, prefix: str = "--"
) -> None:
    """InvalidInput naming the option that is out of range.

    ``prefix`` is how the calling command spells its options: ``modelpilot server`` says
    ``--agent-interval-s``, ``modelpilot agent`` says ``--interval-s``.
    """
    if not interval_s > 0:
        raise InvalidInput(
            f"{prefix}interval-s must be more than 0 seconds; got {interval_s:g}.",
            field="interval_s",
        )
    if not lease_s > 0:
        raise InvalidInput(
            f"{prefix}lease-s must be more than 0 seconds; got {lease_s:g} (the default is "
            f"{DEFAULT_LEASE_S:g}; keep it well above the runner's 10 s heartbeat).",
            field="lease_s",
        )
    if max_iterations is not None and max_iterations < 1:
        raise InvalidInput(
            f"--max-iterations must be 1 or more; got {max_iterations}.", field="max_iterations"
        )
