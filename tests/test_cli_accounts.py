"""`yizhan user add` and `yizhan org import` keep IT's account file: who made each account and
why (mine rules 一(二)), as an approved account application does."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from yizhan.cli.people import cmd_org_import, cmd_user_add
from yizhan.daemon.config import Config
from yizhan.daemon.context import Context
from yizhan.mailstore.models import AccountRecord

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
