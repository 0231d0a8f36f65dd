"""What may follow what in a flow (:func:`transitions`) and what must always hold of a
document (:func:`check_invariants`); the property tests drive random commands through the
engine and check both."""

from __future__ import annotations

from collections.abc import Mapping

from yizhan.routing.commands import Verb
from yizhan.routing.documents import DocumentState, StepState
from yizhan.routing.numbering import parse_number
from yizhan.routing.rules import (
    AUTHOR,
    CLOSED,
    COMPLETING_VERB,
    DEFAULT_RULES,
    OBJECTION_STEP,
    REDISTRIBUTE_STEP,
    RETURNED,
    REVISE_STEP,
    Flow,
    Rules,
    StepRule,
)
from yizhan.routing.workflow.base import NEW
from yizhan.routing.workflow.units import units_in_scope


def transitions(flow: Flow) -> Mapping[tuple[str, str], frozenset[str]]:
    """Which states may follow each (state, event) in ``flow``.

    Events: ``open`` (from :data:`NEW`), ``complete`` (every person of the waiting step has
    done it), ``reject`` and ``revise``. FORWARD, COMMENT and one of several parallel steps
    being done leave the state as it is.
    """
    table: dict[tuple[str, str], frozenset[str]] = {}
    first = flow.steps[0] if flow.steps else None
    table[(NEW, "open")] = _entries(flow, first)
    table[(RETURNED, "revise")] = _entries(flow, first)
    for step in flow.steps:
        if step.action == "number":
            continue
        table[(step.state, "complete")] = _entries(flow, flow.following(step))
        # A receiving clerk's REJECT sends back their copy only; the state stays (第二十一條).
        if Verb.REJECT in step.commands and step.action != "receive":
            target = flow.step(step.reject_to) if step.reject_to != AUTHOR else None
            table[(step.state, "reject")] = frozenset({target.state if target else RETURNED})
    return table


def check_invariants(doc: DocumentState, rules: Rules = DEFAULT_RULES) -> list[str]:
    """Everything wrong with ``doc`` as a document of its flow; empty when it is sound.

    A closed document has every approval of its last round; any other has someone asked to
    act, at the step of its state; every step before the current one is complete; a number is
    issued only after the approvals before the number step, and steps after it (the seal) are
    done only once there is a number.
    """
    flow = rules.flow(doc.kind)
    if flow is None:
        return [f"no flow for kind {doc.kind!r}"]
    problems: list[str] = []
    if doc.state not in flow.states:
        problems.append(f"state {doc.state!r} is not a state of {doc.kind}")
    if doc.version < 1:
        problems.append(f"version {doc.version} is below 1")
    waiting = [s for s in doc.steps if s.state == "waiting"]
    for s in doc.steps:
        if s.state not in ("waiting", "done", "cancelled"):
            problems.append(f"step {s.name} has unknown state {s.state!r}")
        if s.state == "done" and not s.done_by:
            problems.append(f"step {s.name} is done by nobody")
    if doc.state == CLOSED and waiting:
        problems.append(f"closed, yet {len(waiting)} step(s) still wait")
    if doc.state != CLOSED and not waiting:
        problems.append(f"in state {doc.state} but no one is asked to act")
    if doc.state == RETURNED:
        if len(waiting) != 1 or waiting[0].name != REVISE_STEP:
            problems.append("returned, but the only waiting step is not the author's revision")
        elif doc.author not in (waiting[0].assignee, waiting[0].on_behalf_of):
            problems.append("returned to someone other than the author")
    else:
        problems.extend(_check_waiting(flow, doc, waiting))
    problems.extend(_check_progress(flow, doc))
    problems.extend(_check_number(flow, doc))
    return problems


# --- Transitions and invariants --------------------------------------------------------------


def _entries(flow: Flow, step: StepRule | None) -> frozenset[str]:
    """The states entering the flow at ``step`` can rest in (optional steps may be skipped)."""
    states: set[str] = set()
    seen: set[str] = set()
    while step is not None and step.name not in seen:
        seen.add(step.name)
        if step.action != "number":
            states.add(step.state)
            if not step.optional and step.when is None:
                return frozenset(states)
        step = flow.following(step)
    return frozenset({*states, CLOSED})


def _path(flow: Flow) -> list[StepRule]:
    path: list[StepRule] = []
    step = flow.steps[0] if flow.steps else None
    while step is not None and step not in path:
        path.append(step)
        step = flow.following(step)
    return path


def _round(doc: DocumentState) -> list[StepState]:
    """The steps since the author last revised the document (all of them if never)."""
    last = max(
        (i for i, s in enumerate(doc.steps) if s.name == REVISE_STEP and s.state == "done"),
        default=-1,
    )
    return list(doc.steps[last + 1 :])


def _expected_units(doc: DocumentState, rule: StepRule) -> list[str]:
    actor = rule.actor
    if actor is None:
        return []
    if actor.units == "scope":
        return units_in_scope(doc.fields)
    if actor.units == "scope_others":
        return [u for u in units_in_scope(doc.fields) if u != doc.unit]
    if actor.units == "instructed":
        return list(doc.fields.get("handling_units", ()))
    return []


def _complete_in(rule: StepRule, steps: list[StepState], doc: DocumentState) -> bool:
    """True when the last word of everyone asked at ``rule`` among ``steps`` completes it."""
    outcome = COMPLETING_VERB[rule.action].value
    mine = [s for s in steps if s.name == rule.name and s.state != "cancelled"]
    if rule.parallel:
        units = _expected_units(doc, rule)
        if not units:
            return rule.optional
        for unit in units:
            last = [s for s in mine if s.unit == unit]
            if not last or last[-1].state != "done" or last[-1].outcome != outcome:
                return False
        return True
    return bool(mine) and mine[-1].state == "done" and mine[-1].outcome == outcome


def _check_waiting(flow: Flow, doc: DocumentState, waiting: list[StepState]) -> list[str]:
    problems = []
    for s in waiting:
        rule = flow.step(s.name)
        if s.name == OBJECTION_STEP:
            continue
        if s.name == REDISTRIBUTE_STEP:
            receiving = {r.state for r in flow.steps if r.action == "receive"}
            if doc.state not in receiving:
                problems.append(f"a refused copy waits while the document is {doc.state}")
        elif rule is None:
            problems.append(f"waiting step {s.name} is not in the flow")
        elif rule.state != doc.state:
            problems.append(f"step {s.name} waits while the document is {doc.state}")
        elif not rule.parallel and len([w for w in waiting if w.name == s.name]) > 1:
            problems.append(f"step {s.name} waits on more than one person")
        elif rule.parallel and len([w for w in waiting if w.unit == s.unit]) > 1:
            problems.append(f"step {s.name} waits on more than one person for unit {s.unit}")
    return problems


def _check_progress(flow: Flow, doc: DocumentState) -> list[str]:
    """Every step before the current one is complete in the current round."""
    if doc.state == RETURNED:
        return []
    problems = []
    current = _round(doc)
    for rule in _path(flow):
        if not rule.applies(doc.fields):
            continue
        if rule.action != "number" and rule.state == doc.state:
            break
        if rule.action == "number":
            if doc.number is None:
                problems.append(f"{doc.state} reached past {rule.name} without a number")
        elif not _complete_in(rule, current, doc):
            problems.append(f"{doc.state} reached without {rule.name} ({rule.label}) complete")
    return problems


def _check_number(flow: Flow, doc: DocumentState) -> list[str]:
    """A number only after the approvals before it; nothing after it done without one."""
    path = _path(flow)
    numbering = next((i for i, r in enumerate(path) if r.action == "number"), None)
    problems = []
    if numbering is None:
        if doc.number is not None:
            problems.append(f"has number {doc.number} but its flow numbers nothing")
        return problems
    if doc.number is not None:
        if parse_number(doc.number) is None:
            problems.append(f"number {doc.number!r} is not a document number")
        for rule in path[:numbering]:
            approved = any(
                s.name == rule.name and s.state == "done" and s.outcome == "approve"
                for s in doc.steps
            )
            if rule.action == "approve" and not rule.optional and not approved:
                problems.append(f"numbered without {rule.name} ({rule.label}) ever approved")
    else:
        later = {r.name for r in path[numbering + 1 :]}
        for s in doc.steps:
            if s.name in later and s.state == "done" and s.outcome not in ("forward", "reject"):
                problems.append(f"step {s.name} done before the document had a number")
    return problems
