"""Backs up and restores a whole instance: every table as JSON lines, plus its files.

第四條(二)3: data are backed up and can be restored. The backup is logical (one ``.jsonl`` file
per table, in dependency order), so it restores onto SQLite or PostgreSQL alike, and so moves
an instance from the embedded default to production. Raw messages and the GnuPG home are
copied as files. A ``manifest.json`` written last marks the backup complete.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, LargeBinary, Table, func, insert, select, text

from yizhan.mailstore.models import Base, UtcDateTime

FORMAT = 1
MANIFEST = "manifest.json"
#: Files of the data dir that travel with the database (the rest is rebuilt or per host).
FILE_TREES = ("mail", "maildirs")


class BackupError(Exception):
    """A backup cannot be made or restored; the message says why."""


def backup(engine: Engine, data_dir: Path, gnupg_home: Path, target: Path) -> dict[str, int]:
    """Write a complete backup into the empty or new directory ``target``; returns row counts."""
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty; give a new directory")
    (target / "tables").mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    # One repeatable-read snapshot, so that the tables agree with one another.
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        for table in Base.metadata.sorted_tables:
            path = target / "tables" / f"{table.name}.jsonl"
            with path.open("w", encoding="utf-8") as out:
                n = 0
                for row in conn.execute(select(table).order_by(*table.primary_key.columns)):
                    out.write(json.dumps(_encode(table, row._mapping), ensure_ascii=False))
                    out.write("\n")
                    n += 1
                out.flush()
                os.fsync(out.fileno())
            counts[table.name] = n
        conn.rollback()
    for tree in FILE_TREES:
        if (data_dir / tree).is_dir():
            shutil.copytree(data_dir / tree, target / "files" / tree)
    if gnupg_home.is_dir():
        shutil.copytree(
            gnupg_home,
            target / "gnupg",
            ignore=shutil.ignore_patterns("S.*", "*.lock", ".#*", "random_seed"),
        )
    manifest = {
        "format": FORMAT,
        "made_at": dt.datetime.now(dt.UTC).isoformat(),
        "tables": counts,
        "alembic": _revision(engine),
    }
    (target / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return counts


def restore(engine: Engine, data_dir: Path, gnupg_home: Path, source: Path) -> dict[str, int]:
    """Load a backup into a freshly initialised, empty instance; returns row counts."""
    try:
        manifest = json.loads((source / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BackupError(f"{source} has no {MANIFEST}: not a complete Yizhan backup") from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(f"backup format {manifest.get('format')!r}; this Yizhan reads {FORMAT}")
    if manifest.get("alembic") != _revision(engine):
        raise BackupError(
            f"the backup is of schema {manifest.get('alembic')}, this database is at "
            f"{_revision(engine)}; restore with the Yizhan version that made it"
        )
    counts: dict[str, int] = {}
    with engine.begin() as conn:
        for table in Base.metadata.sorted_tables:
            if conn.execute(select(func.count()).select_from(table)).scalar_one():
                raise BackupError(f"table {table.name} is not empty; restore into a new instance")
        for table in Base.metadata.sorted_tables:
            path = source / "tables" / f"{table.name}.jsonl"
            rows = [
                _decode(table, json.loads(line))
                for line in path.read_text(encoding="utf-8").splitlines()
                if line
            ]
            for start in range(0, len(rows), 1000):
                conn.execute(insert(table), rows[start : start + 1000])
            counts[table.name] = len(rows)
        if conn.dialect.name == "postgresql":
            _reset_sequences(conn)
    for tree in FILE_TREES:
        if (source / "files" / tree).is_dir():
            shutil.copytree(source / "files" / tree, data_dir / tree, dirs_exist_ok=True)
    if (source / "gnupg").is_dir():
        gnupg_home.mkdir(parents=True, exist_ok=True, mode=0o700)
        shutil.copytree(source / "gnupg", gnupg_home, dirs_exist_ok=True)
    return counts


def _revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        value = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return str(value) if value is not None else None


def _encode(table: Table, row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column in table.columns:
        value = row[column.name]
        if value is None:
            out[column.name] = None
        elif isinstance(column.type, LargeBinary):
            out[column.name] = base64.b64encode(value).decode("ascii")
        elif isinstance(value, dt.datetime):
            out[column.name] = value.isoformat()
        else:
            out[column.name] = value
    return out


def _decode(table: Table, data: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    for column in table.columns:
        value = out.get(column.name)
        if value is None:
            continue
        if isinstance(column.type, LargeBinary):
            out[column.name] = base64.b64decode(value)
        elif isinstance(column.type, UtcDateTime):
            out[column.name] = dt.datetime.fromisoformat(value)
    return out


def _reset_sequences(conn: Any) -> None:
    # Rows came with their ids; the sequences must continue after the largest.
    for table in Base.metadata.sorted_tables:
        for column in table.primary_key.columns:
            if column.autoincrement is True:
                conn.execute(
                    text(
                        "SELECT setval(pg_get_serial_sequence(:t, :c), "
                        f"COALESCE((SELECT MAX({column.name}) FROM {table.name}), 0) + 1, false)"
                    ),
                    {"t": table.name, "c": column.name},
                )
