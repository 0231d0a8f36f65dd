"""Upgrades: a database left at any earlier revision, with a bureau's work in it, is brought up
to this version by `yizhan migrate`, keeps every row, and works; until then nothing runs on it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Engine, MetaData, Table, func, insert, select, text, update

from tests.conftest import TEST_SECRET, fresh_database, make_config, seed_keyring
from tests.daemon.test_flows import start_daemon
from tests.ops.sample import make_work
from yizhan.cli import main
from yizhan.daemon.context import Context
from yizhan.mailstore.backup import _decode, backup
from yizhan.mailstore.db import (
    SchemaMismatch,
    alembic_config,
    make_engine,
    packaged_head,
    require_current_schema,
    upgrade,
)
from yizhan.mailstore.models import Base


def _revisions() -> list[str]:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(resources.files("yizhan.mailstore") / "migrations"))
    scripts = ScriptDirectory.from_config(cfg)
    return [rev.revision for rev in reversed(list(scripts.walk_revisions()))]


REVISIONS = _revisions()


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory, system_key_home: Path) -> Iterator[Path]:
    """A backup (one JSON-lines file a table) of a bureau that has done some work."""
    tmp = tmp_path_factory.mktemp("sample")
    with fresh_database(tmp, "sample") as url:
        config = make_config(tmp, url, signing={"require_signature": []})
        seed_keyring(config, system_key_home)
        ctx = Context.open(config)
        upgrade(ctx.engine)
        daemon = start_daemon(ctx)
        try:
            make_work(daemon)
        finally:
            daemon.stop()
        backup(ctx.engine, config.data_dir, config.signing.gnupg_home, tmp / "dump")
        ctx.close()
    yield tmp / "dump"


def _rows(dump: Path, table: Table) -> list[dict[str, Any]]:
    lines = (dump / "tables" / f"{table.name}.jsonl").read_text(encoding="utf-8").splitlines()
    return [_decode(table, json.loads(line)) for line in lines if line]


def _load_at_old_revision(engine: Engine, dump: Path) -> dict[str, list[dict[str, Any]]]:
    """Insert the sample into a database at an old revision: every table and column it has.

    Returns what was inserted, by table. Columns come with the newest code's types (the old
    ones store the same values); a table a migration already filled gets its rows updated.
    """
    old = MetaData()
    old.reflect(engine)
    loaded: dict[str, list[dict[str, Any]]] = {}
    with engine.begin() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name not in old.tables:
                continue
            present = old.tables[table.name].columns
            shaped = Table(
                table.name,
                MetaData(),
                *(
                    Column(c.name, table.c[c.name].type if c.name in table.c else c.type)
                    for c in present
                ),
            )
            rows = [{k: v for k, v in r.items() if k in present} for r in _rows(dump, table)]
            if not rows:
                continue
            key = [c.name for c in table.primary_key.columns]
            if conn.execute(select(func.count()).select_from(shaped)).scalar_one():
                for row in rows:
                    where = [shaped.c[k] == row[k] for k in key]
                    conn.execute(update(shaped).where(*where).values(row))
            else:
                conn.execute(insert(shaped), rows)
            loaded[table.name] = rows
        if conn.dialect.name == "postgresql":
            for name in loaded:
                for column in old.tables[name].primary_key.columns:
                    if column.autoincrement is True or column.server_default is not None:
                        conn.execute(
                            text(
                                "SELECT setval(pg_get_serial_sequence(:t, :c), "
                                f"(SELECT MAX({column.name}) FROM {name}))"
                                " WHERE pg_get_serial_sequence(:t, :c) IS NOT NULL"
                            ),
                            {"t": name, "c": column.name},
                        )
    return loaded


def _yizhan(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, config: Path, *args: str
) -> tuple[int, str]:
    monkeypatch.setenv("YIZHAN_CONFIG", str(config))
    capsys.readouterr()
    status = main(list(args))
    out = capsys.readouterr()
    return status, out.out + out.err


@pytest.mark.parametrize("revision", REVISIONS[:-1])
def test_migrate_from_each_earlier_revision_keeps_the_data(
    revision: str,
    sample: Path,
    tmp_path: Path,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An instance installed at `revision` has done work; a new version is installed over it.
    engine = make_engine(database_url)
    command.upgrade(alembic_config(engine), revision)
    loaded = _load_at_old_revision(engine, sample)
    assert loaded.get("documents") and loaded.get("audit") and loaded.get("people")
    config = tmp_path / "yizhan.toml"
    config.write_text(
        f'[yizhan]\ndata_dir = "{tmp_path / "var"}"\nsecret = "{TEST_SECRET}"\n'
        f'[database]\nurl = "{database_url}"\n[imap]\nlisten = ""\n',
        encoding="utf-8",
    )

    # Nothing runs on the old schema: the daemon and the verbs name the command to run.
    with pytest.raises(SchemaMismatch, match="yizhan migrate"):
        require_current_schema(engine)
    status, said = _yizhan(capsys, monkeypatch, config, "doc", "show", "1", "--json")
    assert status == 1 and "`yizhan migrate`" in said

    status, said = _yizhan(capsys, monkeypatch, config, "migrate", "--dry-run")
    assert status == 0, said
    assert f"schema at revision {revision}" in said and "nothing changed" in said
    assert REVISIONS[-1] in said
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == revision

    status, said = _yizhan(capsys, monkeypatch, config, "migrate")
    assert status == 0, said
    require_current_schema(engine)
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
        assert diff == []
        # Every row of the old tables is there, with the values it had.
        for name, rows in loaded.items():
            table = Base.metadata.tables[name]
            now = {
                tuple(r[c.name] for c in table.primary_key.columns): r
                for r in (dict(m) for m in conn.execute(select(table)).mappings())
            }
            for row in rows:
                pk = tuple(row[c.name] for c in table.primary_key.columns)
                assert pk in now, f"{name} row {pk} lost"
                changed = {k for k, v in row.items() if now[pk][k] != v}
                if name == "audit_head":
                    changed.clear()  # the head moves on when the migration is audited
                assert not changed, f"{name} row {pk}: {changed} changed"

    # The upgraded instance works: its trail verifies, its documents show.
    status, said = _yizhan(capsys, monkeypatch, config, "audit", "verify")
    assert status == 0, said
    status, said = _yizhan(capsys, monkeypatch, config, "doc", "show", "1", "--json")
    assert status == 0, said
    assert json.loads(said)["id"] == 1
    status, said = _yizhan(capsys, monkeypatch, config, "migrate")
    assert status == 0 and "up to date" in said
    engine.dispose()


def test_a_newer_schema_stops_the_daemon(ctx: Context) -> None:
    # A database migrated by a newer Yizhan: an older daemon must not touch it.
    with ctx.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(SchemaMismatch, match="newer than this Yizhan"):
        require_current_schema(ctx.engine)


def test_the_daemons_schema_check_knows_the_newest_migration(ctx: Context) -> None:
    # The daemon checks its schema at every start from the scripts' revision lines, without
    # Alembic (issue 16: memory): it must name the head Alembic names, and a database at that
    # head passes.
    scripts = ScriptDirectory.from_config(alembic_config(ctx.engine))
    assert packaged_head() == scripts.get_current_head() == REVISIONS[-1]
    require_current_schema(ctx.engine)


def test_the_search_index_is_moved_to_one_posting_a_gram_and_document(database_url: str) -> None:
    # An index built before 0026 (a row a gram, document and field) is carried over with its
    # counts by field, so that nothing has to be indexed again after the upgrade.
    engine = make_engine(database_url)
    command.upgrade(alembic_config(engine), "0025")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO search_grams (gram, document_id, field, count) VALUES "
                "('检疫', 7, 'title', 1), ('检疫', 7, 'body', 3), ('检疫', 7, 'attachment', 2), "
                "('公告', 7, 'body', 1), ('检疫', 9, 'attachment', 5)"
            )
        )
    command.upgrade(alembic_config(engine), "head")
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT gram, document_id, in_title, in_body, in_attachment "
                "FROM search_postings ORDER BY gram, document_id"
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("公告", 7, 0, 1, 0),
        ("检疫", 7, 1, 3, 2),
        ("检疫", 9, 0, 0, 5),
    ]
    engine.dispose()
