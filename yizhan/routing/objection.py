"""Dissent goes to the leader (第二十條 ¶2): an objection to a document, and its decision.

Anyone on a document (its author, anyone asked to act on it, or a person they act for) may
reply OBJECT (異議, 异议) with the reason while the document is under way. The objection
reaches the bureau leader in charge of the drafting unit (``duties.leader_in_charge``) as an
``objection`` step to decide, and the document waits: no other step can be acted on until
then (COMMENT still can). APPROVE upholds it: every waiting step is withdrawn and the document
goes back to its author, with the objection, to revise. REJECT (with the reason) overrules it:
the objection step closes and the document goes on where it stood. The objector hears the
decision either way.

Pure functions, called by ``routing.workflow.apply_command``, which passes in what it has
worked out (the template variables).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any, Final

from yizhan.routing.commands import Command, Verb
from yizhan.routing.directory import Directory
from yizhan.routing.documents import Decision, DocumentState, Notice, StepState, TrailEntry
from yizhan.routing.duties import leader_in_charge
from yizhan.routing.rules import CLOSED, OBJECTION_STEP, RETURNED, REVISE_STEP

__all__ = ["OBJECTION_DAYS", "decide_objection", "object_to", "objection_waiting", "on_document"]

#: Working days the leader has to decide an objection.
OBJECTION_DAYS: Final = 2

Due = Callable[[dt.datetime, int, str | None], dt.datetime]


def on_document(doc: DocumentState, account: str) -> bool:
    """Whether ``account`` is on ``doc``: its author, or asked (or acted for) at any step."""
    people = {doc.author} | {s.assignee for s in doc.steps}
    people |= {s.on_behalf_of for s in doc.steps if s.on_behalf_of}
    return account in people


def objection_waiting(doc: DocumentState) -> StepState | None:
    """The objection the document waits on, if any."""
    return next((s for s in doc.steps if s.name == OBJECTION_STEP and s.state == "waiting"), None)


def object_to(
    *,
    doc: DocumentState,
    reason: str,
    actor: str,
    on_behalf_of: str | None,
    variables: Mapping[str, Any],
    directory: Directory,
    now: dt.datetime,
    due: Due,
) -> Decision:
    """OBJECT with a reason: a step for the leader in charge of the drafting unit to decide."""
    if not reason.strip():
        return _refusal(
            "異議需要說明理由：請回覆「異議：理由」。\n"
            "An objection needs a reason: reply “OBJECT: reason”.",
            "OBJECT without a reason",
        )
    if not on_document(doc, actor) and not (on_behalf_of and on_document(doc, on_behalf_of)):
        return _refusal(
            "只有本件的起草人和經辦人可以提出異議。\n"
            "Only the author and the people asked to act on this document may object to it.",
            f"{actor} is not on the document",
        )
    if doc.state in (CLOSED, RETURNED):
        return _refusal(
            "本件已辦結或已退回起草人，不能再提出異議；如有意見，請回覆「意見：內容」。\n"
            "This document is closed or back with its author; an objection is no longer "
            "possible. Reply “COMMENT: text” to have your view recorded.",
            f"OBJECT in state {doc.state}",
        )
    pending = objection_waiting(doc)
    if pending is not None:
        leader = _name(directory, pending.assignee)
        return _refusal(
            f"本件已有異議待{leader}裁決；如需補充，請回覆「意見：內容」。\n"
            f"An objection to this document already waits for {leader}; reply "
            "“COMMENT: text” to add to it.",
            "an objection is already waiting",
        )
    found = leader_in_charge(directory, doc.unit)
    if found is None:
        return _refusal(
            "沒有局領導可以裁決異議，請聯繫辦公室。\nNo bureau leader can decide the objection.",
            "no bureau_leader",
        )
    leader, why = found
    step = StepState(
        id=None,
        name=OBJECTION_STEP,
        assignee=leader,
        action="approve",
        due_at=due(now, OBJECTION_DAYS, doc.urgency),
        unit=doc.unit,
    )
    return Decision(
        accepted=True,
        reply=(
            f"已將您對「{doc.title}」的異議送{_name(directory, leader)}裁決；裁決前本件暫停辦理。\n"
            f'Your objection to "{doc.title}" has gone to {_name(directory, leader)} to decide; '
            "the document waits for the decision."
        ),
        state=doc.state,
        open_steps=(step,),
        trail=(
            TrailEntry(
                at=now,
                actor=actor,
                action="object",
                on_behalf_of=on_behalf_of,
                opinion=reason.strip(),
                step=OBJECTION_STEP,
            ),
        ),
        notices=(
            Notice(
                to=leader,
                template="objection",
                action="approve",
                step_index=0,
                variables={
                    **variables,
                    "opinion": reason.strip(),
                    "by": actor,
                    "by_name": _name(directory, actor),
                    "due_at": step.due_at,
                },
            ),
        ),
        reasons=(f"第二十條: {actor} objects; {why} ({leader}) decides",),
        outcome="object",
    )


def decide_objection(
    *,
    doc: DocumentState,
    step: StepState,
    command: Command,
    actor: str,
    on_behalf_of: str | None,
    variables: Mapping[str, Any],
    revise_days: int,
    directory: Directory,
    now: dt.datetime,
    due: Due,
) -> Decision:
    """The leader's APPROVE (upheld: back to the author) or REJECT (overruled: goes on)."""
    objector, reason = _objection_of(doc)
    opinion = command.opinion.strip()
    if command.verb is Verb.APPROVE:
        return _uphold(
            doc, step, objector, reason, opinion, actor, on_behalf_of, variables, revise_days,
            directory, now, due,
        )  # fmt: skip
    if command.verb is Verb.REJECT:
        if not opinion:
            return _refusal(
                "駁回異議需要說明理由：請回覆「退回：理由」。\n"
                "Overruling an objection needs a reason: reply “REJECT: reason”.",
                "objection overruled without a reason",
            )
        return Decision(
            accepted=True,
            reply=(
                f"已駁回對「{doc.title}」的異議，本件繼續辦理。\n"
                f'The objection to "{doc.title}" is overruled; the document goes on.'
            ),
            state=doc.state,
            close_steps=(step.id,) if step.id is not None else (),
            trail=(_trail(now, actor, on_behalf_of, "overrule", opinion),),
            notices=_told(objector, "objection_overruled", variables, opinion, actor),
            reasons=(f"第二十條: {actor} overrules the objection of {objector}",),
            outcome="reject",
        )
    return _refusal(
        "請裁決異議：回覆「同意」支持異議（本件退回起草人），或「退回：理由」駁回異議（本件繼續辦理）。\n"
        "Decide the objection: reply APPROVE to uphold it (the document goes back to its "
        "author), or “REJECT: reason” to overrule it (the document goes on).",
        f"{command.verb.value} at {OBJECTION_STEP}",
    )


def _uphold(
    doc: DocumentState,
    step: StepState,
    objector: str,
    reason: str,
    opinion: str,
    actor: str,
    on_behalf_of: str | None,
    variables: Mapping[str, Any],
    revise_days: int,
    directory: Directory,
    now: dt.datetime,
    due: Due,
) -> Decision:
    withdrawn = [s for s in doc.steps if s.state == "waiting" and s.id != step.id]
    revise = StepState(
        id=None,
        name=REVISE_STEP,
        assignee=doc.author,
        action="handle",
        due_at=due(now, revise_days, doc.urgency),
        unit=doc.unit,
    )
    because = f"異議 objection（{_name(directory, objector)}）：{reason}"
    if opinion:
        because += f"\n{_name(directory, actor)}：{opinion}"
    notices = [
        Notice(
            to=doc.author,
            template="rejected",
            action="handle",
            step_index=0,
            variables={**variables, "opinion": because, "by": actor, "due_at": revise.due_at},
        ),
        *(
            Notice(
                to=s.assignee,
                template="withdrawn",
                on_behalf_of=s.on_behalf_of,
                variables={**variables, "opinion": because, "by": actor},
            )
            for s in withdrawn
        ),
    ]
    if objector != doc.author:
        notices.extend(_told(objector, "objection_upheld", variables, opinion, actor))
    return Decision(
        accepted=True,
        reply=(
            f"已支持對「{doc.title}」的異議，本件退回起草人修改。\n"
            f'The objection to "{doc.title}" is upheld; the document goes back to its author.'
        ),
        state=RETURNED,
        open_steps=(revise,),
        close_steps=(step.id,) if step.id is not None else (),
        cancel_steps=tuple(s.id for s in withdrawn if s.id is not None),
        trail=(_trail(now, actor, on_behalf_of, "uphold", opinion or reason),),
        notices=tuple(notices),
        reasons=(f"第二十條: {actor} upholds the objection of {objector}; back to the author",),
        outcome="approve",
    )


def _objection_of(doc: DocumentState) -> tuple[str, str]:
    """Who made the objection now waiting, and why (the trail's last ``object`` line)."""
    for entry in reversed(doc.trail):
        if entry.action == "object":
            return entry.on_behalf_of or entry.actor, entry.opinion
    return doc.author, ""


def _told(
    objector: str,
    template: str,
    variables: Mapping[str, Any],
    opinion: str,
    actor: str,
) -> tuple[Notice, ...]:
    told = {**variables, "opinion": opinion, "by": actor}
    return (Notice(to=objector, template=template, variables=told),)


def _trail(
    now: dt.datetime, actor: str, on_behalf_of: str | None, action: str, opinion: str
) -> TrailEntry:
    return TrailEntry(
        at=now,
        actor=actor,
        action=action,
        on_behalf_of=on_behalf_of,
        opinion=opinion,
        step=OBJECTION_STEP,
    )


def _name(directory: Directory, account: str) -> str:
    person = directory.people.get(account)
    return person.name if person else account


def _refusal(reply: str, reason: str) -> Decision:
    return Decision(accepted=False, reply=reply, reasons=(reason,))
