"""Stores the organisation directory: imports an org file into the database and reads it back."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session

from yizhan.mailstore import audit
from yizhan.mailstore.models import Account, Person, Role, Unit
from yizhan.routing.directory import (
    Directory,
    OrgError,
    PersonInfo,
    UnitInfo,
    check_directory,
)


def load_directory(session: Session) -> Directory:
    """The directory as the database holds it now.

    Read as plain rows, three queries in all: the directory is read often (the admin page and
    the jobs hold it a few seconds), and ORM objects for ten thousand people cost ten times more.
    """
    units = [
        UnitInfo(
            id=u.id, name=u.name, kind=u.kind, parent=u.parent_id, prefix=u.prefix, leader=u.leader
        )
        for u in session.execute(
            select(Unit.id, Unit.name, Unit.kind, Unit.parent_id, Unit.prefix, Unit.leader)
        )
    ]
    states = {a: s for a, s in session.execute(select(Account.account, Account.state))}
    roles: dict[str, set[str]] = defaultdict(set)
    for account, role in session.execute(select(Role.account, Role.role)):
        roles[account].add(role)
    people = [
        PersonInfo(
            account=p.account,
            name=p.name,
            unit=p.unit_id,
            roles=frozenset(roles.get(p.account, ())),
            email=p.email,
            state=states.get(p.account, "active"),
            language=p.language,
        )
        for p in session.execute(
            select(Person.account, Person.name, Person.unit_id, Person.email, Person.language)
        )
    ]
    return Directory.build(units, people)


def import_directory(
    session: Session, directory: Directory, *, actor: str, now: dt.datetime
) -> dict[str, int]:
    """Add or update every unit and person of ``directory``; people not named are kept.

    New people get an account with no password: they can log in once IT sets one
    (``yizhan user passwd``). Returns counts of what was added and updated.
    """
    current = load_directory(session)
    merged_units = {**current.units, **directory.units}
    merged_people = {**current.people, **directory.people}
    problems = check_directory(list(merged_units.values()), list(merged_people.values()))
    if problems:
        raise OrgError(problems)

    counts = {"units_added": 0, "units_updated": 0, "people_added": 0, "people_updated": 0}
    # Parents first, so that foreign keys hold at every insert.
    for unit in _parents_first(list(directory.units.values())):
        row = session.get(Unit, unit.id)
        if row is None:
            row = Unit(id=unit.id)
            session.add(row)
            counts["units_added"] += 1
        else:
            counts["units_updated"] += 1
        row.name, row.kind, row.parent_id = unit.name, unit.kind, unit.parent
        row.prefix, row.leader = unit.prefix, unit.leader
        session.flush()
    for person in directory.people.values():
        save_person(session, person, now=now)
        if person.account in current.people:
            counts["people_updated"] += 1
        else:
            counts["people_added"] += 1
    audit.record(session, at=now, actor=actor, action="org.import", detail=counts)
    return counts


def save_person(session: Session, person: PersonInfo, *, now: dt.datetime) -> Person:
    """Insert or update one person and their roles; a new person gets a password-less account."""
    row = session.get(Person, person.account)
    if row is None:
        row = Person(account=person.account, name=person.name, unit_id=person.unit)
        session.add(row)
        # The account row refers to the person; no relationship orders the two inserts.
        session.flush()
        session.add(Account(account=person.account, created_at=now))
    row.name, row.unit_id, row.email = person.name, person.unit, person.email
    if person.language:
        row.language = person.language
    wanted = set(person.roles)
    row.roles = [r for r in row.roles if r.role in wanted]
    have = {r.role for r in row.roles}
    row.roles.extend(Role(account=person.account, role=r) for r in sorted(wanted - have))
    session.flush()
    return row


def _parents_first(units: list[UnitInfo]) -> list[UnitInfo]:
    ordered: list[UnitInfo] = []
    placed: set[str] = set()
    pending = list(units)
    names = {u.id for u in units}
    while pending:
        rest = []
        for u in pending:
            if u.parent is None or u.parent in placed or u.parent not in names:
                ordered.append(u)
                placed.add(u.id)
            else:
                rest.append(u)
        if len(rest) == len(pending):
            ordered.extend(rest)
            break
        pending = rest
    return ordered
