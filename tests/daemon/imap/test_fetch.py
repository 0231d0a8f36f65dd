"""Fetch mode: Yizhan reads its mail from a mailbox on an IMAP server, each message once.

The server is a real Dovecot: the daemon's own, where the demo account dupeng stands in for
the organisation's mailbox that receives the OA domain's mail. Messages arrive in it as a
delivery agent puts them (files in the Maildir's new/) or by APPEND.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
import uuid
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

from sqlalchemy import select

from tests.daemon.imap.conftest import free_port, imap_daemon, login, reachable_dir, wait_until
from tests.daemon.test_flows import PASSWORD, Daemon
from yizhan.daemon.imap.dovecot import layout_for
from yizhan.daemon.imap.fetch import fetched_identity, fetched_recipients
from yizhan.mailstore import accounts
from yizhan.mailstore.directory import load_directory
from yizhan.mailstore.models import FetchedMessage, Inbound

MAILBOX = "dupeng"
AUTHSERV = "mail.bureau.example"


def todo_query(sender: str, *, authserv: str = AUTHSERV) -> bytes:
    """A TODO command to cmd@, as the organisation's MTA delivered it after SMTP AUTH."""
    mail = EmailMessage()
    mail["Authentication-Results"] = f"{authserv}; auth=pass smtp.auth={sender}"
    mail["Delivered-To"] = "cmd@oa.example"
    mail["From"] = f"{sender}@bureau.example"
    mail["To"] = "cmd@oa.example"
    mail["Subject"] = "待辦"
    mail["Message-ID"] = make_msgid(domain="bureau.example")
    mail.set_content("待辦\n")
    return mail.as_bytes().replace(b"\n", b"\r\n")


def deliver(daemon: Daemon, data: bytes) -> None:
    """Put ``data`` into the mailbox's INBOX as a delivery agent does (Maildir new/)."""
    root = daemon.ctx.config.maildir_root / MAILBOX
    for path in (root, root / "new", root / "cur", root / "tmp"):
        if not path.exists():
            path.mkdir(mode=0o700)
            shutil.chown(path, "yizhan-mail", "yizhan-mail")
    new = root / "new"
    tmp = root / "tmp" / uuid.uuid4().hex
    tmp.write_bytes(data)
    shutil.chown(tmp, "yizhan-mail", "yizhan-mail")
    tmp.rename(new / f"{int(time.time())}.{uuid.uuid4().hex}.test")


def fetched(daemon: Daemon) -> list[Inbound]:
    with daemon.ctx.sessions() as session:
        return list(
            session.scalars(
                select(Inbound).where(Inbound.peer.like("fetch %")).order_by(Inbound.id)
            )
        )


def test_each_message_once_across_restarts_and_a_new_uidvalidity(
    system_key_home: Path,
) -> None:
    # Messages fetched, the daemon restarted with more waiting, the mailbox renumbered
    # (a new UIDVALIDITY) with a processed message put back: each enters Yizhan once.
    port = free_port()
    secrets = reachable_dir()
    (secrets / "fetch-password").write_text(PASSWORD + "\n")
    fetch = {
        "server": f"127.0.0.1:{port}",
        "account": MAILBOX,
        "password_file": str(secrets / "fetch-password"),
        "authserv_id": AUTHSERV,
        "poll_seconds": 1,
    }
    with imap_daemon(system_key_home, port=port, fetch=fetch) as daemon:
        first = [todo_query("wangfang"), todo_query("lintao", authserv="forged.example")]
        for data in first:
            deliver(daemon, data)
        rows = wait_until(lambda: len(fetched(daemon)) == 2 and fetched(daemon), what="fetch")
        # Only the server named in [fetch] authserv_id vouches for a sender.
        assert sorted((r.sender_account or "", r.auth_method) for r in rows) == [
            ("", "none"),
            ("wangfang", "relay-auth"),
        ]
        # The account policy holds for a login the MTA checked: the fetch is a last login.
        with daemon.ctx.sessions() as session:
            assert accounts.get_account(session, "wangfang").last_login_at is not None
        # Processed messages are moved out of the INBOX into the processed folder.
        client = login(daemon, MAILBOX)
        wait_until(lambda: client.select("INBOX")[1] == [b"0"], what="an empty INBOX")
        kind, count = client.select('"Yizhan/Processed"')
        assert kind == "OK" and count == [b"2"]
        client.logout()

        # The server goes away while Yizhan waits in IDLE (aioimaplib #110: an IDLE whose
        # connection closes never returns): Yizhan reconnects once it is back.
        time.sleep(0.5)
        os.kill(int(layout_for(daemon.ctx.config).pid_file.read_text().split()[0]), 9)
        # … and a locked account's mail is taken as unauthenticated.
        with daemon.ctx.sessions.begin() as session:
            row = accounts.get_account(session, "songjia")
            row.locked_until = daemon.ctx.clock() + dt.timedelta(minutes=15)
        deliver(daemon, todo_query("songjia"))
        wait_until(lambda: len(fetched(daemon)) == 3, timeout=30, what="fetch after the outage")
        assert (fetched(daemon)[-1].sender_account, fetched(daemon)[-1].auth_method) == (
            None,
            "none",
        )

        daemon.stop()
        deliver(daemon, todo_query("caoyaqin"))
        restarted = Daemon(daemon.ctx)
        try:
            wait_until(lambda: len(fetched(daemon)) == 4, what="the message sent meanwhile")
        finally:
            restarted.stop()

        # Renumber the mailbox: Dovecot forgets its UIDs and gives the INBOX a new
        # UIDVALIDITY; an already processed message is back in it, beside a new one.
        root = daemon.ctx.config.maildir_root / MAILBOX
        for index in [root / "dovecot-uidlist", *root.glob("dovecot.index*")]:
            index.unlink(missing_ok=True)
        deliver(daemon, first[0])
        deliver(daemon, todo_query("xuna"))
        again = Daemon(daemon.ctx)
        try:
            wait_until(lambda: len(fetched(daemon)) == 5, what="the new message")
            client = login(daemon, MAILBOX)
            wait_until(lambda: client.select("INBOX")[1] == [b"0"], what="an empty INBOX")
            client.logout()
            time.sleep(1)  # one more round, in case a duplicate were coming
            rows = fetched(daemon)
            assert len(rows) == 5
            assert len({r.message_id for r in rows}) == 5
            with daemon.ctx.sessions() as session:
                validities = set(session.scalars(select(FetchedMessage.uidvalidity)))
            assert len(validities) == 2, "the mailbox was not renumbered"
        finally:
            again.stop()
    shutil.rmtree(secrets, ignore_errors=True)


def test_identity_and_recipients_of_fetched_mail(bureau) -> None:  # type: ignore[no-untyped-def]
    # Conservative identity: no authserv-id configured, a different server's result, or a
    # From that is not the authenticated person's, all mean "not authenticated".
    with bureau.sessions() as session:
        directory = load_directory(session)
    good = todo_query("wangfang")
    assert fetched_identity(
        good, authserv_id=AUTHSERV, directory=directory, domain="oa.example"
    ) == ("wangfang", "relay-auth")
    assert fetched_identity(good, authserv_id="", directory=directory, domain="oa.example") == (
        None,
        "none",
    )
    spoofed = good.replace(b"smtp.auth=wangfang", b"smtp.auth=lijun")
    assert fetched_identity(
        spoofed, authserv_id=AUTHSERV, directory=directory, domain="oa.example"
    ) == (None, "none")
    assert fetched_recipients(good, "oa.example") == ["cmd@oa.example"]
    stray = good.replace(b"cmd@oa.example", b"someone@elsewhere.example")
    assert fetched_recipients(stray, "oa.example") == ["cmd@oa.example"]
