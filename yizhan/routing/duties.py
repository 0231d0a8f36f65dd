"""Says which departments' work a person does: the IT department, the office, HR, a unit head.

第四條 gives the IT department the system's running, 第六條 the office everything but leave and
HR the leave book; a unit head (主要領導) answers for their unit's open items. The units of kind
``it``, ``office`` and ``hr`` are those departments (DESIGN.md). The admin page decides what a
person sees from these duties alone, and the desk may ask the same question.
"""

from __future__ import annotations

from enum import StrEnum

from yizhan.routing.directory import Directory, PersonInfo, UnitInfo

__all__ = ["Duty", "duties", "duties_in"]


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
