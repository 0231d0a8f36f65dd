"""Stores the organisation directory: imports an org file into the database and reads it back."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import weakref
from collections import defaultdict
from typing import Any, Final

from sqlalchemy import Pool, event, inspect, select, update
from sqlalchemy.orm import ORMExecuteState, Session

from yizhan.mailstore import audit
from yizhan.mailstore.models import (
    Account,
    AccountRecord,
    DirectoryVersion,
    Person,
    Role,
    Unit,
)
from yizhan.routing.directory import (
    Directory,
    OrgError,
    PersonInfo,
    UnitInfo,
    check_directory,
)

#: ``Session.info`` key: this transaction changed the directory (its reads are its own).
_CHANGED: Final = "yizhan.directory_changed"


class _ReadDirectories:
    """The directory last read from each database, with the version it was read at."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Keyed by the connection pool: an engine with execution options (a reader's
        # snapshot) shares its pool, and so its database, with the engine it was made from.
        self._entries: weakref.WeakKeyDictionary[Pool, tuple[int, Directory]] = (
            weakref.WeakKeyDictionary()
        )

    def get(self, pool: Pool, version: int) -> Directory | None:
        with self._lock:
            found = self._entries.get(pool)
        return found[1] if found is not None and found[0] == version else None

    def put(self, pool: Pool, version: int, directory: Directory) -> None:
        with self._lock:
            self._entries[pool] = (version, directory)


_READ: Final = _ReadDirectories()


def load_directory(session: Session) -> Directory:
    """The directory as the database holds it now.

    Every message the processor handles asks for it, and a bureau of ten thousand people takes
    about 100 ms to read: so the directory read at a version is kept, and read again only once
    ``directory_version`` has moved (raised in the same transaction as any change, below). A
    transaction that changed the directory itself reads it afresh and keeps nothing, since it
    may still roll back.
    """
    version = session.scalar(select(DirectoryVersion.version).where(DirectoryVersion.id == 1))
    pool = session.get_bind().engine.pool
    cacheable = version is not None and not session.info.get(_CHANGED)
    if cacheable:
        assert version is not None
        found = _READ.get(pool, version)
        if found is not None:
            return found
    directory = _read_directory(session)
    if cacheable:
        assert version is not None
        _READ.put(pool, version, directory)
    return directory


@event.listens_for(Session, "before_flush")
def _raise_directory_version(session: Session, _context: Any, _instances: Any) -> None:
    """Raise ``directory_version`` in the transaction that changes the directory."""
    if _changes_directory(session):
        session.connection().execute(
            update(DirectoryVersion)
            .where(DirectoryVersion.id == 1)
            .values(version=DirectoryVersion.version + 1)
        )
        session.info[_CHANGED] = True


@event.listens_for(Session, "do_orm_execute")
def _raise_for_statements(state: ORMExecuteState) -> None:
    """The same for an UPDATE, DELETE or INSERT statement on those tables run through a
    session (not object by object)."""
    if not (state.is_update or state.is_delete or state.is_insert):
        return
    if any(mapper.class_ in _DIRECTORY_MODELS for mapper in state.all_mappers):
        state.session.connection().execute(
            update(DirectoryVersion)
            .where(DirectoryVersion.id == 1)
            .values(version=DirectoryVersion.version + 1)
        )
        state.session.info[_CHANGED] = True


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _transaction_ended(session: Session) -> None:
    session.info.pop(_CHANGED, None)


_DIRECTORY_MODELS: Final = (Unit, Person, Role, Account)


def _changes_directory(session: Session) -> bool:
    for obj in itertools.chain(session.new, session.dirty, session.deleted):
        if isinstance(obj, Unit | Person | Role):
            return True
        if isinstance(obj, Account) and (
            obj in session.new
            or obj in session.deleted
            or inspect(obj).attrs.state.history.has_changes()
        ):
            return True
    return False


def _read_directory(session: Session) -> Directory:
    """The directory read as plain rows, three queries in all: ORM objects for ten thousand
    people cost ten times more."""
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
    session: Session,
    directory: Directory,
    *,
    actor: str,
    now: dt.datetime,
    reason: str = "org import",
) -> dict[str, int]:
    """Add or update every unit and person of ``directory``; people not named are kept.

    New people get an account with no password: they can log in once IT sets one
    (``yizhan user passwd``); IT's account file records who created it and why (mine rules
    一(二)). Returns counts of what was added and updated.
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
            record_creation(session, person.account, created_by=actor, reason=reason, now=now)
    audit.record(session, at=now, actor=actor, action="org.import", detail=counts)
    return counts


def record_creation(
    session: Session, account: str, *, created_by: str, reason: str, now: dt.datetime
) -> None:
    """IT's account file (mine rules 一(二)): who created ``account`` and why, as a change
    request's approval records it; an account already on file keeps its record."""
    if session.get(AccountRecord, account) is None:
        session.add(
            AccountRecord(account=account, created_by=created_by, reason=reason, created_at=now)
        )
        session.flush()


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
