"""The login the organisation's Postfix checked, as Yizhan learns it (issue 13, part 5).

Postfix asks Yizhan's policy service at DATA; the service seals the SASL login into
``X-Yizhan-Login``; the gateway believes only the topmost copy, from a trusted relay, sealed for
the very message (the queue id of the topmost Received), and applies the account policy of
AUTH: suspended, locked and must-change accounts are refused, a success is the last login.
The real Postfix path is tests/daemon/postfix; here the gateway and the service are driven over
their own protocols, as Postfix would.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable

import pytest

from tests.daemon import test_smtp
from tests.daemon.test_smtp import (
    Running,
    committed_inbound,
    message,
    queued_key,
    send,
)
from yizhan.daemon.config import HostPort
from yizhan.daemon.context import Context
from yizhan.daemon.gateway.login_header import seal, strip_field, unseal
from yizhan.daemon.gateway.policy import answer, login_refusal, start_policy_service
from yizhan.mailstore import accounts
from yizhan.mailstore.models import Account

#: The gateway fixture of the SMTP tests, used here too.
start_gateway = test_smtp.start_gateway

QUEUE_ID = "4Ab0C1xyZ"


def received(queue_id: str = QUEUE_ID) -> str:
    return (
        "Received: from client.test (localhost [127.0.0.1])\r\n"
        f"\tby mta.bureau.example (Postfix) with ESMTPSA id {queue_id}\r\n"
        "\tfor <fawen@oa.example>; Sun,  6 Dec 2026 22:28:41 +0000 (UTC)\r\n"
    )


def sealed(gateway: Running, login: str, queue_id: str = QUEUE_ID) -> str:
    return f"X-Yizhan-Login: {seal(gateway.ctx.config.secret, login, queue_id)}\r\n"


def relay_send(gateway: Running, extra: str, sender: str = "wangfang@bureau.example") -> str:
    client = gateway.client()
    code, reply = send(client, message(sender=sender, extra=extra), mail_from=sender)
    client.quit()
    return f"{code} {reply}"


def stored(gateway: Running, reply: str) -> tuple[str | None, str, bytes]:
    assert reply.startswith("250 "), reply
    row = committed_inbound(gateway.ctx, queued_key(reply))
    assert row is not None
    return row.sender_account, row.auth_method, gateway.ctx.raw.read(row.path)


def test_a_sealed_login_from_the_trusted_mta_is_the_sender_and_its_last_login(
    start_gateway: Callable[..., Running],
) -> None:
    gateway = start_gateway(trusted_relays=("127.0.0.1",))
    before = accounts_row(gateway, "wangfang").last_login_at
    # A client's own copy below Postfix's is spent with it: none is stored.
    client_copy = "X-Yizhan-Login: lijun; queue-id=XYZ; mac=00\r\n"
    reply = relay_send(gateway, sealed(gateway, "wangfang") + received() + client_copy)
    account, method, data = stored(gateway, reply)
    assert (account, method) == ("wangfang", "relay-auth")
    assert b"X-Yizhan-Login" not in data and b"with ESMTPSA id 4Ab0C1xyZ" in data
    after = accounts_row(gateway, "wangfang").last_login_at
    assert after is not None and after != before


@pytest.mark.parametrize(
    "case",
    ["forged-mac", "other-message", "below-received", "untrusted-peer"],
)
def test_a_login_header_that_was_not_sealed_for_this_message_names_no_one(
    start_gateway: Callable[..., Running], case: str
) -> None:
    trusted = () if case == "untrusted-peer" else ("127.0.0.1",)
    gateway = start_gateway(trusted_relays=trusted)
    if case == "forged-mac":
        extra = "X-Yizhan-Login: wangfang; queue-id=4Ab0C1xyZ; mac=" + "0" * 32 + "\r\n"
        extra += received()
    elif case == "other-message":
        # Copied from an earlier message (its queue id is not this message's).
        extra = sealed(gateway, "wangfang", "9Zz8Yy7") + received()
    elif case == "below-received":
        # Genuine once, but written by the client: Postfix's Received is above it.
        extra = received("7Qq6Pp5") + sealed(gateway, "wangfang")
    else:
        extra = sealed(gateway, "wangfang") + received()
    reply = relay_send(gateway, extra)
    if case == "untrusted-peer":
        assert reply.startswith("530 "), reply
        return
    account, method, data = stored(gateway, reply)
    assert (account, method) == (None, "none")
    assert b"X-Yizhan-Login" not in data


@pytest.mark.parametrize("state", ["suspended", "locked", "temporary"])
def test_the_account_policy_holds_for_a_login_postfix_checked(
    start_gateway: Callable[..., Running], state: str
) -> None:
    gateway = start_gateway(trusted_relays=("127.0.0.1",))
    ctx = gateway.ctx
    with ctx.sessions.begin() as session:
        if state == "suspended":
            accounts.set_state(session, "lijun", "suspended", actor="test", now=ctx.clock())
        elif state == "locked":
            row = accounts.get_account(session, "lijun")
            row.locked_until = ctx.clock() + dt.timedelta(minutes=15)
        else:
            accounts.get_account(session, "lijun").password_temporary = True
    reply = relay_send(gateway, sealed(gateway, "lijun") + received(), "lijun@bureau.example")
    assert reply.startswith("550 5.7.1 The login lijun may not send"), reply
    expected = {"suspended": "suspended", "locked": "locked until", "temporary": "changed"}
    assert expected[state] in reply
    assert accounts_row(gateway, "lijun").last_login_at is None


def test_the_policy_service_seals_sasl_logins_only() -> None:
    secret = "s" * 32
    request = {"request": "smtpd_access_policy", "protocol_state": "DATA", "queue_id": "AB12"}
    assert answer(request, secret=secret) == "DUNNO"
    action = answer({**request, "sasl_username": "wangfang"}, secret=secret)
    assert action.startswith("PREPEND X-Yizhan-Login: wangfang; queue-id=AB12; mac=")
    value = action.split(": ", 1)[1]
    received_value = "from x by mta (Postfix) with ESMTPSA id AB12; Sun, 6 Dec 2026"
    assert unseal(secret, value, received_value) == "wangfang"
    assert unseal("another secret", value, received_value) is None
    # Before DATA there is no queue id to seal for.
    assert answer({**request, "sasl_username": "wangfang", "queue_id": ""}, secret=secret) == (
        "DUNNO"
    )


def test_the_policy_service_speaks_postfixs_protocol() -> None:
    # Two requests on one connection, as Postfix's smtpd sends them.
    async def exchange() -> bytes:
        server = await start_policy_service(HostPort(host="127.0.0.1", port=0), secret="k" * 32)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for login in ("", "lijun"):
            writer.write(
                b"request=smtpd_access_policy\nprotocol_state=DATA\nqueue_id=QQ1\n"
                + f"sasl_username={login}\n\n".encode()
            )
        await writer.drain()
        got = b""
        while got.count(b"\n\n") < 2:
            got += await asyncio.wait_for(reader.read(4096), 10)
        writer.close()
        server.close()
        return got

    first, second, _ = asyncio.run(exchange()).split(b"\n\n")
    assert first == b"action=DUNNO"
    assert second.startswith(b"action=PREPEND X-Yizhan-Login: lijun; queue-id=QQ1; mac=")


def test_the_policy_service_refuses_a_login_the_account_policy_refuses(bureau: Context) -> None:
    # Postfix may have checked the password against the organisation's own Dovecot: a
    # suspended Yizhan account is refused at DATA, with the reason, before anything is queued.
    with bureau.sessions.begin() as session:
        accounts.set_state(session, "lijun", "suspended", actor="test", now=bureau.clock())
        wangfang = accounts.get_account(session, "wangfang")
        wangfang.password_temporary, wangfang.password_changed_at = False, bureau.clock()

    async def exchange() -> list[bytes]:
        server = await start_policy_service(
            HostPort(host="127.0.0.1", port=0), secret="k" * 32, check=login_refusal(bureau)
        )
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for login in ("lijun", "wangfang@oa.example", "visitor@elsewhere.example"):
            writer.write(
                b"request=smtpd_access_policy\nprotocol_state=DATA\nqueue_id=QQ2\n"
                + f"sasl_username={login}\n\n".encode()
            )
        await writer.drain()
        got = b""
        while got.count(b"\n\n") < 3:
            got += await asyncio.wait_for(reader.read(4096), 10)
        writer.close()
        await writer.wait_closed()
        server.close()
        return got.split(b"\n\n")[:3]

    suspended, active, outsider = asyncio.run(exchange())
    assert (
        suspended == b"action=REJECT 5.7.1 The login lijun may not send: the account is suspended"
    )
    assert active.startswith(b"action=PREPEND X-Yizhan-Login: wangfang@oa.example;")
    # Not an account of Yizhan's: sealed all the same; the gateway will not know it.
    assert outsider.startswith(b"action=PREPEND X-Yizhan-Login: visitor@elsewhere.example;")
    # A look before the mail arrives is not a login.
    with bureau.sessions() as session:
        assert accounts.get_account(session, "wangfang").last_login_at is None


def test_strip_field_keeps_everything_else_byte_for_byte() -> None:
    data = (
        b"X-Yizhan-Login: a; queue-id=1; mac=2\r\nReceived: by x\r\n\tid 1\r\n"
        b"x-yizhan-login: b;\r\n  folded\r\nSubject: s\r\n\r\nX-Yizhan-Login: body\r\n"
    )
    assert strip_field(data, "X-Yizhan-Login") == (
        b"Received: by x\r\n\tid 1\r\nSubject: s\r\n\r\nX-Yizhan-Login: body\r\n"
    )
    assert strip_field(b"Subject: s\n\nbody\n", "X-Yizhan-Login") == b"Subject: s\n\nbody\n"


def accounts_row(gateway: Running, account: str) -> Account:
    with gateway.ctx.sessions() as session:
        return accounts.get_account(session, account)
