"""Tests for yizhan.routing.rules: the default flows, their file form, and what check finds."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from importlib import resources
from typing import Any

import pytest

from yizhan.routing.commands import Verb
from yizhan.routing.directory import Directory, parse_org
from yizhan.routing.rules import (
    DEFAULT_RULES,
    Actor,
    Flow,
    Rules,
    RulesError,
    check_rules,
    rules_from_dict,
    rules_to_dict,
)


def load_directory() -> Directory:
    """The demo bureau."""
    text = (resources.files("yizhan.demo") / "bureau.toml").read_text(encoding="utf-8")
    return parse_org(tomllib.loads(text))


DIRECTORY = load_directory()


def with_flow(flow: Flow) -> Rules:
    """The default rules with one flow replaced."""
    return Rules(flows={**DEFAULT_RULES.flows, flow.kind: flow})


def edit_step(kind: str, name: str, **changes: Any) -> Rules:
    """The default rules with one step of one flow changed."""
    flow = DEFAULT_RULES.flows[kind]
    steps = tuple(replace(s, **changes) if s.name == name else s for s in flow.steps)
    return with_flow(replace(flow, steps=steps))


def test_default_rules_are_sound_for_the_demo_bureau() -> None:
    # `yizhan check` on a fresh demo install reports nothing.
    assert check_rules(DEFAULT_RULES, DIRECTORY) == []


def test_default_flows_follow_the_regulation() -> None:
    # The four flows of issue 3, their steps in the order of 《黨政機關公文處理工作條例》.
    names = {k: [s.name for s in f.steps] for k, f in DEFAULT_RULES.flows.items()}
    assert names == {
        "fawen": ["review", "check", "signoff", "number", "seal", "receive"],
        "shouwen": ["register", "propose", "instruct", "handle"],
        "qianbao": ["review", "countersign", "signoff"],
        "hanjian": ["approve", "receive"],
        "gonggao": ["approve", "signoff"],
        "xiujia": ["approve", "signoff"],
        "biangeng": ["approve", "it_approve"],
        "xinxi": ["review", "edit"],
        "duban": ["progress", "confirm"],
        "baoxiu": ["handle"],
    }
    assert DEFAULT_RULES.flows["fawen"].states == (
        "reviewing",
        "checking",
        "signing",
        "sealing",
        "distributing",
        "returned",
        "closed",
    )
    assert "no_forwarded_documents" in DEFAULT_RULES.flows["hanjian"].content_rules


def test_urgent_documents_get_shorter_deadlines() -> None:
    # 加急 and 特急 shorten every step's limit; unknown marks get the normal one.
    review = DEFAULT_RULES.flows["fawen"].steps[0]
    assert [review.deadline_for(u) for u in (None, "加急", "特急", "平件")] == [2, 1, 0, 2]


def test_dict_form_round_trips() -> None:
    # The admin page writes rules_to_dict's form into rules.toml; reading it gives the same.
    data = rules_to_dict(DEFAULT_RULES)
    assert rules_to_dict(rules_from_dict(data)) == data
    assert rules_from_dict(data).flows["fawen"] == DEFAULT_RULES.flows["fawen"]


def test_a_rules_file_overrides_only_the_flows_it_names() -> None:
    # rules.toml with a longer 處室函 approval leaves the other flows at their defaults.
    text = """
    [[flows.hanjian.steps]]
    name = "approve"
    state = "reviewing"
    action = "approve"
    who = "role"
    roles = ["unit_head"]
    commands = ["approve", "reject", "comment"]
    deadline = 4

    [[flows.hanjian.steps]]
    name = "receive"
    state = "sent"
    action = "receive"
    who = "role"
    roles = ["clerk"]
    units = "scope_others"
    parallel = true
    commands = ["received"]
    """
    rules = rules_from_dict(tomllib.loads(text))
    assert rules.flows["hanjian"].steps[0].deadline == 4
    assert rules.flows["hanjian"].steps[0].commands == (Verb.APPROVE, Verb.REJECT, Verb.COMMENT)
    assert rules.flows["fawen"] is DEFAULT_RULES.flows["fawen"]
    # The hand-written flow keeps an approval, so check finds nothing wrong with it.
    assert [p for p in check_rules(rules, DIRECTORY) if "hanjian" in p] == []


def test_malformed_rules_file_lists_every_problem() -> None:
    # A rules file of the wrong shape is refused with one line per mistake.
    data = {
        "flow": {},
        "flows": {
            "fawen": {
                "steps": [
                    {"name": "review", "deadline": "two", "commands": ["approve", "yes"]},
                    {"name": "check", "colour": "red"},
                ]
            },
            "qianbao": {"steps": []},
        },
    }
    with pytest.raises(RulesError) as caught:
        rules_from_dict(data)
    text = "\n".join(caught.value.problems)
    for expected in ("[flow]", "deadline must be a int", "unknown command 'yes'", "'colour'"):
        assert expected in text
    assert "flows.qianbao: steps must be a non-empty array" in text


@pytest.mark.parametrize(
    ("rules", "problem"),
    [
        (
            edit_step("fawen", "review", actor=Actor(kind="role", roles=("boss",))),
            "unknown role 'boss'",
        ),
        (edit_step("fawen", "check", reject_to="nowhere"), "unknown step 'nowhere'"),
        (edit_step("fawen", "review", reject_to="signoff"), "earlier person's step"),
        (edit_step("fawen", "review", next="signoff"), "step check can never be reached"),
        (
            edit_step("hanjian", "approve", action="read", commands=(Verb.READ,)),
            "no approval step",
        ),
        (
            edit_step("fawen", "check", actor=Actor(kind="role", roles=("clerk",), units="kind:x")),
            "unit kind 'x'",
        ),
        (edit_step("fawen", "receive", parallel=False), "parallel must be true"),
        (edit_step("fawen", "review", commands=(Verb.REJECT,)), "does not accept approve"),
        (edit_step("fawen", "review", urgent_deadlines={"很急": 0}), "urgency '很急'"),
        (edit_step("fawen", "seal", template="nope"), "template 'nope'"),
        (
            edit_step("shouwen", "instruct", names_units=False),
            "no earlier step names the instructed units",
        ),
        (
            edit_step("fawen", "check", actor=Actor(kind="person", account="nobody")),
            "'nobody' is not an active person",
        ),
    ],
)
def test_check_finds_broken_rules(rules: Rules, problem: str) -> None:
    # Each kind of mistake an administrator can make in rules.toml is reported by name.
    problems = check_rules(rules, DIRECTORY)
    assert any(problem in p for p in problems), problems


def test_check_finds_seal_before_number() -> None:
    # Sealing an unnumbered document is a broken flow (第十八條: sealed with its number).
    flow = DEFAULT_RULES.flows["fawen"]
    steps = list(flow.steps)
    steps[3], steps[4] = steps[4], steps[3]
    problems = check_rules(with_flow(replace(flow, steps=tuple(steps))), DIRECTORY)
    assert any("seal step must come after a number" in p for p in problems)


def test_check_finds_missing_unit_kinds_and_roles() -> None:
    # An organisation without an office has no one to check (核稿) or keep the seal.
    units = [u for u in DIRECTORY.units.values() if u.kind != "office"]
    people = [p for p in DIRECTORY.people.values() if p.unit != "office"]
    problems = check_rules(DEFAULT_RULES, Directory.build(units, people))
    assert any("no unit of kind 'office'" in p and "fawen" in p for p in problems)
    no_custodian = [
        replace(p, roles=p.roles - {"seal_custodian"}) for p in DIRECTORY.people.values()
    ]
    problems = check_rules(DEFAULT_RULES, Directory.build(DIRECTORY.units.values(), no_custodian))
    assert any("seal_custodian" in p for p in problems)
