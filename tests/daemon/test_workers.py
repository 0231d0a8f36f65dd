"""Processing in worker processes (``[processing] workers``, daemon/workers.py), as
``yizhan serve`` runs it by default: mail is answered, a dead worker is replaced, and no worker
outlives its daemon, even one killed with SIGKILL."""

from __future__ import annotations

import contextlib
import email
import email.policy
import multiprocessing
import os
import re
import signal
import smtplib
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import demo_org, seed_keyring, short_dir
from tests.daemon.imap.conftest import Held, folder, imap_daemon
from tests.daemon.imap.conftest import wait_until as imap_wait_until
from tests.daemon.test_flows import PASSWORD, Daemon, reply, running_bureau, text
from tests.daemon.test_outbound import Recorder, Relay
from tests.ops.test_metrics import free_port, get, samples
from yizhan.daemon.config import load_config
from yizhan.daemon.context import Context
from yizhan.daemon.imap.folders import DONE, TODO
from yizhan.daemon.workers import IN_HAND, METRICS, Frames
from yizhan.mailstore import accounts, pending
from yizhan.mailstore.directory import import_directory
from yizhan.mailstore.models import Delivery, Inbound
from yizhan.routing.directory import parse_org


def children(pid: int) -> set[int]:
    """The processing workers ``pid`` started (spawned Python processes)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        # A thread may end between the listing and the read.
        with contextlib.suppress(FileNotFoundError):
            found |= {int(c) for c in (task / "children").read_text().split()}
    spawned = set()
    for child in found:
        with contextlib.suppress(FileNotFoundError):
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                spawned.add(child)
    return spawned


def gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def wait_until(check: object, *, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"not true within {timeout} s: {check}")


@pytest.fixture
def daemon(tmp_path: Path, database_url: str, system_key_home: Path) -> Iterator[Daemon]:
    with running_bureau(
        tmp_path, database_url, system_key_home, processing={"workers": 2}
    ) as running:
        yield running


def help_answered(daemon: Daemon, account: str) -> None:
    daemon.send(account, "cmd@oa.example", "HELP", "HELP")
    (answer,) = daemon.inbox(account)
    assert "HELP" in text(answer)


def test_workers_answer_mail_and_stop_with_the_daemon(daemon: Daemon) -> None:
    workers = children(os.getpid())
    assert len(workers) == 2
    help_answered(daemon, "wangfang")
    with daemon.ctx.sessions() as session:
        owners = set(session.scalars(select(Inbound.lease_owner)))
    # Processed by a worker of this daemon, under a lease of its own.
    assert len(owners) == 1 and owners.pop().startswith(f"{daemon.ctx.instance} processor ")
    daemon.stop()
    wait_until(lambda: all(gone(pid) for pid in workers))


def test_the_answer_is_relayed_by_the_workers_courier(
    tmp_path: Path, database_url: str, system_key_home: Path
) -> None:
    # The couriers run in the processing worker, not in the daemon beside the gateway
    # (docs/perf.md): a HELP's answer reaches the relay once, sent under the worker's lease.
    recorder = Recorder()
    relay = Relay(recorder)
    relay.start()
    try:
        with running_bureau(
            tmp_path,
            database_url,
            system_key_home,
            processing={"workers": 1},
            relay={"host": "127.0.0.1", "port": relay.port},
        ) as daemon:
            daemon.send("wangfang", "cmd@oa.example", "HELP", "HELP")
            wait_until(lambda: recorder.received)
            time.sleep(0.5)
            (answer,) = recorder.received
            assert [r.split("@")[0] for r in answer.rcpts] == ["wangfang"]
            mail = email.message_from_bytes(answer.data, policy=email.policy.default)
            assert isinstance(mail, EmailMessage)
            assert "HELP" in text(mail)
            with daemon.ctx.sessions() as session:
                (delivery,) = session.scalars(select(Delivery))
            assert delivery.state == "sent"
            assert (delivery.lease_owner or "").startswith(f"{daemon.ctx.instance} processor ")
    finally:
        relay.stop()


def test_the_workers_courier_files_requests_over_imap_and_the_daemon_tidies_them(
    system_key_home: Path,
) -> None:
    # `make run`'s setup with a processing worker: the worker's courier files the head's
    # request into 公文/待辦 of the daemon's own Dovecot; after APPROVE the daemon's tidy pass
    # (woken by what the worker tells it) moves it to 公文/已辦.
    with imap_daemon(system_key_home, processing={"workers": 1}) as daemon:
        author, head = "xiewenbin", "liangguoqiang"
        title = "關於購置冷藏設備的請示"
        daemon.send(author, "qianbao@oa.example", title, "擬購置冷藏設備。")

        def requests(name: str) -> list[Held]:
            return [m for m in folder(daemon, head, name) if title in m.mail["Subject"]]

        (ask,) = imap_wait_until(lambda: requests(TODO), timeout=60, what="the request")
        with daemon.ctx.sessions() as session:
            owners = set(session.scalars(select(Delivery.lease_owner)))
        assert owners and all(
            (o or "").startswith(f"{daemon.ctx.instance} processor ") for o in owners
        )
        reply(daemon, head, ask.mail, "同意")
        (done,) = imap_wait_until(lambda: requests(DONE), timeout=60, what="it in 已辦")
        assert done.mail["Message-ID"] == ask.mail["Message-ID"]
        assert requests(TODO) == []


def test_a_workers_large_message_is_read_whole_from_its_nonblocking_socket() -> None:
    # A worker's metrics grew past 16 KiB: multiprocessing writes such a message as its header,
    # then its body, and the daemon, reading its non-blocking end as bytes came, took the
    # half-read message for a dead worker. The daemon now keeps what it read until the
    # message is whole.
    ours, theirs = multiprocessing.Pipe()
    os.set_blocking(ours.fileno(), False)
    figures = METRICS + b"x" * 40_000
    frames = Frames()
    heard: list[bytes] = []

    def read_what_is_there() -> None:
        with contextlib.suppress(BlockingIOError):
            while True:
                heard.extend(frames.feed(os.read(ours.fileno(), 65536)))

    # The worker's writes, as Connection.send_bytes makes them, with the daemon reading between.
    os.write(theirs.fileno(), struct.pack("!i", len(figures)))
    read_what_is_there()
    os.write(theirs.fileno(), figures[:1000])
    read_what_is_there()
    assert heard == []
    os.write(theirs.fileno(), figures[1000:])
    theirs.send_bytes(IN_HAND + b"42")
    read_what_is_there()
    assert heard == [figures, IN_HAND + b"42"]
    ours.close()
    theirs.close()


def test_a_worker_that_dies_is_replaced(daemon: Daemon) -> None:
    help_answered(daemon, "wangfang")
    before = children(os.getpid())
    victim = max(before)
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: len(children(os.getpid()) - before) >= 1)
    # Every message still gets its answer (two workers; the new one is up within seconds).
    for account in ("lintao", "songjia", "caoyaqin"):
        help_answered(daemon, account)


def test_the_workers_signing_times_are_in_the_daemons_metrics(
    tmp_path: Path, database_url: str, system_key_home: Path
) -> None:
    # The answer is signed in a worker process; the operator scrapes the daemon's /metrics and
    # sees that signature's time, and the counts do not go down when a worker is replaced.
    port = free_port()
    with running_bureau(
        tmp_path,
        database_url,
        system_key_home,
        processing={"workers": 2},
        admin={"listen": f"127.0.0.1:{port}"},
    ) as daemon:
        count = ("yizhan_signing_seconds_count", ())
        before = samples(get(f"http://127.0.0.1:{port}/metrics")[1]).get(count, 0)
        help_answered(daemon, "wangfang")

        def signed() -> float:
            return samples(get(f"http://127.0.0.1:{port}/metrics")[1]).get(count, 0) - before

        wait_until(lambda: signed() >= 1)
        for pid in children(os.getpid()):
            os.kill(pid, signal.SIGKILL)
        wait_until(lambda: len(children(os.getpid())) == 2)
        assert signed() >= 1
        help_answered(daemon, "lintao")
        wait_until(lambda: signed() >= 2)


def test_a_message_that_kills_its_worker_is_set_aside_after_five_deaths(
    tmp_path: Path, database_url: str, system_key_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Processing this message kills the worker process itself (as a crash in a C library
    # would; crashpoints.poisoned), not with a Python exception. Each replacement takes it up
    # again; after five deaths it is set aside with the reason, the IT department (吳海峰) is
    # told once, and mail sent after it is processed as usual.
    monkeypatch.setenv("YIZHAN_CRASH_ON_MESSAGE", "POISON-7f3a")
    with running_bureau(
        tmp_path, database_url, system_key_home, processing={"workers": 2}
    ) as daemon:
        daemon.send("wangfang", "cmd@oa.example", "HELP", "POISON-7f3a")

        def set_aside() -> list[Inbound]:
            with daemon.ctx.sessions() as session:
                return pending.set_aside(session)

        wait_until(lambda: set_aside(), timeout=90)
        (row,) = set_aside()
        assert row.attempts == pending.MAX_ATTEMPTS
        assert "processing worker died (signal 9)" in (row.reason or "")
        (notice,) = daemon.inbox("wuhaifeng")
        assert f"#{row.id}" in text(notice) and "signal 9" in text(notice)
        (told,) = daemon.inbox("wangfang")
        assert "not acted on" in text(told)
        help_answered(daemon, "lintao")
        # Only the one notice: the message is not taken up again.
        time.sleep(1)
        with pytest.raises(AssertionError):
            daemon.inbox("wuhaifeng", timeout=1)


@contextlib.contextmanager
def serving(
    tmp_path: Path, database_url: str, system_key_home: Path
) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """``yizhan serve`` as an operator runs it, with two workers and the demo bureau (every
    account's password PASSWORD); yields the process and its SMTP port."""
    config_file = tmp_path / "yizhan.toml"
    config_file.write_text(
        f'[yizhan]\ndata_dir = "{tmp_path / "var"}"\nsecret = "{"s" * 32}"\n'
        f'[database]\nurl = "{database_url}"\n'
        '[smtp]\nlisten = "127.0.0.1:0"\n[admin]\nlisten = "127.0.0.1:0"\n'
        '[imap]\nlisten = ""\n[processing]\nworkers = 2\n'
        f'[signing]\ngnupg_home = "{short_dir() / "gnupg"}"\n'
    )
    config = load_config(config_file)
    seed_keyring(config, system_key_home)
    env = {**os.environ, "YIZHAN_CONFIG": str(config_file)}
    subprocess.run([sys.executable, "-m", "yizhan", "init"], env=env, check=True)
    ctx = Context.open(config)
    with ctx.sessions.begin() as session:
        import_directory(session, parse_org(demo_org()), actor="test", now=ctx.clock())
        accounts.set_password(
            session,
            "wangfang",
            PASSWORD,
            temporary=False,
            actor="test",
            now=ctx.clock(),
            policy=ctx.login_policy,
        )
        first = accounts.get_account(session, "wangfang")
        for _person, row in accounts.list_accounts(session):
            row.password_hash, row.password_temporary = first.password_hash, False
            row.password_changed_at = first.password_changed_at
    ctx.close()
    serve = subprocess.Popen(
        [sys.executable, "-m", "yizhan", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert serve.stdout is not None
        port = 0
        for line in serve.stdout:
            if found := re.search(r"SMTP on [\d.]+:(\d+)", line):
                port = int(found[1])
                break
        yield serve, port
    finally:
        if serve.poll() is None:
            serve.kill()
        serve.wait()


def test_no_worker_outlives_a_daemon_killed_with_sigkill(
    tmp_path: Path, database_url: str, system_key_home: Path
) -> None:
    with serving(tmp_path, database_url, system_key_home) as (serve, _port):
        # Two Pythons importing Yizhan on a busy machine may take a while to start.
        wait_until(lambda: len(children(serve.pid)) >= 2, timeout=60)
        workers = children(serve.pid)
        serve.kill()
        serve.wait()
        wait_until(lambda: all(gone(pid) for pid in workers), timeout=10)


def peak_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", status)[1]) / 1024  # type: ignore[index]


def test_many_clients_logging_in_at_once_take_little_memory(
    tmp_path: Path, database_url: str, system_key_home: Path
) -> None:
    # Each password check (argon2) takes 64 MiB while it runs: sixteen mail clients logging in
    # at the same moment, as at a bureau's nine o'clock, must not take half a gigabyte.
    with serving(tmp_path, database_url, system_key_home) as (serve, port):
        before = peak_mib(serve.pid)
        start = threading.Barrier(16)

        def log_in(account: str) -> None:
            with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
                start.wait()
                client.login(account, PASSWORD)

        ctx = Context.open(load_config(tmp_path / "yizhan.toml"))
        with ctx.sessions() as session:
            people = [p.account for p, _a in accounts.list_accounts(session)][:16]
        ctx.close()
        threads = [threading.Thread(target=log_in, args=(account,)) for account in people]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert peak_mib(serve.pid) - before < 200
