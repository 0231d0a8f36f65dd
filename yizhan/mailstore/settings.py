"""Keeps each person's settings (``SET`` at cmd@): reads them, writes changes, audits each one.

The language is the person's ``language`` column, which every mail is rendered in; the other
keys live in ``person_settings``, one row per key, and a key set back to its default has no
row. Only ``routing.settings`` decides what a value means.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from yizhan.mailstore import audit
from yizhan.mailstore.models import Person, PersonSetting
from yizhan.routing.settings import LANGUAGE


def load_settings(session: Session, account: str) -> dict[str, str]:
    """The settings ``account`` has made, key → value; keys at their default are absent."""
    found = {
        row.key: row.value
        for row in session.scalars(select(PersonSetting).where(PersonSetting.account == account))
    }
    person = session.get(Person, account)
    if person is not None and person.language:
        found[LANGUAGE] = person.language
    return found


def settings_of(session: Session, key: str, accounts: Iterable[str]) -> dict[str, str]:
    """One key's value for each of ``accounts`` that has set it (for the digest job)."""
    wanted = list(accounts)
    if not wanted:
        return {}
    rows = session.execute(
        select(PersonSetting.account, PersonSetting.value).where(
            PersonSetting.key == key, PersonSetting.account.in_(wanted)
        )
    )
    return {account: value for account, value in rows}


def save_settings(
    session: Session,
    account: str,
    changes: Mapping[str, str | None],
    *,
    actor: str,
    now: dt.datetime,
) -> None:
    """Apply ``changes`` (None: back to the default) in the caller's transaction."""
    for key, value in changes.items():
        if key == LANGUAGE:
            person = session.get(Person, account)
            if person is None:
                raise ValueError(f"no such person: {account}")
            person.language = value
        else:
            row = session.get(PersonSetting, (account, key))
            if value is None:
                if row is not None:
                    session.delete(row)
            elif row is None:
                session.add(PersonSetting(account=account, key=key, value=value, updated_at=now))
            else:
                row.value, row.updated_at = value, now
        audit.record(
            session,
            at=now,
            actor=actor,
            action="settings.set",
            target=account,
            detail={"key": key, "value": value},
        )
    session.flush()
