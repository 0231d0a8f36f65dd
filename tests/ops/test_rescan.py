"""Stored files scanned again when clamd's signatures change (第十一條): a file that passed the
gateway and is recognised by a later signature is quarantined, its author and IT told.

The test runs a clamd of its own (scripts/clamd.sh in another directory), so that its
signatures can change without touching the suite's shared clamd.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from email import policy
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.conftest import make_config, seed_keyring
from tests.daemon.conftest import Files, clamd_socket
from tests.daemon.test_flows import Daemon, start_daemon
from yizhan.daemon.context import Context
from yizhan.daemon.jobs.rescan import run_rescan
from yizhan.daemon.outbound import OutboundWorker
from yizhan.daemon.screening.quarantine import quarantine_of
from yizhan.mailstore.db import upgrade
from yizhan.mailstore.models import AuditEntry, SignatureScan

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "clamd.sh"


def clamd_says(sock: str, command: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(30)
        s.connect(sock)
        s.sendall(b"z" + command + b"\0")
        return s.recv(4096).rstrip(b"\0")


@pytest.fixture
def own_clamd() -> Iterator[Path]:
    """A clamd of this test's own; yields its directory (socket clamd.sock, signatures db/)."""
    base = Path(tempfile.mkdtemp(prefix="yzc", dir="/tmp"))
    env = {**os.environ, "YIZHAN_CLAMD_DIR": str(base)}
    subprocess.run(["bash", str(SCRIPT)], env=env, check=True, capture_output=True, timeout=120)
    yield base
    subprocess.run(["bash", str(SCRIPT), "stop"], env=env, check=False, capture_output=True)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def scanning(
    tmp_path: Path, database_url: str, system_key_home: Path, own_clamd: Path
) -> Iterator[Daemon]:
    config = make_config(
        tmp_path,
        database_url,
        signing={"require_signature": []},
        rescan={"signatures": str(own_clamd / "db"), "interval_minutes": 60},
    )
    seed_keyring(config, system_key_home)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    config.rules_file.write_text(f'[content.scanner]\nsocket = "{own_clamd / "clamd.sock"}"\n')
    ctx = Context.open(config)
    upgrade(ctx.engine)
    daemon = start_daemon(ctx)
    yield daemon
    daemon.stop()
    ctx.close()


def test_new_signatures_find_a_stored_file_and_quarantine_it(
    scanning: Daemon, own_clamd: Path
) -> None:
    ctx = scanning.ctx
    picture = Files.png()
    scanning.send(
        "xiewenbin",
        "qianbao@oa.example",
        "關於購置設備的請示",
        "附圖。",
        files={"設備.png": picture},
    )
    scanning.inbox("xiewenbin")
    (ask,) = scanning.inbox("liangguoqiang")
    doc_id = int(ask["X-Yizhan-Doc"])
    scanning.stop()
    on_the_hour = ctx.clock().replace(minute=0, second=0, microsecond=0)

    # The signatures as they are: noted, nothing scanned, nobody told.
    assert run_rescan(ctx, on_the_hour) == 0
    assert run_rescan(ctx, on_the_hour) == 0
    with ctx.sessions() as session:
        (baseline,) = session.scalars(select(SignatureScan)).all()
    assert baseline.finished_at is not None and baseline.scanned == 0

    # A signature for the picture arrives (as freshclam would bring one) and clamd reloads.
    md5 = hashlib.md5(picture).hexdigest()
    (own_clamd / "db" / "update.hdb").write_text(f"{md5}:{len(picture)}:Yizhan.Test.Picture\n")
    assert clamd_says(str(own_clamd / "clamd.sock"), b"RELOAD") == b"RELOADING"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if clamd_says(str(own_clamd / "clamd.sock"), b"PING") == b"PONG":
                break
        except OSError:
            pass
        time.sleep(0.2)

    queued = run_rescan(ctx, on_the_hour + dt_hour())
    # The author and the IT department's head are told.
    assert queued == 2
    with ctx.sessions() as session:
        scans = session.scalars(select(SignatureScan).order_by(SignatureScan.started_at)).all()
        (entry,) = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "document.infected")
        ).all()
    assert len(scans) == 2 and scans[-1].infected == 1 and scans[-1].scanned >= 1
    assert entry.target == f"doc:{doc_id}" and entry.detail["signature"].startswith(
        "Yizhan.Test.Picture"
    )
    held = quarantine_of(ctx.config).get(entry.detail["quarantine"])
    assert held.inbound_id is not None
    assert picture in base64_parts(quarantine_of(ctx.config).read(held.id))

    asyncio.run(OutboundWorker(ctx).run_until_empty())
    for account in ("xiewenbin", "wuhaifeng"):
        mails = [
            email.message_from_bytes(p.read_bytes(), policy=policy.default)
            for p in (ctx.config.maildir_root / account / "new").iterdir()
        ]
        told = [m for m in mails if "Yizhan.Test.Picture" in m.get_body(("plain",)).get_content()]
        assert told, account
    # The same signatures again: nothing more to do.
    assert run_rescan(ctx, on_the_hour + 2 * dt_hour()) == 0


def dt_hour() -> dt.timedelta:
    return dt.timedelta(hours=1)


def base64_parts(data: bytes) -> list[bytes]:
    msg = email.message_from_bytes(data, policy=policy.default)
    return [p.get_content() for p in msg.walk() if p.get_filename()]


@pytest.mark.usefixtures(clamd_socket.__name__)
def test_a_rescan_run_by_hand_from_a_thread_with_a_running_event_loop(ctx: Context) -> None:
    # The browser tests' driver runs an event loop in the thread that runs the due jobs; a job
    # on the hour must still run there (it stopped with "asyncio.run() cannot be called from a
    # running event loop").
    socket_path = os.environ["YIZHAN_TEST_CLAMD"]
    ctx.config.rules_file.write_text(f'[content.scanner]\nsocket = "{socket_path}"\n')
    on_the_hour = ctx.clock().replace(minute=0, second=0, microsecond=0)

    async def driver() -> int:
        return run_rescan(ctx, on_the_hour)

    assert asyncio.run(driver()) == 0
    with ctx.sessions() as session:
        assert session.scalar(select(func.count()).select_from(SignatureScan)) == 1
