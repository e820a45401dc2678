"""How `score --executor ray` shares its threads over the cluster's nodes: one actor per
node, as many threads as the node has whole CPUs, or `--workers` threads in proportion."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from modelpilot.serving.ray_scoring import threads_per_node

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
