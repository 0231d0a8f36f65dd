"""Who answers for what in the organisation: the IT department, HR, the office, a person's heads;
and which of those departments' work a person does.

第四條 gives the care of the system to the office (辦公室) and the IT department (信息化處): IT
handles people and permissions, problems and security, so it hears of impersonation (第七條),
refused content, directory changes and unused accounts. 第六條 gives the leave module to HR
(人事處) and every other module to the office. 第五條 gives each unit a leader in charge and a
clerk; a unit head (主要領導) answers for their unit's open items. The units of kind ``it``,
``office`` and ``hr`` are those departments. Each question has one answer here: who is told
(the mail the daemon sends) and what a person may do (the admin page's pages).
"""

from __future__ import annotations

from enum import StrEnum

from yizhan.routing.directory import Directory, PersonInfo, UnitInfo

__all__ = [
    "Duty",
    "duties",
    "duties_in",
    "heads_of",
    "hr_officers",
    "it_people",
    "leader_in_charge",
    "office_staff",
]


def it_people(directory: Directory) -> list[PersonInfo]:
    """Who hears for the IT department (第四條(二), 第七條): the heads of its units, else every
    active member of them, so that the department is never left unreached.

    The department, not a role in it, answers for the system: when it has no head (a vacancy,
    a small bureau), whoever works in it is told.
    """
    units = directory.units_of_kind("it")
    heads = [p for u in units for p in directory.members(u.id, "unit_head")]
    if heads:
        return heads
    ids = {u.id for u in units}
    return sorted(
        (p for p in directory.people.values() if p.state == "active" and p.unit in ids),
        key=lambda p: p.account,
    )


def hr_officers(directory: Directory) -> list[PersonInfo]:
    """Who keeps the leave book (第六條): the heads and clerks of the HR units, each once."""
    return _heads_and_clerks(directory, "hr")


def office_staff(directory: Directory) -> list[PersonInfo]:
    """Who runs the modules and supervises deadlines for the office (第六條, 第十條, 督查督辦):
    the heads and clerks of the office units, each once."""
    return _heads_and_clerks(directory, "office")


def heads_of(directory: Directory, account: str) -> list[PersonInfo]:
    """Who is above ``account``: their unit's head; for a unit head (or a unit without one),
    the bureau leader in charge of the unit (第五條), else the bureau's head."""
    person = directory.people.get(account)
    if person is None:
        return []
    heads = [p for p in directory.members(person.unit, "unit_head") if p.account != account]
    if heads:
        return heads
    unit = directory.units.get(person.unit)
    leader = directory.people.get(unit.leader) if unit and unit.leader else None
    if leader is not None and leader.account != account and leader.state == "active":
        return [leader]
    bureau = [u.id for u in directory.units_of_kind("bureau")]
    return [p for u in bureau for p in directory.members(u, "unit_head") if p.account != account]


def leader_in_charge(directory: Directory, unit_id: str) -> tuple[str, str] | None:
    """The bureau leader in charge of ``unit_id`` (分管局領導, 第五條), and why it is them.

    They sign off the unit's documents (第二十條) and decide objections to them (第二十條 ¶2).
    The unit's ``leader`` if active; else the bureau's unit_head; else the first
    bureau_leader. None when there is no bureau leader at all.
    """
    unit = directory.units.get(unit_id)
    if unit is not None and unit.leader is not None:
        leader = directory.people.get(unit.leader)
        if leader is not None and leader.state == "active" and "bureau_leader" in leader.roles:
            return leader.account, f"the leader in charge of {unit_id}"
    for bureau in directory.units_of_kind("bureau"):
        heads = directory.members(bureau.id, "unit_head")
        if heads:
            return heads[0].account, f"{unit_id} has no leader in charge: the bureau's unit_head"
    leaders = directory.with_role("bureau_leader")
    if leaders:
        return leaders[0].account, f"{unit_id} has no leader in charge: the first bureau_leader"
    return None


def _heads_and_clerks(directory: Directory, kind: str) -> list[PersonInfo]:
    found: dict[str, PersonInfo] = {}
    for unit in directory.units_of_kind(kind):
        for role in ("unit_head", "clerk"):
            for person in directory.members(unit.id, role):
                found.setdefault(person.account, person)
    return list(found.values())


class Duty(StrEnum):
    """A department's work that a person takes part in."""

    IT = "it"
    OFFICE = "office"
    HR = "hr"
    UNIT_HEAD = "unit_head"


_UNIT_KIND_DUTY = {"it": Duty.IT, "office": Duty.OFFICE, "hr": Duty.HR}


def duties(person: PersonInfo | None, unit: UnitInfo | None) -> frozenset[Duty]:
    """The duties of ``person``, a member of ``unit``: none unless the account is active.

    Every active member of the IT department, the office or HR does its work (第四條, 第六條);
    the holder of ``unit_head`` answers for their own unit.
    """
    if person is None or person.state != "active":
        return frozenset()
    found: set[Duty] = set()
    if unit is not None and unit.id == person.unit and unit.kind in _UNIT_KIND_DUTY:
        found.add(_UNIT_KIND_DUTY[unit.kind])
    if "unit_head" in person.roles:
        found.add(Duty.UNIT_HEAD)
    return frozenset(found)


def duties_in(directory: Directory, account: str) -> frozenset[Duty]:
    """:func:`duties` of ``account`` looked up in ``directory``."""
    person = directory.people.get(account)
    return duties(person, directory.units.get(person.unit) if person else None)
