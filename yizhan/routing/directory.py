"""The organisation as plain data: units, people, roles, and the questions rules ask of them.

Built from an organisation file (TOML, as yizhan/demo/bureau.toml) or from the database by
``mailstore``; nothing here reads either. 第五條: every unit names a leader in charge and a
clerk (綜合人員).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

UNIT_KINDS = ("bureau", "office", "it", "hr", "department", "branch")
ROLES = ("staff", "clerk", "unit_leader", "unit_head", "bureau_leader", "seal_custodian")
ACCOUNT_STATES = ("active", "suspended", "revoked")

_ACCOUNT = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")
_UNIT_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class OrgError(ValueError):
    """An organisation file has problems; ``problems`` lists each one."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, kw_only=True)
class UnitInfo:
    """One unit of the organisation."""

    id: str
    name: str
    kind: str
    parent: str | None = None
    prefix: str | None = None
    leader: str | None = None


@dataclass(frozen=True, kw_only=True)
class PersonInfo:
    """One person: account, real name, unit, roles and own mailbox."""

    account: str
    name: str
    unit: str
    roles: frozenset[str]
    email: str | None = None
    state: str = "active"
    language: str | None = None

    def mailbox(self, domain: str) -> str:
        """Where Yizhan delivers to this person: their own mailbox, else their address at the
        OA ``domain``; never a From address, which anyone may write."""
        return self.email or f"{self.account}@{domain}"


@dataclass(frozen=True, kw_only=True)
class Directory:
    """The whole organisation, indexed for the questions routing asks."""

    units: Mapping[str, UnitInfo]
    people: Mapping[str, PersonInfo]
    _by_email: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, units: Iterable[UnitInfo], people: Iterable[PersonInfo]) -> Directory:
        """Index units and people."""
        people_map = {p.account: p for p in people}
        by_email = {p.email.lower(): p.account for p in people_map.values() if p.email}
        return cls(units={u.id: u for u in units}, people=people_map, _by_email=by_email)

    def person_by_address(self, address: str, domain: str) -> PersonInfo | None:
        """The person an address belongs to: ``account@domain`` or their own mailbox."""
        address = address.strip().lower()
        local, _, host = address.rpartition("@")
        if host == domain.lower() and local in self.people:
            return self.people[local]
        account = self._by_email.get(address)
        return self.people[account] if account else None

    def unit_by_ref(self, ref: str) -> UnitInfo | None:
        """A unit named by its id or its name."""
        ref = ref.strip()
        if ref in self.units:
            return self.units[ref]
        return next((u for u in self.units.values() if u.name == ref), None)

    def members(self, unit: str, role: str) -> list[PersonInfo]:
        """Active people of ``unit`` who hold ``role``, in account order."""
        return sorted(
            (
                p
                for p in self.people.values()
                if p.unit == unit and role in p.roles and p.state == "active"
            ),
            key=lambda p: p.account,
        )

    def with_role(self, role: str) -> list[PersonInfo]:
        """Active people anywhere who hold ``role``."""
        return sorted(
            (p for p in self.people.values() if role in p.roles and p.state == "active"),
            key=lambda p: p.account,
        )

    def in_unit_of_kind(self, account: str, kind: str) -> bool:
        """Whether ``account`` belongs to a unit of ``kind`` (the office, IT, HR …)."""
        person = self.people.get(account)
        unit = self.units.get(person.unit) if person else None
        return unit is not None and unit.kind == kind

    def units_of_kind(self, kind: str) -> list[UnitInfo]:
        """Units of one kind (office, it, hr …), in id order."""
        return sorted((u for u in self.units.values() if u.kind == kind), key=lambda u: u.id)


def parse_org(data: Mapping[str, Any]) -> Directory:
    """Check an organisation document (parsed TOML) and build the directory from it.

    Every problem is collected, so that an administrator fixes the file in one pass.
    """
    problems: list[str] = []
    units: list[UnitInfo] = []
    people: list[PersonInfo] = []
    for key in data:
        if key not in ("unit", "person"):
            problems.append(f"unknown table [{key}]; allowed: [[unit]], [[person]]")
    for i, raw in enumerate(_tables(data, "unit", problems)):
        where = f"unit #{i + 1} ({raw.get('id', '?')})"
        unit = _unit(raw, where, problems)
        if unit:
            units.append(unit)
    for i, raw in enumerate(_tables(data, "person", problems)):
        where = f"person #{i + 1} ({raw.get('account', '?')})"
        person = _person(raw, where, problems)
        if person:
            people.append(person)
    problems.extend(check_directory(units, people))
    if problems:
        raise OrgError(problems)
    return Directory.build(units, people)


def person_from_fields(raw: Mapping[str, Any]) -> PersonInfo:
    """One person from the fields of a [[person]] table; :class:`OrgError` says what is wrong."""
    problems: list[str] = []
    person = _person(dict(raw), f"person {raw.get('account', '?')}", problems)
    if person is None:
        raise OrgError(problems)
    return person


def check_directory(units: list[UnitInfo], people: list[PersonInfo]) -> list[str]:
    """Problems of consistency between units and people (duplicates, dangling references)."""
    problems: list[str] = []
    unit_ids = [u.id for u in units]
    accounts = [p.account for p in people]
    for dup in sorted({u for u in unit_ids if unit_ids.count(u) > 1}):
        problems.append(f"unit id {dup!r} appears more than once")
    for dup in sorted({a for a in accounts if accounts.count(a) > 1}):
        problems.append(f"account {dup!r} appears more than once")
    emails = [p.email.lower() for p in people if p.email]
    for dup in sorted({e for e in emails if emails.count(e) > 1}):
        problems.append(f"email {dup!r} belongs to more than one person")
    known_units = set(unit_ids)
    by_account = {p.account: p for p in people}
    roots = [u for u in units if u.parent is None]
    if units and len(roots) != 1:
        problems.append("exactly one unit (the bureau) must have no parent")
    for u in units:
        if u.parent is not None and u.parent not in known_units:
            problems.append(f"unit {u.id}: parent {u.parent!r} is not a unit id")
        if u.leader is not None:
            leader = by_account.get(u.leader)
            if leader is None:
                problems.append(f"unit {u.id}: leader {u.leader!r} is not an account")
            elif "bureau_leader" not in leader.roles:
                problems.append(f"unit {u.id}: leader {u.leader!r} is not a bureau_leader")
    problems.extend(_cycles(units))
    for p in people:
        if p.unit not in known_units:
            problems.append(f"person {p.account}: unit {p.unit!r} is not a unit id")
    return problems


def _cycles(units: list[UnitInfo]) -> list[str]:
    parents = {u.id: u.parent for u in units}
    problems = []
    for start in parents:
        seen = {start}
        node = parents.get(start)
        while node is not None:
            if node in seen:
                problems.append(f"unit {start}: its parents form a loop")
                break
            seen.add(node)
            node = parents.get(node)
    return problems


def _tables(data: Mapping[str, Any], name: str, problems: list[str]) -> list[dict[str, Any]]:
    value = data.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        problems.append(f"[[{name}]] must be an array of tables")
        return []
    return value


def _unit(raw: dict[str, Any], where: str, problems: list[str]) -> UnitInfo | None:
    before = len(problems)
    _unknown_keys(raw, {"id", "name", "kind", "parent", "prefix", "leader"}, where, problems)
    uid = _text(raw, "id", where, problems)
    if uid and not _UNIT_ID.match(uid):
        problems.append(f"{where}: id must be ASCII letters, digits, - or _")
    name = _text(raw, "name", where, problems)
    kind = _text(raw, "kind", where, problems)
    if kind and kind not in UNIT_KINDS:
        problems.append(f"{where}: kind {kind!r}; allowed: {', '.join(UNIT_KINDS)}")
    parent = _text(raw, "parent", where, problems, required=False)
    prefix = _text(raw, "prefix", where, problems, required=False)
    leader = _text(raw, "leader", where, problems, required=False)
    if len(problems) > before:
        return None
    return UnitInfo(id=uid, name=name, kind=kind, parent=parent, prefix=prefix, leader=leader)


def _person(raw: dict[str, Any], where: str, problems: list[str]) -> PersonInfo | None:
    before = len(problems)
    _unknown_keys(raw, {"account", "name", "unit", "roles", "email", "language"}, where, problems)
    account = _text(raw, "account", where, problems)
    if account and not _ACCOUNT.match(account):
        problems.append(
            f"{where}: account must be lower-case ASCII (letters, digits, . _ -), 2-64 long"
        )
    name = _text(raw, "name", where, problems)
    unit = _text(raw, "unit", where, problems)
    email = _text(raw, "email", where, problems, required=False)
    if email and not _EMAIL.match(email):
        problems.append(f"{where}: email {email!r} is not a mail address")
    language = _text(raw, "language", where, problems, required=False)
    roles = raw.get("roles", ["staff"])
    if not isinstance(roles, list) or not roles or not all(isinstance(r, str) for r in roles):
        problems.append(f'{where}: roles must be a non-empty list such as ["staff"]')
        roles = []
    for role in roles:
        if role not in ROLES:
            problems.append(f"{where}: role {role!r}; allowed: {', '.join(ROLES)}")
    if len(problems) > before:
        return None
    return PersonInfo(
        account=account,
        name=name,
        unit=unit,
        roles=frozenset(roles),
        email=email,
        language=language,
    )


def _unknown_keys(raw: dict[str, Any], allowed: set[str], where: str, problems: list[str]) -> None:
    for key in raw:
        if key not in allowed:
            problems.append(f"{where}: unknown key {key!r}; allowed: {', '.join(sorted(allowed))}")


def _text(
    raw: dict[str, Any], key: str, where: str, problems: list[str], *, required: bool = True
) -> Any:
    value = raw.get(key)
    if value is None:
        if required:
            problems.append(f"{where}: {key} is missing")
        return None
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{where}: {key} must be a non-empty string")
        return None
    return value.strip()
