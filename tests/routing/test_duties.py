"""Tests for routing.duties: who hears for the IT department, HR and the office, and who is
above a person (第四條, 第五條, 第六條, 第七條)."""

from __future__ import annotations

import dataclasses

from tests.conftest import demo_org
from yizhan.routing.directory import Directory, PersonInfo, parse_org
from yizhan.routing.duties import heads_of, hr_officers, it_people, office_staff, staffing_gaps

DIRECTORY: Directory = parse_org(demo_org())


def accounts(people: list[PersonInfo]) -> list[str]:
    return [p.account for p in people]


def without(directory: Directory, *gone: str) -> Directory:
    """The directory with ``gone`` revoked, as after they left their posts."""
    return Directory.build(
        directory.units.values(),
        [
            dataclasses.replace(p, state="revoked") if p.account in gone else p
            for p in directory.people.values()
        ],
    )


def test_the_it_department_is_heard_through_its_head() -> None:
    # 信息化處 is headed by 吳海峰: he alone is told of impersonation, refusals and changes.
    assert accounts(it_people(DIRECTORY)) == ["wuhaifeng"]


def test_an_it_department_without_a_head_is_still_reached_through_everyone_in_it() -> None:
    # 第四條(二): the department answers for the system, not its head alone. With the head's
    # post vacant, every active member hears (not only its clerk, not nobody); someone who
    # left does not.
    vacant = without(DIRECTORY, "wuhaifeng", "helei")
    assert accounts(it_people(vacant)) == ["mali", "zhengwei"]


def test_hr_officers_are_hr_heads_and_clerks_once_each() -> None:
    # 第六條: 人事處 keeps the leave book; its head and its clerk hear of every leave.
    assert sorted(accounts(hr_officers(DIRECTORY))) == ["guohongmei", "luomin"]


def test_office_staff_are_the_office_head_and_clerks() -> None:
    # 第六條, 第十條: the office (its head 陳志剛 and clerk 王芳) runs the modules and keeps
    # the record of clerk changes; its deputy and the seal custodian are not asked.
    assert accounts(office_staff(DIRECTORY)) == ["chenzhigang", "wangfang"]


def test_heads_of_a_person_climb_to_the_leader_in_charge_then_the_bureau_head() -> None:
    # 謝文斌's head is 梁國強; 梁國強, a head himself, answers to the bureau leader in charge
    # of his unit (第五條), and without one to the bureau's head.
    assert accounts(heads_of(DIRECTORY, "xiewenbin")) == ["liangguoqiang"]
    leader = DIRECTORY.units["inspection"].leader
    assert leader is not None
    assert accounts(heads_of(DIRECTORY, "liangguoqiang")) == [leader]
    unled = Directory.build(
        [
            dataclasses.replace(u, leader=None) if u.id == "inspection" else u
            for u in DIRECTORY.units.values()
        ],
        DIRECTORY.people.values(),
    )
    assert accounts(heads_of(unled, "liangguoqiang")) == ["zhaojianguo"]
    assert heads_of(DIRECTORY, "nobody") == []


def test_units_without_a_leader_in_charge_or_a_clerk_are_reported() -> None:
    # 第五條: each unit has a 分管領導 and a 綜合人員. The demo's departments and branches
    # without a unit_leader are named; a clerk who left leaves their unit without one.
    gaps = staffing_gaps(without(DIRECTORY, "songjia"))
    assert (
        "單位 檢驗監管處（inspection）沒有綜合人員（第五條）: unit inspection has no active clerk"
        in gaps
    )
    assert any(g.endswith("unit finance has no active unit_leader") for g in gaps)
    assert not any("unit office" in g or "unit bureau" in g for g in gaps)
    assert not any("no active clerk" in g for g in staffing_gaps(DIRECTORY))
