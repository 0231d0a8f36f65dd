"""`yizhan user add` and `yizhan org import` keep IT's account file: who made each account and
why (mine rules 一(二)), as an approved account application does."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.daemon.test_scheduler import open_report
from yizhan.cli.people import cmd_org_import, cmd_user_add
from yizhan.daemon.config import Config
from yizhan.daemon.context import Context
from yizhan.mailstore.models import AccountRecord, OutboundMessage, Step

ORG = """
[[unit]]
id = "bureau"
name = "遼寧出入境檢驗檢疫局"
kind = "bureau"

[[unit]]
id = "archive"
name = "檔案室"
kind = "department"
parent = "bureau"

[[person]]
account = "lisi"
name = "李四"
unit = "archive"
roles = ["clerk"]
"""


def test_accounts_made_at_the_console_record_who_and_why(
    bureau: Context, config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "yizhan.toml"
    path.write_text(
        f'[yizhan]\ndata_dir = "{config.data_dir}"\nsecret = "{config.secret}"\n'
        f'[database]\nurl = "{config.database_url}"\n'
        f'[signing]\ngnupg_home = "{config.signing.gnupg_home}"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("YIZHAN_CONFIG", str(path))
    cmd_user_add(
        argparse.Namespace(
            account="zhangsan",
            name="張三",
            unit="office",
            roles=["staff"],
            email=None,
            reason="新入職，見人事處通知 2026-12-01",
        )
    )
    org = tmp_path / "org.toml"
    org.write_text(ORG, encoding="utf-8")
    cmd_org_import(argparse.Namespace(file=org, reason=None))
    with bureau.sessions() as session:
        added = session.get(AccountRecord, "zhangsan")
        imported = session.get(AccountRecord, "lisi")
        assert added is not None and imported is not None
        assert added.created_by.startswith("console:") and "新入職" in added.reason
        assert (
            imported.created_by.startswith("console:") and imported.reason == "org import org.toml"
        )


MOVE = """
[[unit]]
id = "bureau"
name = "遼寧出入境檢驗檢疫局"
kind = "bureau"

[[unit]]
id = "quarantine"
name = "衛生檢疫處"
kind = "department"
parent = "bureau"

[[person]]
account = "liangguoqiang"
name = "梁國強"
unit = "quarantine"
roles = ["staff"]
"""


def test_an_import_that_moves_someone_hands_their_waiting_steps_over(
    bureau: Context, config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 第十條: the file moves the inspection head to another unit; his waiting review goes to
    # the leader in charge of the unit he left (it has no other head), with the request mail.
    document_id = open_report(bureau, bureau.clock())
    path = tmp_path / "yizhan.toml"
    path.write_text(
        f'[yizhan]\ndata_dir = "{config.data_dir}"\nsecret = "{config.secret}"\n'
        f'[database]\nurl = "{config.database_url}"\n'
        f'[signing]\ngnupg_home = "{config.signing.gnupg_home}"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("YIZHAN_CONFIG", str(path))
    org = tmp_path / "move.toml"
    org.write_text(MOVE, encoding="utf-8")
    cmd_org_import(argparse.Namespace(file=org, reason=None))
    with bureau.sessions() as session:
        steps = session.scalars(
            select(Step).where(Step.document_id == document_id).order_by(Step.id)
        ).all()
        assert [(s.assignee, s.state) for s in steps] == [
            ("liangguoqiang", "cancelled"),
            ("sunlimin", "waiting"),
        ]
        sent = session.scalars(
            select(OutboundMessage).where(OutboundMessage.document_id == document_id)
        ).all()
        assert any(b"r+" in m.data and b"sunlimin" in m.data for m in sent)
