"""Backups (第四條(二)3): taken while mail flows, checked file by file against their manifest,
restored whole on the other database kind, made every night and thinned, failures told to IT."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from email import policy
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, select

from tests.conftest import backend, demo_org, fresh_database, make_config, seed_keyring
from tests.daemon.test_flows import Daemon, start_daemon
from tests.ops.sample import make_work
from yizhan.daemon.config import Config
from yizhan.daemon.context import Context
from yizhan.daemon.jobs.table import run_due_jobs
from yizhan.daemon.outbound import OutboundWorker
from yizhan.mailstore.backup import BackupError, backup, restore
from yizhan.mailstore.db import upgrade
from yizhan.mailstore.directory import import_directory
from yizhan.mailstore.models import AuditEntry, Base, Delivery, Inbound
from yizhan.routing.directory import parse_org

SHANGHAI = ZoneInfo("Asia/Shanghai")


@contextlib.contextmanager
def other_kind(root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Context]:
    """A new, migrated instance on the other database kind than the one under test."""
    with monkeypatch.context() as patch:
        patch.setenv("YIZHAN_TEST_DB", "sqlite" if backend() == "postgresql" else "postgresql")
        with fresh_database(root, "restored") as url:
            ctx = Context.open(make_config(root, url))
            try:
                upgrade(ctx.engine)
                yield ctx
            finally:
                ctx.close()


def rows(engine: Engine) -> dict[str, dict[tuple[Any, ...], dict[str, Any]]]:
    """Every row of every table, by table and primary key."""
    out: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            key = list(table.primary_key.columns)
            out[table.name] = {
                tuple(r[c.name] for c in key): dict(r)
                for r in conn.execute(select(table)).mappings()
            }
    return out


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def settle(ctx: Context) -> None:
    """Wait until the daemon has processed and delivered all it accepted."""
    deadline = dt.datetime.now() + dt.timedelta(seconds=60)
    while dt.datetime.now() < deadline:
        with ctx.sessions() as session:
            waiting = session.scalar(
                select(func.count()).select_from(Inbound).where(Inbound.state == "accepted")
            ) or session.scalar(
                select(func.count()).select_from(Delivery).where(Delivery.state == "queued")
            )
        if not waiting:
            return
        threading.Event().wait(0.2)
    raise AssertionError("the daemon did not settle")


@pytest.fixture
def running(tmp_path: Path, database_url: str, system_key_home: Path) -> Iterator[Daemon]:
    config = make_config(tmp_path, database_url, signing={"require_signature": []})
    seed_keyring(config, system_key_home)
    ctx = Context.open(config)
    upgrade(ctx.engine)
    daemon = start_daemon(ctx)
    yield daemon
    daemon.stop()
    ctx.close()


def test_backup_while_mail_flows_restores_whole_on_the_other_database(
    running: Daemon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = running.ctx
    make_work(running)
    stop, failures = threading.Event(), []

    def flow() -> None:
        try:
            while not stop.is_set():
                make_work(running)
        except Exception as exc:  # reported below
            failures.append(exc)

    sender = threading.Thread(target=flow)
    sender.start()
    threading.Event().wait(1.0)
    during = tmp_path / "during"
    try:
        backup(ctx.engine, ctx.config.data_dir, ctx.config.signing.gnupg_home, during)
    finally:
        stop.set()
        sender.join(120)
    assert not failures, failures
    settle(ctx)
    running.stop()
    after = tmp_path / "after"
    backup(ctx.engine, ctx.config.data_dir, ctx.config.signing.gnupg_home, after)
    source_rows = rows(ctx.engine)
    source_mail = files(ctx.config.data_dir / "mail")
    source_maildirs = files(ctx.config.maildir_root)

    # The backup taken mid-flow is one consistent moment: it restores on the other database
    # kind, its audit trail verifies there, and every row and file it holds is the source's.
    with other_kind(tmp_path / "one", monkeypatch) as other:
        assert other.audit_key == ctx.audit_key
        restore(
            other.engine,
            other.config.data_dir,
            other.config.signing.gnupg_home,
            during,
            audit_key=other.audit_key,
        )
        restored = rows(other.engine)
        assert restored["documents"] and restored["audit"]
        for name in ("audit", "inbound", "outbound_messages", "people"):
            for key, row in restored[name].items():
                assert source_rows[name][key] == row, f"{name} {key}"
        for path, data in files(other.config.maildir_root).items():
            assert source_maildirs[path] == data

    # After the flow stopped, a restore is the source, row for row and file for file.
    with other_kind(tmp_path / "two", monkeypatch) as other:
        restore(
            other.engine,
            other.config.data_dir,
            other.config.signing.gnupg_home,
            after,
            audit_key=other.audit_key,  # type: ignore[arg-type]
        )
        restored = rows(other.engine)
        for name in ("documents", "steps", "inbound", "outbound_messages", "audit"):
            assert len(restored[name]) > 0, name
        for name, table in source_rows.items():
            assert restored[name] == table, name
        assert files(other.config.maildir_root) == source_maildirs
        assert files(other.config.data_dir / "mail") == source_mail
        with other.sessions() as session:
            assert session.scalar(select(func.count()).select_from(AuditEntry)) == len(
                source_rows["audit"]
            )


def yizhan(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "yizhan", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "YIZHAN_CONFIG": str(config)},
        timeout=120,
        check=False,
    )


def test_backup_verify_finds_damaged_and_partial_copies(bureau: Context, tmp_path: Path) -> None:
    config = tmp_path / "yizhan.toml"
    c = bureau.config
    config.write_text(
        f'[yizhan]\ndata_dir = "{c.data_dir}"\nsecret = "{c.secret}"\n'
        f'[database]\nurl = "{c.database_url}"\n[signing]\ngnupg_home = "{c.signing.gnupg_home}"\n',
        encoding="utf-8",
    )
    bureau.raw.write("inbound", b"Subject: x\r\n\r\nbody\r\n", bureau.clock())
    target = tmp_path / "b"
    made = yizhan(config, "backup", str(target))
    assert made.returncode == 0, made.stderr
    checked = yizhan(config, "backup", "verify", str(target))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "OK" in checked.stdout

    # One byte changed in the people table: damaged, named, and not restored from.
    people = target / "tables" / "people.jsonl"
    original = people.read_bytes()
    people.write_bytes(original.replace(b"wangfang", b"wangfanG", 1))
    checked = yizhan(config, "backup", "verify", str(target))
    assert checked.returncode == 1
    assert "tables/people.jsonl: damaged" in checked.stdout
    with pytest.raises(BackupError, match=r"people\.jsonl"):
        restore(bureau.engine, c.data_dir, c.signing.gnupg_home, target, audit_key=b"k" * 32)
    people.write_bytes(original)

    # A copy cut short: a raw mail file missing, then the manifest itself.
    raw = next((target / "files" / "mail").rglob("*.eml"), None) or next(
        p for p in (target / "files").rglob("*") if p.is_file()
    )
    raw.unlink()
    checked = yizhan(config, "backup", "verify", str(target))
    assert checked.returncode == 1 and "missing (a partial copy)" in checked.stdout
    (target / "manifest.json").unlink()
    checked = yizhan(config, "backup", "verify", str(target))
    assert checked.returncode == 1 and "partial backup" in checked.stdout


@pytest.fixture
def nightly(tmp_path: Path, database_url: str, system_key_home: Path) -> Iterator[Context]:
    config = make_config(
        tmp_path,
        database_url,
        backup={
            "directory": str(tmp_path / "backups"),
            "time": "02:30",
            "keep_daily": 3,
            "keep_weekly": 2,
            "keep_monthly": 2,
        },
    )
    yield from _instance(config, system_key_home)


def _instance(config: Config, system_key_home: Path) -> Iterator[Context]:
    seed_keyring(config, system_key_home)
    ctx = Context.open(config)
    upgrade(ctx.engine)
    ctx.raw.prepare()
    with ctx.sessions.begin() as session:
        import_directory(session, parse_org(demo_org()), actor="test", now=ctx.clock())
    yield ctx
    ctx.close()


def test_nightly_backup_keeps_daily_weekly_and_monthly_copies(nightly: Context) -> None:
    root = nightly.config.backup.directory
    assert root is not None
    # Every night since September backed up, and one cut off by a crash.
    day = dt.date(2026, 9, 1)
    while day < dt.date(2026, 12, 6):
        old = root / f"yizhan-{day:%Y%m%d}-0230"
        old.mkdir(parents=True)
        (old / "manifest.json").write_text("{}", encoding="utf-8")
        day += dt.timedelta(days=1)
    (root / "yizhan-20261205-0231").mkdir()

    before = dt.datetime(2026, 12, 6, 2, 0, tzinfo=SHANGHAI)
    run_due_jobs(nightly, before)
    assert not (root / "yizhan-20261206-0230").exists()  # not yet time

    run_due_jobs(nightly, dt.datetime(2026, 12, 6, 3, 0, tzinfo=SHANGHAI))
    kept = sorted(p.name for p in root.iterdir())
    # Sunday 6 December: the last 3 days; the newest of this ISO week and the last;
    # the newest of December and of November.
    assert kept == [
        "yizhan-20261129-0230",
        "yizhan-20261130-0230",
        "yizhan-20261204-0230",
        "yizhan-20261205-0230",
        "yizhan-20261206-0230",
    ]
    checked = yizhan_verify(root / "yizhan-20261206-0230")
    assert checked.returncode == 0, checked.stdout
    with nightly.sessions() as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "backup.nightly")
        ).one()
    assert len(entry.detail["removed"]) == 96 - 4 + 1  # 1 Sep to 5 Dec, less 4 kept, 1 partial

    # Later the same night, another daemon's tick: no second backup.
    run_due_jobs(nightly, dt.datetime(2026, 12, 6, 4, 0, tzinfo=SHANGHAI))
    assert len(list(root.iterdir())) == 5


def yizhan_verify(target: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "yizhan", "backup", "verify", str(target)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_failed_nightly_backup_is_told_to_it(
    tmp_path: Path, database_url: str, system_key_home: Path
) -> None:
    # The backup disk is not mounted where the config says: a file stands in the way.
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("", encoding="utf-8")
    config = make_config(tmp_path, database_url, backup={"directory": str(blocker)})
    for ctx in _instance(config, system_key_home):
        queued = run_due_jobs(ctx, dt.datetime(2026, 12, 6, 3, 0, tzinfo=SHANGHAI))
        assert queued["nightly_backup"] == 1  # to the IT department's head
        asyncio.run(OutboundWorker(ctx).run_until_empty())
        (path,) = (ctx.config.maildir_root / "wuhaifeng" / "new").iterdir()
        mail = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        body = mail.get_body(("plain",))
        assert body is not None and "yizhan-20261206-0230" in body.get_content()
        assert "not-a-directory" in body.get_content()
        with ctx.sessions() as session:
            actions = session.scalars(select(AuditEntry.action)).all()
        assert "backup.failed" in actions
