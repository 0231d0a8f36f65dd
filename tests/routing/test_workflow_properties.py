"""Property tests for yizhan.routing.workflow: no sequence of commands breaks a document.

Hypothesis opens a document of each flow and sends it random replies: mostly the right
person's right command (so that documents get somewhere), mixed with wrong people, wrong
commands, stale steps, delegates, rejections, forwards, comments and revisions. Each accepted
decision is applied by a tiny in-test store. After every one the document must pass
``check_invariants``, its state must follow :func:`transitions`, and a closed document must
hold every approval of its flow given after its last revision.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import replace
from importlib import resources

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from yizhan.routing.commands import parse_command
from yizhan.routing.directory import Directory, parse_org
from yizhan.routing.documents import Decision, DocumentState, StepState
from yizhan.routing.numbering import format_number
from yizhan.routing.rules import COMPLETING_VERB, DEFAULT_RULES
from yizhan.routing.workflow import (
    apply_command,
    assign_number,
    check_invariants,
    open_document,
    revise_document,
    transitions,
)

START = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)


def load_directory() -> Directory:
    """The demo bureau."""
    text = (resources.files("yizhan.demo") / "bureau.toml").read_text(encoding="utf-8")
    return parse_org(tomllib.loads(text))


DIRECTORY = load_directory()
PEOPLE = sorted(DIRECTORY.people)

# The documents each flow is opened with: (author, to, cc, scope).
OPENINGS: dict[str, list[tuple[str, list[str], list[str], list[str]]]] = {
    "fawen": [
        ("xiewenbin", ["dalian", "dandong"], ["finance"], []),
        ("wangfang", ["inspection"], [], ["office"]),
        ("zhaojianguo", ["it"], [], []),
    ],
    "qianbao": [
        ("helei", [], [], ["quarantine", "finance"]),
        ("pengliang", [], [], []),
        ("xiewenbin", [], [], ["inspection", "hr", "dalian"]),
    ],
    "shouwen": [("wangfang", [], [], []), ("songjia", [], [], [])],
    "hanjian": [
        ("xiewenbin", ["quarantine", "dalian"], [], []),
        ("gaofeng", ["it"], ["inspection"], []),
    ],
}

# What people reply, besides each step's own command.
REPLIES = [
    "同意",
    "同意，請檢驗監管處、大連分局辦理",
    "APPROVE: finance, it",
    "退回：內容需修改",
    "退回",
    "簽收",
    "辦結：已辦",
    "用印",
    "已閱",
    "意見：請抓緊",
    "意見",
    "FORWARD",
    "隨便寫寫",
]


def due(now: dt.datetime, days: int, urgency: str | None) -> dt.datetime:
    """A stand-in calendar: every day works."""
    return now + dt.timedelta(days=days, hours=8)


def apply_decision(
    doc: DocumentState, decision: Decision, *, actor: str, now: dt.datetime
) -> DocumentState:
    """The document after ``decision``: what mailstore does in its transaction."""
    steps = []
    for s in doc.steps:
        if s.id in decision.close_steps:
            s = replace(s, state="done", done_by=actor, done_at=now, outcome=decision.outcome)
        elif s.id in decision.cancel_steps:
            s = replace(s, state="cancelled", done_at=now)
        steps.append(s)
    next_id = max((s.id or 0 for s in steps), default=0) + 1
    steps.extend(replace(s, id=next_id + i) for i, s in enumerate(decision.open_steps))
    return replace(
        doc,
        state=decision.state or doc.state,
        fields={**doc.fields, **decision.fields},
        number=decision.number or doc.number,
        title=decision.title or doc.title,
        version=decision.version or doc.version,
        steps=tuple(steps),
        trail=doc.trail + decision.trail,
    )


class Store:
    """Numbers per prefix and year, allocated without gaps, as the store's sequence table."""

    def __init__(self) -> None:
        self.last: dict[str, int] = {}
        self.issued: list[str] = []

    def complete(self, decision: Decision, year: int) -> Decision:
        """The decision with its number filled in, if it asked for one."""
        if decision.needs_number is None:
            return decision
        self.last[decision.needs_number] = self.last.get(decision.needs_number, 0) + 1
        number = format_number(decision.needs_number, year, self.last[decision.needs_number])
        self.issued.append(number)
        return assign_number(decision, number)


def right_reply(step: StepState) -> str:
    """The command that completes ``step`` (with units for an instruction)."""
    if step.name == "instruct":
        return "同意，請衛生檢疫處、財務處辦理"
    word = {"approve": "同意", "seal": "用印", "receive": "簽收", "handle": "辦結", "read": "已閱"}
    return word[step.action]


def approvals_since_revision(doc: DocumentState) -> set[str]:
    """Names of the steps approved after the author's last revision."""
    revised = max(
        (i for i, s in enumerate(doc.steps) if s.name == "revise" and s.state == "done"),
        default=-1,
    )
    return {
        s.name for s in doc.steps[revised + 1 :] if s.state == "done" and s.outcome == "approve"
    }


@pytest.mark.parametrize("kind", sorted(OPENINGS))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_no_sequence_of_commands_breaks_a_document(kind: str, data: st.DataObject) -> None:
    # Scenario: any mix of right and wrong replies, delegates, forwards, rejections and
    # revisions, applied to a document of each flow. Nothing may reach an invalid state, and
    # nothing may close without every approval its flow requires.
    flow = DEFAULT_RULES.flows[kind]
    table = transitions(flow)
    author, to, cc, scope = data.draw(st.sampled_from(OPENINGS[kind]), label="opening")
    urgency = data.draw(st.sampled_from([None, "加急", "特急"]), label="urgency")
    now = START
    store = Store()
    opened = open_document(
        kind=kind,
        title="測試公文",
        author=author,
        urgency=urgency,
        to_units=to,
        cc_units=cc,
        scope_units=scope,
        directory=DIRECTORY,
        rules=DEFAULT_RULES,
        now=now,
        due=due,
    )
    assert opened.accepted, opened.reply
    assert opened.state in table[("new", "open")]
    doc = DocumentState(
        id=1,
        kind=kind,
        title="測試公文",
        state="new",
        author=author,
        unit=DIRECTORY.people[author].unit,
        urgency=urgency,
    )
    doc = apply_decision(doc, store.complete(opened, now.year), actor=author, now=now)
    assert check_invariants(doc) == []

    for _ in range(data.draw(st.integers(1, 40), label="moves")):
        now += dt.timedelta(minutes=7)
        before = doc.state
        waiting = [s for s in doc.steps if s.state == "waiting"]
        # A returned document is mostly revised by its author, so that rounds two and three
        # get exercised too.
        moves = ["right"] * 6 + ["random", "delegate", "revise"]
        if doc.state == "returned":
            moves += ["revise"] * 6
        move = data.draw(st.sampled_from(moves))
        actor, obo = author, None
        decision: Decision
        if move == "revise":
            forwards = data.draw(st.booleans()) and kind == "hanjian"
            decision = revise_document(
                doc=doc,
                actor=data.draw(st.sampled_from([author] * 3 + PEOPLE[:3])),
                forwards_document=forwards,
                directory=DIRECTORY,
                rules=DEFAULT_RULES,
                now=now,
                due=due,
            )
            actor = author
            cause = "revise"
        else:
            step: StepState | None
            if waiting and move in ("right", "delegate"):
                step = data.draw(st.sampled_from(waiting))
            else:
                step = data.draw(st.sampled_from([None, *doc.steps]))
            if move == "right" and step is not None:
                actor = step.assignee
                # The asked person mostly completes the step, and fairly often rejects it:
                # rejections in the middle of parallel steps are where flows break.
                reject = "退回：內容需修改"
                text = data.draw(st.sampled_from([right_reply(step)] * 6 + [reject] * 3 + REPLIES))
            elif move == "delegate" and step is not None:
                actor = data.draw(st.sampled_from(PEOPLE))
                obo = step.assignee
                text = right_reply(step)
            else:
                actor = data.draw(st.sampled_from(PEOPLE))
                text = data.draw(st.sampled_from(REPLIES))
            if text == "FORWARD":
                text = f"轉交 {data.draw(st.sampled_from(PEOPLE))}"
            command = parse_command(text)
            decision = apply_command(
                doc=doc,
                step_id=step.id if step is not None else None,
                command=command,
                actor=actor,
                on_behalf_of=obo,
                directory=DIRECTORY,
                rules=DEFAULT_RULES,
                now=now,
                due=due,
            )
            verb = command.verb
            cause = "reject" if verb.value == "reject" else "complete"
            if verb not in COMPLETING_VERB.values() and verb.value != "reject":
                cause = "none"
        # A refusal always says why, and changes nothing.
        assert decision.reply and decision.reasons
        if not decision.accepted:
            assert decision.state is None and not decision.open_steps and not decision.trail
            continue
        if decision.needs_number is not None:
            assert decision.number is None
        doc = apply_decision(doc, store.complete(decision, now.year), actor=actor, now=now)
        assert check_invariants(doc) == [], (check_invariants(doc), doc)
        if doc.state != before:
            assert doc.state in table.get((before, cause), frozenset()), (before, cause, doc.state)
        if doc.state == "closed":
            break

    event(f"final state {doc.state}")
    event(f"version {doc.version}")
    # Numbers are issued once each, and only the one the document carries.
    assert len(store.issued) == len(set(store.issued)) <= 1
    assert doc.number == (store.issued[0] if store.issued else None)
    if doc.state == "closed":
        required = {s.name for s in flow.steps if s.action == "approve" and not s.optional}
        assert required <= approvals_since_revision(doc), (required, doc.steps)
        if kind == "fawen":
            assert doc.number is not None
            assert any(s.name == "seal" and s.outcome == "seal" for s in doc.steps)


def test_the_walks_do_reach_closed() -> None:
    # Scenario: the right people giving the right replies close every flow, so the property
    # test above does exercise closing (it is biased towards these moves).
    for kind, openings in OPENINGS.items():
        author, to, cc, scope = openings[0]
        decision = open_document(
            kind=kind,
            title="t",
            author=author,
            urgency=None,
            to_units=to,
            cc_units=cc,
            scope_units=scope,
            directory=DIRECTORY,
            rules=DEFAULT_RULES,
            now=START,
            due=due,
        )
        store = Store()
        doc = DocumentState(
            id=1,
            kind=kind,
            title="t",
            state="new",
            author=author,
            unit=DIRECTORY.people[author].unit,
        )
        doc = apply_decision(doc, store.complete(decision, 2026), actor=author, now=START)
        for _ in range(30):
            waiting = [s for s in doc.steps if s.state == "waiting"]
            if not waiting:
                break
            step = waiting[0]
            decision = apply_command(
                doc=doc,
                step_id=step.id,
                command=parse_command(right_reply(step)),
                actor=step.assignee,
                directory=DIRECTORY,
                rules=DEFAULT_RULES,
                now=START,
                due=due,
            )
            assert decision.accepted, decision.reply
            doc = apply_decision(
                doc, store.complete(decision, 2026), actor=step.assignee, now=START
            )
            assert check_invariants(doc) == []
        assert doc.state == "closed", kind
