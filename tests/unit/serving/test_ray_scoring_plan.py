"""How `score --executor ray` shares its threads over the cluster's nodes: one actor per
node, as many threads as the node has whole CPUs, or `--workers` threads in proportion."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelpilot.errors import Unavailable
from modelpilot.serving.ray_scoring import NodeShare, plan_actors, threads_per_node

node_cpus = st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0, 8.0, 16.0]), min_size=1, max_size=6)


@given(node_cpus)
def test_by_default_every_whole_cpu_runs_one_thread(cpus: list[float]) -> None:
    assert threads_per_node(cpus, workers=None) == [int(c) for c in cpus]


@given(node_cpus, st.integers(min_value=1, max_value=64))
def test_workers_are_shared_out_in_proportion(cpus: list[float], workers: int) -> None:
    threads = threads_per_node(cpus, workers=workers)
    whole = [int(c) for c in cpus]
    if not sum(whole):  # nothing to run on: the caller refuses with a clear error
        assert threads == whole
        return
    assert sum(threads) == workers
    for got, cores in zip(threads, whole, strict=True):
        share = workers * cores / sum(whole)
        assert share - 1 < got < share + 1
        assert cores or not got  # a node without a whole CPU (a --num-cpus 0 head) gets none


def test_a_head_without_cpus_gets_no_actor() -> None:
    assert threads_per_node([0.0, 2.0], workers=None) == [0, 2]
    assert threads_per_node([0.0, 2.0], workers=5) == [0, 5]


def node(node_id: str, cpus: float | None, *, alive: bool = True) -> dict[str, object]:
    """A node's record as ``ray.nodes()`` gives it (the keys the plan reads)."""
    resources = {} if cpus is None else {"CPU": cpus}
    return {"NodeID": node_id, "Alive": alive, "Resources": resources}


def test_the_plan_pins_one_actor_to_each_alive_node_with_cpus() -> None:
    nodes = [node("head", 0.0), node("dead", 8.0, alive=False), node("a", 2.0), node("b", 4.0)]
    assert plan_actors(nodes, workers=None) == [NodeShare("a", 2, 2), NodeShare("b", 4, 4)]
    # more threads than CPUs: the actor asks Ray for the node's CPUs, not more (it would wait)
    assert plan_actors(nodes, workers=9) == [NodeShare("a", 3, 2), NodeShare("b", 6, 4)]


def test_a_cluster_without_a_whole_cpu_is_refused_naming_the_fix() -> None:
    with pytest.raises(Unavailable, match=r"no node with a whole CPU.*--num-cpus N"):
        plan_actors([node("head", None), node("w", 0.5), node("gone", 4.0, alive=False)],
                    workers=None)  # fmt: skip
