"""Crash safety: SIGKILL the daemon while clients send, restart it, and count what arrived.

DESIGN.md, Durability: a message gets 250 only after its bytes and row are on disk; a crash
anywhere loses no accepted message and applies no step twice; a resend after a crash carries
the same Message-ID, so each message reaches the mailbox once.
"""

from __future__ import annotations

import email
import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

from sqlalchemy import create_engine, select

from yizhan.cli.setup import DEMO_PASSWORD
from yizhan.mailstore.models import Delivery, Inbound


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(config: Path) -> subprocess.Popen[bytes]:
    # The log goes to a file: a pipe nobody reads would stall the daemon once it filled.
    with (config.parent / "serve.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "yizhan", "serve"],
            env={**os.environ, "YIZHAN_CONFIG": str(config)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _wait_listening(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("daemon did not start listening")


def test_sigkill_while_sending_loses_nothing_and_delivers_once(
    tmp_path: Path, database_url: str
) -> None:
    # Eight clients send steadily; the daemon is killed mid-stream, then restarted.
    port = _free_port()
    config = tmp_path / "yizhan.toml"
    config.write_text(
        f'[yizhan]\ndata_dir = "{tmp_path / "var"}"\n'
        f'[database]\nurl = "{database_url}"\n'
        f'[smtp]\nlisten = "127.0.0.1:{port}"\n[admin]\nlisten = "127.0.0.1:0"\n'
        '[imap]\nlisten = ""\n',
        encoding="utf-8",
    )
    env = {**os.environ, "YIZHAN_CONFIG": str(config)}
    for verb in ("init", "demo"):
        subprocess.run(
            [sys.executable, "-m", "yizhan", verb], env=env, check=True, capture_output=True
        )

    acknowledged: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[str] = []

    def client(n: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            subject = f"crash-{n}-{i}"
            msg = EmailMessage()
            msg["From"] = "wangfang@bureau.example"
            msg["To"] = "lijun@oa.example"
            msg["Subject"] = subject
            msg.set_content("x" * 2000)
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
                    s.login("wangfang", DEMO_PASSWORD)
                    s.send_message(msg)
            except (OSError, smtplib.SMTPException) as exc:
                errors.append(repr(exc))
                time.sleep(0.05)
                continue
            with lock:
                acknowledged.add(subject)

    daemon = _start(config)
    try:
        _wait_listening(port)
        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        # Kill it mid-stream, once a fair number of messages got their 250.
        deadline = time.monotonic() + 30
        while len(acknowledged) < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(10)
        time.sleep(0.5)
        daemon = _start(config)
        _wait_listening(port)
        before = len(acknowledged)
        deadline = time.monotonic() + 30
        while len(acknowledged) < before + 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join(30)

        engine = create_engine(database_url)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                waiting = (
                    conn.execute(select(Inbound.id).where(Inbound.state == "accepted")).first()
                    or conn.execute(select(Delivery.id).where(Delivery.state == "queued")).first()
                )
            # A message 250'd a moment ago may still be in the spool, its row not yet made.
            if waiting is None and not any((tmp_path / "var" / "spool" / "incoming").iterdir()):
                break
            time.sleep(0.2)
        with engine.connect() as conn:
            stored = conn.execute(select(Inbound.path, Inbound.state)).all()
        engine.dispose()
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(30)

    assert len(acknowledged) >= 60, f"the clients barely got through: {Counter(errors)}"
    # Every acknowledged message is stored and was processed.
    stored_subjects = {
        email.message_from_bytes((tmp_path / "var" / "mail" / path).read_bytes(), policy=default)[
            "Subject"
        ]
        for path, _state in stored
    }
    assert acknowledged <= stored_subjects
    states = Counter(state for _path, state in stored)
    log = (tmp_path / "serve.log").read_text(encoding="utf-8", errors="replace")
    problems = [line for line in log.splitlines() if "ERROR" in line or "Traceback" in line]
    assert set(states) == {"processed"}, f"{states}: {problems[:20]}"
    # Each stored message reached the mailbox exactly once.
    new = tmp_path / "var" / "maildirs" / "lijun" / "new"
    delivered = Counter(
        email.message_from_bytes(p.read_bytes(), policy=default)["Subject"] for p in new.iterdir()
    )
    assert set(delivered) == stored_subjects
    assert max(delivered.values()) == 1
