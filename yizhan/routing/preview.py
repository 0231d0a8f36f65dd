"""Walks a sample document through a flow, everyone approving, to show what a rules change does.

The admin page's preview (issue 14): before a changed rules file is saved, a sample document of
the chosen kind is opened by ``routing.workflow.open_document`` and each step it reaches is
completed by the person asked, with the command that completes it, until the flow ends, a step
refuses, or a bound is reached. Nothing is stored; time is passed in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace

from yizhan.routing.commands import parse_command
from yizhan.routing.directory import Directory
from yizhan.routing.documents import Decision, DocumentState, StepState
from yizhan.routing.numbering import format_number
from yizhan.routing.rules import COMPLETING_VERB, Rules
from yizhan.routing.workflow import Due, apply_command, assign_number, open_document

__all__ = ["PreviewStage", "PreviewWalk", "walk"]

#: Decisions a preview makes at most (a flow that loops stops here).
MAX_DECISIONS = 60


@dataclass(frozen=True, kw_only=True)
class PreviewStage:
    """Steps opened together: their name and label, who is asked, and their deadline."""

    step: str
    label: str
    state: str
    action: str
    asked: tuple[str, ...]
    deadline_days: int


@dataclass(frozen=True, kw_only=True)
class PreviewWalk:
    """The stages the sample went through, and how the walk ended."""

    stages: tuple[PreviewStage, ...]
    closed: bool
    refusal: str | None = None
    number: str | None = None


def walk(
    *,
    kind: str,
    rules: Rules,
    directory: Directory,
    author: str,
    to_units: Sequence[str],
    now: dt.datetime,
    due: Due,
    urgency: str | None = None,
    title: str = "預覽 Preview",
) -> PreviewWalk:
    """Open a sample ``kind`` document by ``author`` to ``to_units`` and complete every step."""
    decision = open_document(
        kind=kind,
        title=title,
        author=author,
        urgency=urgency,
        to_units=to_units,
        scope_units=to_units,
        directory=directory,
        rules=rules,
        now=now,
        due=due,
    )
    if not decision.accepted:
        return PreviewWalk(stages=(), closed=False, refusal=decision.reply)
    person = directory.people[author]
    doc = DocumentState(
        id=1, kind=kind, title=title, state="new", author=author, unit=person.unit, urgency=urgency
    )
    flow = rules.flow(kind)
    assert flow is not None
    stages: list[PreviewStage] = []
    units_text = "、".join(directory.units[u].name for u in to_units if u in directory.units)
    for _ in range(MAX_DECISIONS):
        decision = _numbered(decision, now)
        doc = _applied(doc, decision, now)
        for opened in _group(decision):
            rule = flow.step(opened[0].name)
            stages.append(
                PreviewStage(
                    step=opened[0].name,
                    label=rule.label if rule else opened[0].name,
                    state=decision.state or doc.state,
                    action=opened[0].action,
                    asked=tuple(
                        directory.people[s.assignee].name
                        if s.assignee in directory.people
                        else s.assignee
                        for s in opened
                    ),
                    deadline_days=rule.deadline_for(urgency) if rule else 0,
                )
            )
        waiting = [s for s in doc.steps if s.state == "waiting"]
        if not waiting:
            return PreviewWalk(stages=tuple(stages), closed=True, number=doc.number)
        step = waiting[0]
        rule = flow.step(step.name)
        verb = COMPLETING_VERB.get(step.action)
        if verb is None or rule is None:
            return PreviewWalk(
                stages=tuple(stages),
                closed=False,
                refusal=f"step {step.name}: nothing completes it",
            )
        argument = units_text if rule.names_units else ""
        now += dt.timedelta(hours=1)
        decision = apply_command(
            doc=doc,
            step_id=step.id,
            command=parse_command(f"{verb.value.upper()} {argument}".strip()),
            actor=step.assignee,
            directory=directory,
            rules=rules,
            now=now,
            due=due,
        )
        if not decision.accepted:
            return PreviewWalk(stages=tuple(stages), closed=False, refusal=decision.reply)
    return PreviewWalk(
        stages=tuple(stages), closed=False, refusal=f"stopped after {MAX_DECISIONS} decisions"
    )


def _numbered(decision: Decision, now: dt.datetime) -> Decision:
    if decision.needs_number is None:
        return decision
    return assign_number(decision, format_number(decision.needs_number, now.year, 1))


def _applied(doc: DocumentState, decision: Decision, now: dt.datetime) -> DocumentState:
    """The document after ``decision``, as the store would leave it."""
    steps = []
    for s in doc.steps:
        if s.id in decision.close_steps:
            s = replace(s, state="done", done_by=s.assignee, done_at=now, outcome=decision.outcome)
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
        steps=tuple(steps),
        trail=doc.trail + decision.trail,
    )


def _group(decision: Decision) -> list[list[StepState]]:
    groups: dict[str, list[StepState]] = {}
    for s in decision.open_steps:
        groups.setdefault(s.name, []).append(s)
    return list(groups.values())
