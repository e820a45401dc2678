"""The tests' port helper: every server a test starts listens on a port of :func:`free_port`.

A port is only free until its server binds it, so one process must never be handed the same
port twice: CI saw SeaweedFS (eight ports drawn one after another) die with "bind: address
already in use" when its master and volume gRPC ports were drawn alike.
"""

from __future__ import annotations

import socket

from mp_server import free_port


def test_ports_drawn_before_any_is_bound_are_all_different() -> None:
    singles = [free_port() for _ in range(400)]
    blocks = [free_port(8) for _ in range(50)]
    ports = singles + [base + offset for base in blocks for offset in range(8)]
    assert len(set(ports)) == len(ports)


def test_a_drawn_block_can_be_bound_whole_on_loopback() -> None:
    base = free_port(4)
    sockets = [socket.socket() for _ in range(4)]
    try:
        for offset, sock in enumerate(sockets):
            sock.bind(("127.0.0.1", base + offset))
    finally:
        for sock in sockets:
            sock.close()
