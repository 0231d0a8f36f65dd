"""The attack suite at the SMTP gateway (issue 17, part 4): connection floods, idle and NOOP
connections. Attackers connect from other loopback addresses (127.0.0.2 and up), the owner
from 127.0.0.1, as they would from different machines."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator

from tests.daemon import test_smtp
from tests.daemon.test_smtp import Running, inbound_count, message, send

#: The gateway of tests/daemon/test_smtp, started with [smtp] overrides.
start_gateway = test_smtp.start_gateway


def idle_connection(gateway: Running, source: str) -> tuple[socket.socket, bytes]:
    """A connection from ``source`` that reads the greeting (or refusal) and says no more."""
    sock = socket.create_connection(
        (gateway.host, gateway.port), timeout=10, source_address=(source, 0)
    )
    return sock, sock.recv(1024)


def noop(sock: socket.socket) -> bytes:
    """Send NOOP, as a slow client that keeps its slot would; the reply ('' once closed)."""
    try:
        sock.sendall(b"NOOP\r\n")
        return sock.recv(1024)
    except OSError:
        return b""


@contextlib.contextmanager
def flood(gateway: Running, sources: list[str]) -> Iterator[list[tuple[socket.socket, bytes]]]:
    held = [idle_connection(gateway, source) for source in sources]
    try:
        yield held
    finally:
        for sock, _ in held:
            sock.close()


def owner_sends(gateway: Running) -> tuple[int, str]:
    """王芳 from 127.0.0.1: log in and send one message."""
    client = gateway.login()
    try:
        return send(client, message())
    finally:
        client.quit()


def test_200_noop_connections_from_one_address_leave_room_for_others(
    start_gateway: Callable[..., Running],
) -> None:
    gateway = start_gateway()  # 200 slots, 20 per client address
    with flood(gateway, ["127.0.0.2"] * 200) as held:
        greetings = [greeting[:3] for _, greeting in held]
        assert greetings.count(b"220") == 20 and greetings.count(b"421") == 180
        assert all(noop(sock).startswith(b"250") for sock, g in held if g.startswith(b"220"))
        code, reply = owner_sends(gateway)
    assert code == 250, reply
    assert inbound_count(gateway.ctx) == 1


def test_noop_connections_from_many_addresses_give_way_to_a_sender(
    start_gateway: Callable[..., Running],
) -> None:
    # Every slot held by a client that never authenticates (each from its own address, so the
    # limit per address does not apply): after the grace period the oldest gives way.
    gateway = start_gateway(max_connections=30)
    with flood(gateway, [f"127.0.1.{n}" for n in range(1, 31)]) as held:
        assert all(greeting.startswith(b"220") for _, greeting in held)
        time.sleep(10.5)
        assert all(noop(sock).startswith(b"250") for sock, _ in held)
        started = time.monotonic()
        code, reply = owner_sends(gateway)
        assert code == 250, reply
        assert time.monotonic() - started < 5
        closed = [sock for sock, _ in held if b"421" in noop(sock) or not noop(sock)]
        assert len(closed) >= 1


def test_a_connection_that_does_not_authenticate_is_closed(
    start_gateway: Callable[..., Running],
) -> None:
    gateway = start_gateway(auth_timeout=2)
    sock, greeting = idle_connection(gateway, "127.0.0.3")
    assert greeting.startswith(b"220")
    deadline = time.monotonic() + 10
    replies = b""
    while time.monotonic() < deadline:
        answer = noop(sock)
        replies += answer
        if not answer:
            break
        time.sleep(0.5)
    sock.close()
    assert b"421 4.7.0" in replies and b"Not authenticated in time" in replies


def test_an_idle_connection_is_told_421(start_gateway: Callable[..., Running]) -> None:
    gateway = start_gateway(idle_timeout=2)
    client = gateway.login()
    sock = client.sock
    assert sock is not None
    sock.settimeout(10)
    assert sock.recv(1024).startswith(b"421 4.4.2")
    client.close()
