"""Keeps the tools the IT department publishes: their bytes, description and versions, audited.

Every publication and removal is one change in the caller's transaction, with its audit entry
(mine rules 一(五)): who, which version, its size and SHA-256. ``routing.tools`` decides what
the commands mean; ``daemon.desk.tools`` sniffs the file and answers by mail.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

from yizhan.mailstore import audit
from yizhan.mailstore.models import Tool
from yizhan.routing.tools import ToolInfo, name_key

PUBLISHED = "published"
REMOVED = "removed"


def publish(
    session: Session,
    *,
    name: str,
    description: str,
    filename: str,
    content_type: str,
    data: bytes,
    actor: str,
    now: dt.datetime,
) -> ToolInfo:
    """Publish ``data`` as tool ``name``, replacing a tool of that name as its next version."""
    digest = hashlib.sha256(data).hexdigest()
    row = session.get(Tool, name_key(name))
    replaced: int | None = None
    if row is None:
        row = Tool(key=name_key(name), version=1)
        session.add(row)
    else:
        replaced = row.version if row.state == PUBLISHED else None
        row.version += 1
    row.name, row.state, row.description = name, PUBLISHED, description
    row.filename, row.content_type, row.data = filename, content_type, data
    row.size, row.sha256 = len(data), digest
    row.published_by, row.published_at = actor, now
    audit.record(
        session,
        at=now,
        actor=actor,
        action="tool.publish",
        target=name,
        detail={
            "version": row.version,
            "replaced_version": replaced,
            "filename": filename,
            "content_type": content_type,
            "size": len(data),
            "sha256": digest,
        },
    )
    session.flush()
    return _info(row)


def remove(session: Session, name: str, *, actor: str, now: dt.datetime) -> ToolInfo | None:
    """Take tool ``name`` down (its bytes are dropped, its row and version stay); None if none."""
    row = session.get(Tool, name_key(name))
    if row is None or row.state != PUBLISHED:
        return None
    info = _info(row)
    row.state, row.data = REMOVED, b""
    audit.record(
        session,
        at=now,
        actor=actor,
        action="tool.remove",
        target=row.name,
        detail={"version": row.version, "sha256": row.sha256},
    )
    return info


def published(session: Session) -> list[ToolInfo]:
    """Every published tool, by name, without the bytes."""
    rows = session.scalars(select(Tool).where(Tool.state == PUBLISHED).order_by(Tool.key))
    return [_info(row) for row in rows]


def fetch(session: Session, name: str) -> tuple[ToolInfo, bytes] | None:
    """A published tool and its bytes, or None."""
    row = session.scalars(
        select(Tool)
        .where(Tool.key == name_key(name), Tool.state == PUBLISHED)
        .options(undefer(Tool.data))
    ).first()
    if row is None:
        return None
    return _info(row), row.data


def published_digests(session: Session) -> frozenset[str]:
    """The SHA-256 of every published tool (the gateway lets these files through)."""
    return frozenset(session.scalars(select(Tool.sha256).where(Tool.state == PUBLISHED)))


def _info(row: Tool) -> ToolInfo:
    return ToolInfo(
        name=row.name,
        description=row.description,
        filename=row.filename,
        content_type=row.content_type,
        size=row.size,
        sha256=row.sha256,
        version=row.version,
        published_by=row.published_by,
        published_at=row.published_at,
    )
