"""Backs up and restores a whole instance: every table as JSON lines, plus its files.

第四條(二)3: data are backed up and can be restored. The backup is logical (one ``.jsonl`` file
per table, in dependency order), so it restores onto SQLite or PostgreSQL alike, and so moves
an instance from the embedded default to production. Raw messages and the GnuPG home are
copied as files. A ``manifest.json`` written last marks the backup complete; it holds the SHA-256
of every file, against which ``yizhan backup verify`` and ``restore`` check a copy
(``backup_check.py``).

The audit chain's head at the moment of the backup is written to ``audit-head.json`` (and the
manifest): an anchor kept outside the database, so that ``yizhan audit verify --backup DIR``
catches a trail cut back to an older head, and ``restore`` checks that the trail it loads is the
one that was backed up. A restore under the same ``yizhan.secret`` verifies every seal before it
commits; under another secret the old seals cannot be checked, so it checks the links and
reseals the trail under the new key, and records that it did.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    LargeBinary,
    Table,
    delete,
    func,
    insert,
    select,
    text,
    update,
)

from yizhan.mailstore import auditchain
from yizhan.mailstore.audit import SYSTEM
from yizhan.mailstore.auditchain import AUDIT, GENESIS, HEAD, ChainRow, key_id
from yizhan.mailstore.auditverify import Anchor, verify
from yizhan.mailstore.backup_check import (
    AUDIT_HEAD,
    MANIFEST,
    Progress,
    file_digests,
    no_progress,
    verify_backup,
)
from yizhan.mailstore.db import SNAPSHOT
from yizhan.mailstore.models import Base, DirectoryVersion, UtcDateTime

log = logging.getLogger(__name__)

FORMAT = 1
#: Files of the data dir that travel with the database (the rest is rebuilt or per host).
FILE_TREES = ("mail", "maildirs", "spool")
# Written by the migration in a new instance, as the chain head is: the backup's replaces it.
_DIRECTORY_VERSION: Table = DirectoryVersion.__table__  # type: ignore[assignment]


class BackupError(Exception):
    """A backup cannot be made or restored; the message says why."""


def backup(
    engine: Engine,
    data_dir: Path,
    gnupg_home: Path,
    target: Path,
    progress: Progress = no_progress,
) -> dict[str, int]:
    """Write a complete backup into the empty or new directory ``target``; returns row counts.

    Mail keeps flowing meanwhile: the tables are read in one snapshot (PostgreSQL's repeatable
    read; on SQLite a deferred read transaction, which in WAL mode holds up no writer).
    """
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty; give a new directory")
    (target / "tables").mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    # One repeatable-read snapshot, so that the tables agree with one another.
    tables = Base.metadata.sorted_tables
    with engine.connect().execution_options(**{SNAPSHOT: True}) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        for done, table in enumerate(tables, start=1):
            progress(done, len(tables), f"table {table.name}")
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
        head = auditchain.read_head(conn)
        conn.rollback()
    audit_head = {"seq": head.seq, "hash": head.hash, "seal": head.seal, "key_id": head.key_id}
    with (target / AUDIT_HEAD).open("w", encoding="utf-8") as out:
        json.dump(audit_head, out, indent=1)
        out.flush()
        os.fsync(out.fileno())
    for tree in FILE_TREES:
        if (data_dir / tree).is_dir():
            # What is in a tmp/ (the raw store's, each Maildir's) is a write under way: not yet
            # acknowledged nor delivered, and renamed or gone a moment later.
            shutil.copytree(data_dir / tree, target / "files" / tree, ignore=_writes_under_way)
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
        "audit_head": audit_head,
        "files": file_digests(target, progress),
    }
    # Written whole under another name, then renamed: a manifest is there complete or not at all.
    partial = target / (MANIFEST + ".tmp")
    with partial.open("w", encoding="utf-8") as out:
        json.dump(manifest, out, indent=1)
        out.flush()
        os.fsync(out.fileno())
    partial.rename(target / MANIFEST)
    return counts


def restore(
    engine: Engine, data_dir: Path, gnupg_home: Path, source: Path, *, audit_key: bytes
) -> dict[str, int]:
    """Load a backup into a freshly initialised, empty instance; returns row counts.

    The audit trail must verify under ``audit_key`` against the backup's head, or be resealed
    under it when the backup was made under another secret; else nothing is restored.
    """
    checked = verify_backup(source)
    if checked.unchecked:
        log.warning("restoring %s unchecked: %s", source, checked.problems[0])
    elif not checked.ok:
        raise BackupError(
            f"{source} is not a whole backup ({checked.problems[0]}); nothing was restored"
        )
    manifest = checked.manifest
    if manifest.get("format") != FORMAT:
        raise BackupError(f"backup format {manifest.get('format')!r}; this Yizhan reads {FORMAT}")
    if manifest.get("alembic") != _revision(engine):
        raise BackupError(
            f"the backup is of schema {manifest.get('alembic')}, this database is at "
            f"{_revision(engine)}; restore with the Yizhan version that made it"
        )
    anchor = read_anchor(source)
    counts: dict[str, int] = {}
    with engine.begin() as conn:
        for table in Base.metadata.sorted_tables:
            # A new instance's chain head and directory version are there from the start;
            # they are replaced below.
            if (
                table not in (HEAD, _DIRECTORY_VERSION)
                and conn.execute(select(func.count()).select_from(table)).scalar_one()
            ):
                raise BackupError(f"table {table.name} is not empty; restore into a new instance")
        heads = _load(source, HEAD)
        if len(heads) != 1:
            raise BackupError(f"the backup's {HEAD.name} table has {len(heads)} rows, not one")
        head = heads[0]
        old_head: dict[str, Any] | None = None
        for table in Base.metadata.sorted_tables:
            rows = _load(source, table)
            if table is AUDIT and head["key_id"] not in (None, key_id(audit_key)):
                old_head = head
                head = _reseal(rows, head, anchor, audit_key)
            if table is _DIRECTORY_VERSION:
                conn.execute(delete(table))
            if table is not HEAD:
                for start in range(0, len(rows), 1000):
                    conn.execute(insert(table), rows[start : start + 1000])
            counts[table.name] = len(rows)
        if conn.dialect.name == "postgresql":
            _reset_sequences(conn)
        conn.execute(update(HEAD).values({k: v for k, v in head.items() if k != "id"}))
        if old_head is not None:
            _record_reseal(conn, audit_key, old_head)
        else:
            verdict = verify(conn, audit_key, anchor=anchor)
            if not verdict.ok:
                first = verdict.problems[0].line() if verdict.problems else verdict.summary()
                raise BackupError(f"the backup's audit trail does not verify: {first}")
    for tree in FILE_TREES:
        if (source / "files" / tree).is_dir():
            shutil.copytree(source / "files" / tree, data_dir / tree, dirs_exist_ok=True)
    if (source / "gnupg").is_dir():
        gnupg_home.mkdir(parents=True, exist_ok=True, mode=0o700)
        shutil.copytree(source / "gnupg", gnupg_home, dirs_exist_ok=True)
    return counts


def _writes_under_way(directory: str, names: list[str]) -> set[str]:
    return {"tmp"} & set(names)


def read_anchor(source: Path) -> Anchor:
    """The audit chain's head recorded in the backup in ``source``."""
    try:
        data = json.loads((source / AUDIT_HEAD).read_text(encoding="utf-8"))
        return Anchor(seq=int(data["seq"]), hash=str(data["hash"]), source=f"backup {source}")
    except FileNotFoundError as exc:
        raise BackupError(f"{source} has no {AUDIT_HEAD}: not a complete Yizhan backup") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise BackupError(f"{source / AUDIT_HEAD} is not a chain head: {exc}") from exc


def _load(source: Path, table: Table) -> list[dict[str, Any]]:
    path = source / "tables" / f"{table.name}.jsonl"
    return [
        _decode(table, json.loads(line))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line
    ]


def _reseal(
    rows: list[dict[str, Any]], head: dict[str, Any], anchor: Anchor, key: bytes
) -> dict[str, Any]:
    """Reseal a trail sealed under another key in place; returns the new head row.

    The old seals cannot be checked without the old key; the links can: every row in place,
    each linked to the one before, the last one the head that the backup recorded.
    """
    chained = sorted((r for r in rows if r["seq"] is not None), key=lambda r: int(r["seq"]))
    unsealed = [r["id"] for r in rows if r["seq"] is None]
    if unsealed:
        raise BackupError(f"the backup's audit row {unsealed[0]} has no seal: it was altered")
    prev = GENESIS
    for place, row in enumerate(chained, start=1):
        if row["seq"] != place or row["prev_hash"] != prev:
            raise BackupError(
                f"the backup's audit trail is broken at row {row['id']} (seq {row['seq']}): "
                "it cannot be resealed"
            )
        prev = row["hash"]
    if (len(chained), prev) != (head["seq"], head["hash"]) or (anchor.seq, anchor.hash) != (
        head["seq"],
        head["hash"],
    ):
        raise BackupError("the backup's audit trail does not end at its recorded head")
    fields = set(ChainRow._fields)
    sealed = auditchain.reseal(
        key, (ChainRow(**{k: v for k, v in r.items() if k in fields}) for r in chained)
    )
    for row in chained:
        row["seq"], row["prev_hash"], row["hash"] = sealed[row["id"]]
    log.warning(
        "the backup's audit trail was sealed under another yizhan.secret (key id %s); its links "
        "check out and it is resealed under this instance's secret: its rows are now as "
        "trustworthy as the backup's files",
        head["key_id"],
    )
    new_hash = sealed[chained[-1]["id"]][2] if chained else GENESIS
    return {
        **head,
        "hash": new_hash,
        "seal": auditchain.head_seal(key, head["seq"], new_hash),
        "key_id": key_id(key),
    }


def _record_reseal(conn: Connection, key: bytes, old: dict[str, Any]) -> None:
    """Put the reseal in the trail itself, sealed after the resealed rows."""
    new_id = conn.execute(
        insert(AUDIT)
        .values(
            at=dt.datetime.now(dt.UTC),
            actor=SYSTEM,
            action="audit.resealed",
            target="audit",
            detail={"old_key_id": old["key_id"], "head_seq": old["seq"], "old_hash": old["hash"]},
        )
        .returning(AUDIT.c.id)
    ).scalar_one()
    auditchain.extend(conn, key, [new_id])


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
