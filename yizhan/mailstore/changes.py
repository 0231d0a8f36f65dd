"""Applies an approved change request (第十條) to the directory, the accounts and IT's file."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from yizhan.mailstore import accounts, audit
from yizhan.mailstore.directory import load_directory, save_person
from yizhan.mailstore.models import AccountRecord
from yizhan.routing.changes import Change
from yizhan.routing.directory import PersonInfo


def apply_change(
    session: Session, change: Change, *, document_id: int, actor: str, now: dt.datetime
) -> None:
    """Carry out ``change`` at once (mine rules 一(三): the same day), with an audit entry.

    A new account is created under the real name with no password (IT gives the first one,
    which must be changed on first use); its file records the confidentiality agreement and,
    for a special-purpose account, the responsible person. A removal revokes the account.
    """
    current = load_directory(session).people.get(change.account)
    if change.action in ("add", "special"):
        save_person(
            session,
            PersonInfo(
                account=change.account,
                name=change.name,
                unit=change.unit,
                roles=frozenset(change.roles),
                email=change.email,
            ),
            now=now,
        )
        session.add(
            AccountRecord(
                account=change.account,
                nda_signed=change.nda,
                special=change.action == "special",
                responsible=change.responsible,
                document_id=document_id,
                created_by=actor,
                created_at=now,
            )
        )
    elif change.action == "remove":
        accounts.set_state(session, change.account, "revoked", actor=actor, now=now)
    else:
        assert current is not None
        save_person(
            session,
            PersonInfo(
                account=current.account,
                name=current.name,
                unit=change.unit,
                roles=frozenset(change.roles),
                email=current.email,
            ),
            now=now,
        )
    audit.record(
        session,
        at=now,
        actor=actor,
        action=f"directory.{change.action}",
        target=change.account,
        detail={"document": document_id, "change": change.as_fields()},
    )
    session.flush()
