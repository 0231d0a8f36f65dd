"""Who hears of what a job finds: a person's unit head, the office, the IT department."""

from __future__ import annotations

from yizhan.routing.directory import Directory, PersonInfo


def heads_of(directory: Directory, account: str) -> list[PersonInfo]:
    """The unit head of ``account``; for a unit head, the bureau leader in charge of the unit."""
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


def office_staff(directory: Directory) -> list[PersonInfo]:
    """Who supervises deadlines for the office (督查督辦): its head and its clerks."""
    found: dict[str, PersonInfo] = {}
    for unit in directory.units_of_kind("office"):
        for role in ("unit_head", "clerk"):
            for person in directory.members(unit.id, role):
                found.setdefault(person.account, person)
    return list(found.values())


def it_staff(directory: Directory) -> list[PersonInfo]:
    """Who in the IT department hears of account matters: its head, else its clerks."""
    units = directory.units_of_kind("it")
    heads = [p for u in units for p in directory.members(u.id, "unit_head")]
    return heads or [p for u in units for p in directory.members(u.id, "clerk")]
