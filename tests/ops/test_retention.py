"""Retention (第二十三條, 第四條): finished documents, raw mail and Maildir copies past their
periods are deleted by the daily job, never what a legal hold keeps; each run is audited."""

from __future__ import annotations

import datetime as dt
import email
from collections.abc import Iterator
from email import policy
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import TEST_SECRET, make_config, seed_keyring
from tests.daemon.test_flows import Daemon, reply, start_daemon
from yizhan.cli import main
from yizhan.daemon.context import Context
from yizhan.daemon.jobs.table import run_due_jobs
from yizhan.mailstore.db import upgrade
from yizhan.mailstore.models import AuditEntry, Document, Inbound


@pytest.fixture
def kept(tmp_path: Path, database_url: str, system_key_home: Path) -> Iterator[Daemon]:
    config = make_config(
        tmp_path,
        database_url,
        signing={"require_signature": []},
        retention={"archived_days": 30, "raw_days": 30, "maildir_days": 30, "time": "03:30"},
    )
    seed_keyring(config, system_key_home)
    ctx = Context.open(config)
    upgrade(ctx.engine)
    daemon = start_daemon(ctx)
    yield daemon
    daemon.stop()
    ctx.close()


def finished_report(daemon: Daemon, title: str) -> int:
    """An internal report approved by the unit head and the bureau leader: closed."""
    daemon.send("xiewenbin", "qianbao@oa.example", title, "擬購置一台。")
    daemon.inbox("xiewenbin")
    (ask,) = daemon.inbox("liangguoqiang")
    reply(daemon, "liangguoqiang", ask, "同意")
    daemon.inbox("liangguoqiang")
    (ask,) = daemon.inbox("sunlimin")
    reply(daemon, "sunlimin", ask, "同意")
    daemon.inbox("sunlimin")
    daemon.until("xiewenbin", "closed")
    return int(ask["X-Yizhan-Doc"])


def doc_of(path: Path) -> str | None:
    mail = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    return mail["X-Yizhan-Doc"]


def test_retention_deletes_what_is_old_and_keeps_what_is_held(
    kept: Daemon,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ctx = kept.ctx
    held = finished_report(kept, "甲：須留存的請示")
    gone = finished_report(kept, "乙：普通請示")
    kept.send("xiewenbin", "qianbao@oa.example", "丙：未辦結", "擬購置一台。")
    (open_ask,) = kept.inbox("liangguoqiang")
    still_open = int(open_ask["X-Yizhan-Doc"])
    kept.inbox("xiewenbin")
    kept.stop()
    with ctx.sessions() as session:
        sources = {
            d.id: session.get(Inbound, d.source_inbound).path  # type: ignore[union-attr]
            for d in session.scalars(select(Document))
        }

    # The legal hold is placed at the console, as IT would.
    config = tmp_path / "yizhan.toml"
    c = ctx.config
    config.write_text(
        f'[yizhan]\ndata_dir = "{c.data_dir}"\nsecret = "{TEST_SECRET}"\n'
        f'[database]\nurl = "{c.database_url}"\n[imap]\nlisten = ""\n'
        f'[signing]\ngnupg_home = "{c.signing.gnupg_home}"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("YIZHAN_CONFIG", str(config))
    assert main(["doc", "hold", str(held), "--reason", "審計調閱"]) == 0
    assert "legal hold" in capsys.readouterr().out
    assert main(["doc", "hold", "999999"]) == 1

    maildirs = sorted(c.maildir_root.glob("*/new/*"))
    assert any(doc_of(p) == str(held) for p in maildirs)
    assert any(doc_of(p) == str(gone) for p in maildirs)

    # Twenty days on nothing is old enough; forty days on, at 03:30, the job deletes.
    now = dt.datetime.now(dt.UTC)
    run_due_jobs(ctx, (now + dt.timedelta(days=20)).replace(hour=0))
    assert len(sorted(c.maildir_root.glob("*/new/*"))) == len(maildirs)
    later = (now + dt.timedelta(days=40)).astimezone(c.tzinfo).replace(hour=4, minute=0)
    run_due_jobs(ctx, later)

    with ctx.sessions() as session:
        left = set(session.scalars(select(Document.id)))
        (entry,) = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "retention.applied")
        ).all()
        holds = session.scalars(
            select(AuditEntry.action).where(AuditEntry.action == "document.hold")
        ).all()
    assert left == {held, still_open}
    assert entry.detail["documents"] == 1 and entry.detail["document_ids"] == [gone]
    assert entry.detail["steps"] >= 2 and entry.detail["held"] == 1
    assert entry.detail["maildir_files"] > 0 and entry.detail["raw_files"] > 0
    assert holds == ["document.hold"]
    assert not (ctx.raw.root / sources[gone]).exists()
    assert (ctx.raw.root / sources[held]).exists()
    assert (ctx.raw.root / sources[still_open]).exists()
    remaining = sorted(c.maildir_root.glob("*/new/*"))
    assert remaining and {doc_of(p) for p in remaining} == {str(held)}

    # Released, the held document goes at the next day's run.
    assert main(["doc", "hold", str(held), "--release"]) == 0
    run_due_jobs(ctx, later + dt.timedelta(days=1))
    with ctx.sessions() as session:
        assert set(session.scalars(select(Document.id))) == {still_open}
