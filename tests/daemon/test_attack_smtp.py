"""The attack suite at the SMTP gateway (issue 17, part 4): connection floods, idle and NOOP
connections. Attackers connect from other loopback addresses (127.0.0.2 and up), the owner
from 127.0.0.1, as they would from different machines."""

from __future__ import annotations

import contextlib
import smtplib
import socket
import time
from collections.abc import Callable, Iterator

from tests.daemon import test_smtp
from tests.daemon.test_smtp import (
    PASSWORD,
    Running,
    audit_rows,
    inbound_count,
    message,
    plain,
    send,
)
from yizhan.mailstore import accounts

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


# --- Password guessing (f) ----------------------------------------------------------------------


def auth_from(gateway: Running, source: str, account: str, password: str) -> tuple[int, bytes]:
    """One AUTH PLAIN from the address ``source``."""
    client = smtplib.SMTP(
        gateway.host,
        gateway.port,
        local_hostname="client.test",
        timeout=60,
        source_address=(source, 0),
    )
    try:
        client.ehlo()
        return client.docmd("AUTH", "PLAIN " + plain(account, password))
    finally:
        client.close()


def test_a_guesser_is_locked_out_but_not_the_owner(start_gateway: Callable[..., Running]) -> None:
    # Five wrong passwords for 趙建國 (局長) from 127.0.0.5: that address is locked out of the
    # account, recorded with the address; 趙建國 at his own machine logs in as ever.
    gateway = start_gateway()
    with gateway.ctx.sessions.begin() as session:
        accounts.set_password(
            session,
            "zhaojianguo",
            PASSWORD,
            temporary=False,
            actor="test",
            now=gateway.ctx.clock(),
            policy=gateway.ctx.login_policy,
        )
    codes = [auth_from(gateway, "127.0.0.5", "zhaojianguo", f"guess-{n}-xx")[0] for n in range(5)]
    assert codes == [535] * 5
    code, reply = auth_from(gateway, "127.0.0.5", "zhaojianguo", PASSWORD)
    assert code == 535 and b"locked until" in reply
    assert auth_from(gateway, "127.0.0.1", "zhaojianguo", PASSWORD)[0] == 235
    (locked,) = audit_rows(gateway.ctx, "account.locked")
    assert locked.target == "zhaojianguo" and locked.detail["client"] == "127.0.0.5"


def test_guessing_is_slowed_progressively(start_gateway: Callable[..., Running]) -> None:
    # The first two failures are answered at once (an owner's typo), then each waits longer.
    gateway = start_gateway()
    took = []
    for n in range(4):
        started = time.monotonic()
        assert auth_from(gateway, "127.0.0.6", "lijun", f"wrong-{n}-pass")[0] == 535
        took.append(time.monotonic() - started)
    # Delays of 0.5 and 1 s over what an answer costs (a password check: 0.1-0.6 s here).
    free = min(took[:2])
    assert took[2] >= free + 0.35 and took[3] >= free + 0.7, took


def test_an_address_trying_many_accounts_is_locked_out_of_all(
    start_gateway: Callable[..., Running],
) -> None:
    # Password spraying: four wrong passwords to each of five accounts (never five for one)
    # from 127.0.0.7 lock the address out of every account; others are not affected.
    gateway = start_gateway()
    names = ["lijun", "sunlimin", "chenzhigang", "liuyang", "zhoujing"]
    with gateway.ctx.sessions.begin() as session:
        for name in names[1:]:
            accounts.set_password(
                session,
                name,
                PASSWORD,
                temporary=False,
                actor="test",
                now=gateway.ctx.clock(),
                policy=gateway.ctx.login_policy,
            )
    for name in names:
        for n in range(4):
            auth_from(gateway, "127.0.0.7", name, f"Spring-2026-{n}")
    code, reply = auth_from(gateway, "127.0.0.7", "wangfang", PASSWORD)
    assert code == 535 and b"locked until" in reply
    assert auth_from(gateway, "127.0.0.1", "lijun", PASSWORD)[0] == 235
    (locked,) = audit_rows(gateway.ctx, "client.locked")
    assert locked.detail["client"] == "127.0.0.7"


def test_unknown_and_known_accounts_take_as_long_to_refuse(
    start_gateway: Callable[..., Running],
) -> None:
    # No account list by timing: an unknown account is refused after the same password check
    # as a known one with a wrong password (each from its own address, so no delay counts).
    gateway = start_gateway()

    def took(source: str, account: str) -> float:
        started = time.monotonic()
        assert auth_from(gateway, source, account, "Wrong-password-1")[0] == 535
        return time.monotonic() - started

    unknown = sorted(took(f"127.0.2.{n}", f"nobody{n}") for n in range(1, 6))[2]
    known = sorted(took(f"127.0.3.{n}", "lijun") for n in range(1, 6))[2]
    print(f"\nAUTH refused in {unknown * 1000:.0f} ms (unknown) and {known * 1000:.0f} ms (known)")
    assert unknown > known / 3, (unknown, known)


# --- Sending as another (part 4) ----------------------------------------------------------------


def test_auth_as_one_with_sender_of_another_is_550_and_audited(
    start_gateway: Callable[..., Running],
) -> None:
    # AUTH as 王芳, From: 王芳, Sender: 李軍: refused, recorded, nothing stored.
    gateway = start_gateway()
    client = gateway.login()
    code, reply = send(client, message(extra="Sender: 李軍 <lijun@oa.example>\r\n"))
    client.quit()
    assert code == 550
    assert "Sender: <lijun@oa.example> is not an address of account wangfang" in reply
    (entry,) = audit_rows(gateway.ctx, "impersonation")
    assert (entry.actor, entry.target, entry.detail["where"]) == (
        "wangfang",
        "lijun@oa.example",
        "Sender:",
    )
    assert inbound_count(gateway.ctx) == 0
    # Her own Sender: is fine.
    client = gateway.login()
    code, _ = send(client, message(extra="Sender: wangfang@oa.example\r\n"))
    client.quit()
    assert code == 250


def test_auth_as_one_with_the_display_name_of_another_is_550_and_audited(
    start_gateway: Callable[..., Running],
) -> None:
    # AUTH as 王芳, From: 李軍 <wangfang@…>: her address, his name. Refused and recorded; her
    # own name, or a name that is no one's, passes.
    gateway = start_gateway()
    client = gateway.login()
    code, reply = send(client, message(sender="=?utf-8?b?5p2O6LuN?= <wangfang@oa.example>"))
    assert code == 550 and "account lijun" in reply
    for name in ("王芳", "辦公室"):
        code, _ = send(client, message(sender=f"{name} <wangfang@oa.example>"))
        assert code == 250, name
    client.quit()
    (entry,) = audit_rows(gateway.ctx, "impersonation")
    assert (entry.actor, entry.target, entry.detail["where"]) == (
        "wangfang",
        "lijun",
        "From: name",
    )
