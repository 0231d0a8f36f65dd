"""IMAP outages: Dovecot killed while Yizhan files requests, the daemon killed under Dovecot.

Nothing is lost: filing that fails is retried with backoff, the repair job puts back what the
outage lost and moves what was decided meanwhile, and a daemon restarted after a SIGKILL
replaces the Dovecot it left (issue 13, "Bad input").
"""

from __future__ import annotations

import email
import imaplib
import os
import shutil
import signal
import smtplib
import subprocess
import sys
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.conftest import fresh_database
from tests.daemon.imap.conftest import (
    folder,
    free_port,
    imap_daemon,
    reachable_dir,
    wait_until,
)
from tests.daemon.test_flows import PASSWORD, Daemon, reply
from yizhan.daemon.config import load_config
from yizhan.daemon.imap.dovecot import layout_for
from yizhan.daemon.imap.folders import DONE, TODO
from yizhan.mailstore.models import ImapFiling

REQUESTS = 12


@pytest.fixture
def daemon(system_key_home: Path) -> Iterator[Daemon]:
    with imap_daemon(system_key_home) as d:
        yield d


def _filed(daemon: Daemon, account: str) -> int:
    with daemon.ctx.sessions() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(ImapFiling).where(ImapFiling.account == account)
            )
            or 0
        )


def _maildir_files(daemon: Daemon, account: str) -> list[Path]:
    # 公文/待辦 on disk (Maildir++, modified UTF-7): what Dovecot holds for the folder.
    box = daemon.ctx.config.maildir_root / account / ".&UWxlhw-.&X4WPpg-"
    return sorted(p for sub in ("new", "cur") for p in (box / sub).glob("*"))


def test_dovecot_killed_mid_filing_the_reconciler_restores_every_folder(daemon: Daemon) -> None:
    # Twelve reports ask the unit head to approve. Dovecot is killed while they are being
    # filed; while it is down one filed request's file is lost and another request is
    # approved. Afterwards 待辦 holds the eleven waiting requests once each, 已辦 the
    # approved one (seen), and the bureau leader's 待辦 the next step.
    author, head, leader = "xiewenbin", "liangguoqiang", "sunlimin"
    for n in range(REQUESTS):
        daemon.send(author, "qianbao@oa.example", f"請示第{n}號", "請審批。")
    wait_until(lambda: _filed(daemon, head) >= 3, what="the first filings")
    pid = int(layout_for(daemon.ctx.config).pid_file.read_text().split()[0])
    os.kill(pid, signal.SIGKILL)

    # While Dovecot is down: approve one filed request, and lose another one's file.
    approved_file, lost_file = _maildir_files(daemon, head)[:2]
    approved = email.message_from_bytes(approved_file.read_bytes(), policy=policy.default)
    assert isinstance(approved, EmailMessage)
    lost = email.message_from_bytes(lost_file.read_bytes(), policy=policy.default)
    lost_file.unlink()
    reply(daemon, head, approved, "同意")

    def settled() -> list[str] | None:
        waiting = [m.mail["Message-ID"] for m in folder(daemon, head, TODO)]
        return waiting if len(waiting) == REQUESTS - 1 else None

    waiting = wait_until(settled, timeout=60, what="eleven requests in 待辦")
    assert len(set(waiting)) == REQUESTS - 1, "a request was filed twice"
    assert approved["Message-ID"] not in waiting
    assert lost["Message-ID"] in waiting, "the lost request was not filed again"
    (done,) = wait_until(lambda: folder(daemon, head, DONE), what="the approved request")
    assert done.mail["Message-ID"] == approved["Message-ID"] and "\\Seen" in done.flags
    (nxt,) = wait_until(lambda: folder(daemon, leader, TODO), what="the next step's request")
    assert nxt.mail["X-Yizhan-Doc"] == approved["X-Yizhan-Doc"]


def test_a_daemon_restarted_after_sigkill_replaces_the_dovecot_it_left(
    system_key_home: Path,
) -> None:
    # yizhan serve as a program: SIGKILLed just after ten mails to 李軍 got their 250 (some
    # filed, some not), its Dovecot goes with it (or is ended by the next daemon), nothing it
    # left (Dovecot's pid file, sockets and processes) blocks the restart on the same data
    # directory, and the new daemon serves IMAP on the same port at once, with every mail in
    # 李軍's INBOX exactly once and new mail filed as before.
    base = reachable_dir()
    smtp, imap = free_port(), free_port()
    with fresh_database(base) as url:
        config = base / "yizhan.toml"
        config.write_text(
            f'[yizhan]\ndata_dir = "{base / "var"}"\n[database]\nurl = "{url}"\n'
            f'[smtp]\nlisten = "127.0.0.1:{smtp}"\n[admin]\nlisten = "127.0.0.1:0"\n'
            f'[imap]\nlisten = "127.0.0.1:{imap}"\nauth_failure_delay = 0\n',
            encoding="utf-8",
        )
        env = {**os.environ, "YIZHAN_CONFIG": str(config)}
        org = base / "org.toml"
        org.write_text(
            '[[unit]]\nid = "bureau"\nname = "局"\nkind = "bureau"\n'
            '[[person]]\naccount = "wangfang"\nname = "王芳"\nunit = "bureau"\n'
            'roles = ["clerk"]\n'
            '[[person]]\naccount = "lijun"\nname = "李軍"\nunit = "bureau"\n'
            'roles = ["staff"]\n',
            encoding="utf-8",
        )
        for args, stdin in (
            (["init"], ""),
            (["org", "import", str(org)], ""),
            (["user", "passwd", "wangfang"], PASSWORD),
            (["user", "passwd", "lijun"], PASSWORD),
        ):
            subprocess.run(
                [sys.executable, "-m", "yizhan", *args],
                env=env,
                input=stdin.encode(),
                check=True,
                capture_output=True,
            )
        pid_file = layout_for(load_config(config)).pid_file
        log = (base / "serve.log").open("ab")
        first = subprocess.Popen(
            [sys.executable, "-m", "yizhan", "serve"], env=env, stdout=log, stderr=log
        )
        second: subprocess.Popen[bytes] | None = None
        try:
            old = _dovecot_up(pid_file, imap, None)
            sent = [_mail(smtp, n) for n in range(10)]
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            second = subprocess.Popen(
                [sys.executable, "-m", "yizhan", "serve"], env=env, stdout=log, stderr=log
            )
            new = _dovecot_up(pid_file, imap, old)
            assert not _alive(old), "the old Dovecot is still running"
            inbox = wait_until(
                lambda: _inbox(imap, "lijun", at_least=len(sent)),
                timeout=60,
                what="the ten mails in 李軍's INBOX",
            )
            assert sorted(inbox) == sorted(sent), "a mail is missing or filed twice"
            sent.append(_mail(smtp, 10))
            inbox = wait_until(
                lambda: _inbox(imap, "lijun", at_least=len(sent)),
                timeout=60,
                what="a new mail after the restart",
            )
            assert sorted(inbox) == sorted(sent)
            second.send_signal(signal.SIGTERM)
            assert second.wait(30) == 0
            wait_until(lambda: not _alive(new), timeout=10, what="Dovecot to stop with the daemon")
        finally:
            for process in (first, second):
                if process is not None and process.poll() is None:
                    process.kill()
                    process.wait()
            log.close()
        assert b"Traceback" not in (base / "serve.log").read_bytes()
    shutil.rmtree(pid_file.parent.parent, ignore_errors=True)
    shutil.rmtree(base, ignore_errors=True)


def _mail(port: int, n: int) -> str:
    """王芳 mails 李軍 over SMTP with AUTH; the Message-ID, once it got its 250."""
    message_id = f"<restart-{n}-{os.getpid()}@client.test>"
    data = (
        f"From: wangfang@oa.example\r\nTo: lijun@oa.example\r\nSubject: 第{n}封\r\n"
        f"Message-ID: {message_id}\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "請查收。\r\n"
    ).encode()
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.login("wangfang", PASSWORD)
        client.sendmail("wangfang@oa.example", ["lijun@oa.example"], data)
    return message_id


def _inbox(port: int, account: str, *, at_least: int) -> list[str] | None:
    """The Message-IDs in the person's INBOX, as their mail client sees it; None while there
    are fewer than ``at_least``."""
    client = _imap_login(port, account, PASSWORD)
    try:
        _, count = client.select("INBOX", readonly=True)
        if int(count[0] or 0) < at_least:
            return None
        _, data = client.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        ids = [
            str(email.message_from_bytes(item[1])["Message-ID"]).strip()
            for item in data
            if isinstance(item, tuple)
        ]
        return ids if len(ids) >= at_least else None
    finally:
        client.logout()


def _dovecot_up(pid_file: Path, port: int, old: int | None) -> int:
    def running() -> int | None:
        try:
            pid = int(pid_file.read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None
        if pid == old or not _alive(pid):
            return None
        try:
            _imap_login(port, "wangfang", PASSWORD).logout()
        except OSError:
            return None
        return pid

    return wait_until(running, timeout=60, what="a new Dovecot")


def _imap_login(port: int, account: str, password: str) -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    client.login(account, password)
    return client


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"
