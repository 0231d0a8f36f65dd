"""Tests for `yizhan audit verify`, run as a program the way an administrator runs it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.conftest import backend, fresh_database
from tests.test_cli import yizhan
from yizhan.mailstore.db import make_engine

ORG = (
    '[[unit]]\nid = "bureau"\nname = "局"\nkind = "bureau"\n'
    '[[unit]]\nid = "office"\nname = "辦公室"\nkind = "office"\nparent = "bureau"\n'
    '[[person]]\naccount = "lijun"\nname = "李軍"\nunit = "bureau"\nroles = ["bureau_leader"]\n'
    '[[person]]\naccount = "wangfang"\nname = "王芳"\nunit = "office"\nroles = ["clerk"]\n'
)


def instance(root: Path, url: str) -> Path:
    """`yizhan init` of a new instance in ``root`` (it makes its own secret); its config."""
    path = root / "yizhan.toml"
    root.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f'[yizhan]\ndata_dir = "{root / "var"}"\n[database]\nurl = "{url}"\n'
        '[smtp]\nlisten = "127.0.0.1:0"\n',
        encoding="utf-8",
    )
    result = yizhan(path, "init")
    assert result.returncode == 0, result.stderr
    return path


@pytest.fixture
def bureau_instance(tmp_path: Path, database_url: str) -> Path:
    """An initialised instance with a small bureau imported (audit rows written by the CLI)."""
    config = instance(tmp_path / "a", database_url)
    org = tmp_path / "org.toml"
    org.write_text(ORG, encoding="utf-8")
    assert yizhan(config, "org", "import", str(org)).returncode == 0
    assert yizhan(config, "user", "suspend", "wangfang").returncode == 0
    return config


@pytest.fixture
def other_kind_url(tmp_path: Path) -> Iterator[str]:
    """An empty database of the other kind than the one under test."""
    saved = os.environ.get("YIZHAN_TEST_DB")
    os.environ["YIZHAN_TEST_DB"] = "sqlite" if backend() == "postgresql" else "postgresql"
    try:
        with fresh_database(tmp_path / "b" / "var", "restored") as url:
            os.environ["YIZHAN_TEST_DB"] = saved or "sqlite"
            yield url
    finally:
        if saved is None:
            os.environ.pop("YIZHAN_TEST_DB", None)
        else:
            os.environ["YIZHAN_TEST_DB"] = saved


def test_verify_restore_on_the_other_database_and_an_edited_row(
    bureau_instance: Path, database_url: str, tmp_path: Path, other_kind_url: str
) -> None:
    # IT checks the trail (whole), backs it up and moves the instance to the other database
    # kind, into an instance `yizhan init` made with a secret of its own: the restored trail
    # verifies, and so does the chain after it. Then someone with database access drops the
    # triggers of the first instance and edits one row: verify exits 1 and names it.
    ok = yizhan(bureau_instance, "audit", "verify")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("audit trail verified: ")
    target = tmp_path / "backup"
    made = yizhan(bureau_instance, "backup", str(target))
    assert made.returncode == 0, made.stderr
    assert (target / "audit-head.json").is_file()
    anchored = yizhan(bureau_instance, "audit", "verify", "--backup", str(target))
    assert anchored.returncode == 0, anchored.stdout
    other = instance(tmp_path / "b", other_kind_url)
    restored = yizhan(other, "restore", str(target))
    assert restored.returncode == 0, restored.stderr
    assert "resealed" in restored.stderr
    assert yizhan(other, "user", "activate", "wangfang").returncode == 0
    verified = yizhan(other, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr

    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("DROP TRIGGER audit_append_only ON audit"))
            else:
                conn.execute(text("DROP TRIGGER audit_no_update"))
            victim = conn.execute(
                text("SELECT id, seq FROM audit WHERE action = 'org.import' ORDER BY seq LIMIT 1")
            )
            row_id, seq = victim.one()
            conn.execute(text("UPDATE audit SET actor = 'someone' WHERE id = :id"), {"id": row_id})
    finally:
        engine.dispose()
    broken = yizhan(bureau_instance, "audit", "verify")
    assert broken.returncode == 1
    assert broken.stderr.strip().splitlines() == [
        f"yizhan audit verify: edited: audit row {row_id} (seq {seq}): its contents do not "
        "match its seal"
    ]
    assert f"edited: audit row {row_id} " in broken.stdout
