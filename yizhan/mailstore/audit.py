"""Appends entries to the audit trail; nothing here updates or deletes one.

An entry is written at once, so the transaction that wrote it reads it back; when that
transaction commits, the session seals it into the trail's hash chain (``auditchain``).
``record`` is the way in: a row inserted any other way is not sealed, and ``yizhan audit verify``
reports it as inserted behind Yizhan's back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from yizhan.mailstore.models import AuditEntry

#: The actor recorded for actions taken by Yizhan itself (jobs, bounces).
SYSTEM = "yizhan"


def record(
    session: Session,
    *,
    at: dt.datetime,
    actor: str,
    action: str,
    target: str | None = None,
    on_behalf_of: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Add one entry to the trail in the caller's transaction; sealed when it commits."""
    entry = AuditEntry(
        at=at,
        actor=actor,
        action=action,
        target=target,
        on_behalf_of=on_behalf_of,
        detail=dict(detail or {}),
    )
    session.add(entry)
    return entry
