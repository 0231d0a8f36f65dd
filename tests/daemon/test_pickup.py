"""The incoming spool and the pickup (mailstore/spool.py, daemon/pickup.py).

The gateway's 250 needs the bytes and the envelope on disk, not a database row: a message is
acknowledged while another process holds the database, and gets its row when it is free. What
a crash leaves in the spool becomes rows at the next start, once each.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from tests.daemon import test_smtp
from tests.daemon.test_smtp import Running, committed_inbound, message, queued_key, send
from yizhan.daemon.context import Context
from yizhan.daemon.pickup import Pickup
from yizhan.mailstore.inbound import InboundWriter, StoreFailed
from yizhan.mailstore.models import Inbound
from yizhan.mailstore.spool import IncomingSpool

#: The gateway fixture of the SMTP tests, used here too.
start_gateway = test_smtp.start_gateway
gateway = test_smtp.gateway


@contextlib.contextmanager
def database_held(ctx: Context) -> Iterator[None]:
    """Another process's transaction holding what the pickup needs: SQLite's one writer, or
    PostgreSQL's inbound table."""
    if ctx.engine.dialect.name == "sqlite":
        database = make_url(ctx.config.database_url).database
        assert database is not None
        other = sqlite3.connect(database, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            other.execute("ROLLBACK")
            other.close()
    else:
        with ctx.engine.connect() as other, other.begin():
            other.execute(text("LOCK TABLE inbound IN EXCLUSIVE MODE"))
            yield


def rows(ctx: Context) -> list[Inbound]:
    with ctx.sessions() as session:
        return list(session.scalars(select(Inbound).order_by(Inbound.id)))


def accept(ctx: Context, spool: IncomingSpool, *senders: str) -> list[str]:
    """Messages taken by a spooling writer with no pickup behind it (a daemon killed after
    its 250s): their keys."""

    async def main() -> list[str]:
        writer = InboundWriter(ctx, spool=spool)
        try:
            return [
                await writer.accept(
                    data=message(sender=sender),
                    mail_from=sender,
                    rcpt_tos=["fawen@oa.example", "cmd@oa.example"],
                    sender_account=sender.split("@")[0],
                    auth_method="smtp-auth",
                    peer="127.0.0.1",
                    content_rules="v1",
                )
                for sender in senders
            ]
        finally:
            await writer.aclose()

    return asyncio.run(main())


def pick_up(ctx: Context, spool: IncomingSpool) -> list[int]:
    """Start a pickup as a daemon does at start; the row ids it reported once it is idle."""
    reported: list[int] = []

    async def main() -> None:
        pickup = Pickup(ctx, spool, on_committed=reported.extend)
        pickup.start()
        await pickup.stop()
        await asyncio.sleep(0)  # the report is called soon on the loop

    asyncio.run(main())
    return reported


def a_spool(ctx: Context) -> IncomingSpool:
    spool = IncomingSpool(ctx.config.data_dir / "spool")
    spool.prepare()
    ctx.raw.prepare()
    return spool


def test_a_message_is_acknowledged_while_the_database_is_held_and_gets_its_row_after(
    gateway: Running,
) -> None:
    client = gateway.login()
    with database_held(gateway.ctx):
        code, reply = send(client, message(subject="while held"))
        assert code == 250 and "queued as" in reply, reply
        assert committed_inbound(gateway.ctx, queued_key(reply), wait=0.5) is None
    client.quit()
    row = committed_inbound(gateway.ctx, queued_key(reply))
    assert row is not None and row.sender_account == "wangfang" and row.state == "accepted"
    assert b"Subject: while held" in gateway.ctx.raw.read(row.path)


def test_what_a_crash_left_in_the_spool_becomes_rows_at_start_in_the_order_taken(
    ctx: Context,
) -> None:
    spool = a_spool(ctx)
    keys = accept(ctx, spool, "wangfang@oa.example", "lijun@oa.example", "zhaomin@oa.example")
    assert rows(ctx) == [] and spool.waiting()
    reported = pick_up(ctx, spool)
    made = rows(ctx)
    assert [Path(r.path).stem for r in made] == keys
    assert reported == [r.id for r in made]
    assert [r.sender_account for r in made] == ["wangfang", "lijun", "zhaomin"]
    first = made[0]
    assert first.rcpt_tos == ["fawen@oa.example", "cmd@oa.example"]
    assert (first.auth_method, first.peer, first.content_rules) == ("smtp-auth", "127.0.0.1", "v1")
    assert first.message_id is not None and first.message_id.endswith("@client.test>")
    assert ctx.raw.read(first.path).startswith(b"From: wangfang@oa.example")
    assert spool.waiting() == []


def test_a_spool_file_found_again_after_its_rows_were_made_makes_no_second_row(
    ctx: Context, tmp_path: Path
) -> None:
    # The daemon was killed after the pickup's commit and before it removed the file.
    spool = a_spool(ctx)
    accept(ctx, spool, "wangfang@oa.example")
    kept = [shutil.copy(p, tmp_path / p.name) for p in spool.waiting()]
    pick_up(ctx, spool)
    for path in kept:
        shutil.copy(path, spool.incoming / Path(path).name)
    assert pick_up(ctx, spool) == []
    assert len(rows(ctx)) == 1 and spool.waiting() == []


def test_a_file_the_database_refuses_is_set_aside_and_holds_up_no_other(ctx: Context) -> None:
    spool = a_spool(ctx)
    accept(ctx, spool, "wangfang@oa.example")
    good = spool.waiting()[0]
    broken = json.loads(good.read_bytes())
    del broken[0]["peer"]  # NOT NULL: no database takes this row
    broken[0]["path"] = broken[0]["path"].replace(".eml", "-x.eml")
    (spool.incoming / ("0" + good.name)).write_text(json.dumps(broken))
    pick_up(ctx, spool)
    assert [r.sender_account for r in rows(ctx)] == ["wangfang"]
    assert spool.waiting() == []
    assert [p.name for p in (spool.root / "refused").iterdir()] == ["0" + good.name]


def test_messages_sent_at_once_each_get_one_row(
    start_gateway: Callable[..., Running],
) -> None:
    gateway = start_gateway()
    clients = [gateway.login() for _ in range(6)]

    def one(n: int) -> str:
        code, reply = send(clients[n], message(body=f"n{n}"))
        assert code == 250, reply
        return queued_key(reply)

    async def all_at_once() -> list[str]:
        return list(await asyncio.gather(*(asyncio.to_thread(one, n) for n in range(6))))

    keys = asyncio.run(all_at_once())
    for client in clients:
        client.quit()
    assert all(committed_inbound(gateway.ctx, key) is not None for key in keys)
    with gateway.ctx.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Inbound)) == 6


def test_a_message_with_an_attachment_is_acknowledged_while_the_database_is_held(
    gateway: Running,
) -> None:
    # At DATA the content rules read the published tools and, now and then, the directory:
    # a reader's snapshot, which on SQLite does not wait for the writer holding the database.
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "wangfang@oa.example", "fawen@oa.example", "附件"
    mail.set_content("請審核附件。")
    mail.add_attachment("會議紀要".encode(), maintype="text", subtype="plain", filename="a.txt")
    client = gateway.login()
    with database_held(gateway.ctx):
        started = time.monotonic()
        code, reply = send(client, bytes(mail).replace(b"\n", b"\r\n"))
        took = time.monotonic() - started
    client.quit()
    assert code == 250, reply
    # SQLite's busy timeout is 30 s: an answer within it did not wait for the lock.
    assert took < 20, took
    assert committed_inbound(gateway.ctx, queued_key(reply)) is not None


def test_a_file_another_daemon_made_the_rows_of_is_not_set_aside(
    ctx: Context, tmp_path: Path
) -> None:
    # Two daemons sharing the spool: the other made the rows of a file this one had just
    # spooled. The unique path refuses the second rows; the file is let go, not set aside.
    spool = a_spool(ctx)
    accept(ctx, spool, "wangfang@oa.example")
    (path,) = spool.waiting()
    kept = Path(shutil.copy(path, tmp_path / path.name))
    pick_up(ctx, spool)
    shutil.copy(kept, path)

    async def main() -> None:
        pickup = Pickup(ctx, spool, on_committed=lambda _ids: None)
        pickup.take(path)  # before start(): as handed over by this daemon's gateway
        pickup.start()
        await pickup.stop()

    asyncio.run(main())
    assert len(rows(ctx)) == 1 and spool.waiting() == []
    assert not (spool.root / "refused").exists()


def test_an_envelope_no_database_would_take_is_refused_before_the_250(ctx: Context) -> None:
    # A sender decoded leniently (a lone surrogate) or holding a NUL: refused now with its own
    # temporary error, not acknowledged and left in spool/refused/ unprocessed.
    spool = a_spool(ctx)

    async def main(sender: str) -> str:
        writer = InboundWriter(ctx, spool=spool)
        try:
            return await writer.accept(
                data=message(),
                mail_from=sender,
                rcpt_tos=["fawen@oa.example"],
                sender_account=None,
                auth_method="none",
                peer="127.0.0.1",
            )
        finally:
            await writer.aclose()

    for sender in ("wang\udce9@bureau.example", "wang\x00@bureau.example"):
        with pytest.raises(StoreFailed, match="mail_from"):
            asyncio.run(main(sender))
    assert spool.waiting() == [] and not any((ctx.raw.root / "inbound").rglob("*.eml"))
