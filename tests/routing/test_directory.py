"""Tests for yizhan.routing.directory: reading organisation files and asking who is who."""

from __future__ import annotations

import pytest

from yizhan.routing.directory import OrgError, PersonInfo, parse_org


def _org(**extra: object) -> dict[str, object]:
    org: dict[str, object] = {
        "unit": [
            {"id": "bureau", "name": "局", "kind": "bureau"},
            {
                "id": "office",
                "name": "辦公室",
                "kind": "office",
                "parent": "bureau",
                "leader": "lijun",
            },
        ],
        "person": [
            {"account": "lijun", "name": "李軍", "unit": "bureau", "roles": ["bureau_leader"]},
            {
                "account": "wangfang",
                "name": "王芳",
                "unit": "office",
                "roles": ["clerk"],
                "email": "WangFang@bureau.example",
            },
        ],
    }
    org.update(extra)
    return org


def test_people_are_found_by_either_address() -> None:
    # DESIGN.md: a person is known by their own mailbox and by account@<OA domain>.
    directory = parse_org(_org())
    assert directory.person_by_address("wangfang@oa.example", "oa.example") is not None
    found = directory.person_by_address("wangfang@BUREAU.example", "oa.example")
    assert found is not None and found.name == "王芳"
    assert directory.person_by_address("wangfang@elsewhere.example", "oa.example") is None
    assert directory.members("office", "clerk")[0].account == "wangfang"
    assert directory.unit_by_ref("辦公室") is directory.units["office"]


def test_every_problem_is_listed_at_once() -> None:
    # An org file with several mistakes gets all of them in one answer.
    org = _org()
    org["person"] = [
        {"account": "lijun", "name": "李軍", "unit": "bureau", "roles": ["boss"]},
        {"account": "Wang Fang", "name": "王芳", "unit": "nowhere"},
    ]
    with pytest.raises(OrgError) as caught:
        parse_org(org)
    text = str(caught.value)
    assert "role 'boss'" in text
    assert "lower-case ASCII" in text
    assert "leader 'lijun' is not" in text


def test_parent_loops_and_dangling_parents_are_refused() -> None:
    # A unit cannot be its own ancestor; a parent must exist.
    org = _org()
    org["unit"] = [
        {"id": "bureau", "name": "局", "kind": "bureau"},
        {"id": "a", "name": "A", "kind": "department", "parent": "b"},
        {"id": "b", "name": "B", "kind": "department", "parent": "a"},
        {"id": "c", "name": "C", "kind": "department", "parent": "zz"},
    ]
    org["person"] = []
    with pytest.raises(OrgError) as caught:
        parse_org(org)
    assert "loop" in str(caught.value)
    assert "parent 'zz' is not a unit id" in str(caught.value)


def test_a_person_is_delivered_to_their_own_mailbox_else_their_oa_address() -> None:
    own = PersonInfo(
        account="wangfang", name="王芳", unit="office", roles=frozenset(), email="w@b.example"
    )
    assert own.mailbox("oa.example") == "w@b.example"
    none = PersonInfo(account="lijun", name="李軍", unit="bureau", roles=frozenset())
    assert none.mailbox("oa.example") == "lijun@oa.example"
