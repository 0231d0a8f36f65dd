"""Keeps every saved version of the rules file, with who saved it and when, and writes the file.

The file ``<data_dir>/rules.toml`` is what the daemons read; each save through the admin page
writes it atomically and records the text here in the same step, so every earlier version can
be shown and compared.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from yizhan.mailstore import audit
from yizhan.mailstore.models import RulesVersion


@dataclass(frozen=True, kw_only=True)
class VersionInfo:
    """One saved version, without its text."""

    id: int
    saved_at: dt.datetime
    saved_by: str
    sha256: str
    note: str


def digest(text: str) -> str:
    """The SHA-256 of a rules text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def versions(session: Session, limit: int = 100) -> list[VersionInfo]:
    """The saved versions, newest first."""
    rows = session.execute(
        select(
            RulesVersion.id,
            RulesVersion.saved_at,
            RulesVersion.saved_by,
            RulesVersion.sha256,
            RulesVersion.note,
        )
        .order_by(RulesVersion.id.desc())
        .limit(limit)
    )
    return [
        VersionInfo(id=r.id, saved_at=r.saved_at, saved_by=r.saved_by, sha256=r.sha256, note=r.note)
        for r in rows
    ]


def version_text(session: Session, version_id: int) -> str | None:
    """The text of one saved version."""
    return session.scalar(select(RulesVersion.text).where(RulesVersion.id == version_id))


def save_rules(
    session: Session, path: Path, text: str, *, actor: str, now: dt.datetime, note: str = ""
) -> int:
    """Record ``text`` as a new version and write it to ``path``; the version's id.

    The file is replaced atomically (written beside it, synced, renamed) after the row is
    flushed; should the caller's transaction then fail, the file holds a version the table
    lacks, which the next save records.
    """
    row = RulesVersion(saved_at=now, saved_by=actor, sha256=digest(text), text=text, note=note)
    session.add(row)
    session.flush()
    audit.record(
        session,
        at=now,
        actor=actor,
        action="rules.save",
        target=str(path.name),
        detail={"version": row.id, "sha256": row.sha256},
    )
    write_atomically(path, text)
    return row.id


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that a reader sees the old file or the new, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as fp:
        fp.write(text)
        fp.flush()
        os.fsync(fp.fileno())
    tmp.replace(path)
