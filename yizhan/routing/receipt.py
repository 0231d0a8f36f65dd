"""A receiving clerk checks a document before signing for it, and may refuse it (第二十一條).

第二十一條 has each unit's clerk check what arrives before signing for it. At a ``receive``
step the clerk may answer REJECT (退回) with the reason (the wrong unit, a missing attachment,
an unreadable file) instead of RECEIVED: that unit's copy goes back to whoever distributed it
(:func:`distributor`), as a ``redistribute`` step (重新分發). They answer DONE (辦結) to send it
to the same unit again, or DONE naming another unit to send it there instead (the document's
unit lists change accordingly). The other units' copies are not touched, and the document is
not complete until every receiving unit has signed (``routing.workflow`` keeps it open while a
``redistribute`` step waits).

Pure functions, called by ``routing.workflow.apply_command``; the engine passes in what it
has already worked out (the template variables, the units a reply names).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from yizhan.routing.directory import Directory
from yizhan.routing.documents import Decision, DocumentState, Notice, StepState, TrailEntry
from yizhan.routing.rules import REDISTRIBUTE_STEP, StepRule

__all__ = ["REDISTRIBUTE_LABEL", "distributor", "redistribute", "refuse_receipt"]

#: How the step of sending a refused copy again is called in mail.
REDISTRIBUTE_LABEL: Final = "重新分發"

#: Working days the distributor has to send a refused copy again.
REDISTRIBUTE_DAYS: Final = 1

#: The unit lists of a document, where a redirected copy's unit is replaced.
_UNIT_LISTS: Final = ("to_units", "cc_units", "scope_units")

Due = Callable[[dt.datetime, int, str | None], dt.datetime]


def distributor(doc: DocumentState) -> str:
    """Who sent the copies out, and so gets a refused copy back (第二十一條).

    A sealed document is distributed by the office's seal custodian who sealed it (第十八條);
    a document without a seal (a department letter) by its author, who sent it.
    """
    sealed = [s for s in doc.steps if s.action == "seal" and s.state == "done"]
    if sealed:
        last = sealed[-1]
        return last.on_behalf_of or last.done_by or last.assignee
    return doc.author


def refuse_receipt(
    *,
    doc: DocumentState,
    step: StepState,
    rule: StepRule,
    reason: str,
    actor: str,
    on_behalf_of: str | None,
    variables: Mapping[str, Any],
    directory: Directory,
    now: dt.datetime,
    due: Due,
) -> Decision:
    """REJECT at a receive step: this unit's copy goes back to :func:`distributor`.

    A refusal without a reason is refused. The clerk's step closes (outcome ``reject``); a
    ``redistribute`` step for the same unit opens for the distributor; nothing else changes.
    """
    if not reason.strip():
        return _refusal(
            "退回需要說明理由（如：非本單位文件、缺少附件、無法打開）：請回覆「退回：理由」。\n"
            "Refusing receipt needs a reason (wrong unit, missing attachment, unreadable): "
            "reply “REJECT: reason”.",
            "receipt refused without a reason",
        )
    back_to = distributor(doc)
    unit_name = _unit_name(directory, step.unit)
    again = StepState(
        id=None,
        name=REDISTRIBUTE_STEP,
        assignee=back_to,
        action="handle",
        due_at=due(now, REDISTRIBUTE_DAYS, doc.urgency),
        unit=step.unit,
    )
    notice_vars = {
        **variables,
        "opinion": reason,
        "by": actor,
        "unit": step.unit,
        "unit_name": unit_name,
        "due_at": again.due_at,
    }
    return Decision(
        accepted=True,
        reply=(
            f"已退回「{doc.title}」（{rule.label}），已退給{_name(directory, back_to)}"
            f"更正後重新分發。\n"
            f'Receipt of "{doc.title}" refused; it goes back to {_name(directory, back_to)} '
            "to correct and send again."
        ),
        state=doc.state,
        open_steps=(again,),
        close_steps=(step.id,) if step.id is not None else (),
        trail=(
            TrailEntry(
                at=now,
                actor=actor,
                action="reject",
                on_behalf_of=on_behalf_of,
                opinion=f"{unit_name}：{reason}",
                step=rule.name,
            ),
        ),
        notices=(
            Notice(
                to=back_to,
                template="receipt_refused",
                action="handle",
                step_index=0,
                variables=notice_vars,
            ),
        ),
        reasons=(
            f"{rule.article}: {actor} refuses receipt for {step.unit}; "
            f"{REDISTRIBUTE_STEP} by {back_to}",
        ),
        outcome="reject",
    )


def redistribute(
    *,
    doc: DocumentState,
    step: StepState,
    summary: str,
    named: Sequence[str],
    actor: str,
    on_behalf_of: str | None,
    variables: Mapping[str, Any],
    receive_rule: StepRule,
    directory: Directory,
    now: dt.datetime,
    due: Due,
) -> Decision:
    """DONE at a ``redistribute`` step: the copy goes to the same unit again, or to the unit
    the reply names (``named``, ids in the order written) instead."""
    old = step.unit
    others = [u for u in named if u != old]
    if len(others) > 1:
        return _refusal(
            "一次只能改送一個單位：請回覆「辦結：單位名稱」。\n"
            "Redirect to one unit at a time: reply “DONE: unit name”.",
            f"redistribute names {len(others)} units",
        )
    target = others[0] if others else old
    if target is None:
        return _refusal(
            "無法確定重新分發的單位：請回覆「辦結：單位名稱」。\n"
            "No unit to send it to: reply “DONE: unit name”.",
            "redistribute without a unit",
        )
    waiting_there = [
        s
        for s in doc.steps
        if s.state == "waiting" and s.unit == target and s.name in (receive_rule.name,)
    ]
    received_there = [
        s
        for s in doc.steps
        if s.name == receive_rule.name and s.unit == target and s.outcome == "received"
    ]
    if target != old and (waiting_there or received_there):
        return _refusal(
            f"{_unit_name(directory, target)}已收到本件，無需改送。\n"
            f"{_unit_name(directory, target)} already has this document.",
            f"{target} already receives the document",
        )
    roles = receive_rule.actor.roles if receive_rule.actor is not None else ()
    clerks = [
        p for r in roles or ("clerk",) for p in directory.members(target, r) if p.state == "active"
    ]
    if not clerks:
        return _refusal(
            f"單位「{_unit_name(directory, target)}」沒有文書可以簽收，請改選單位或聯繫管理員。\n"
            f"Unit {target} has no clerk to sign for it; name another unit or ask the "
            "administrator.",
            f"no clerk in {target}",
        )
    fields: dict[str, Any] = {}
    if target != old:
        for key in _UNIT_LISTS:
            units = list(doc.fields.get(key, ()))
            if old in units:
                fields[key] = [target if u == old else u for u in units]
        if not fields:
            fields["scope_units"] = [*doc.fields.get("scope_units", ()), target]
    copy = StepState(
        id=None,
        name=receive_rule.name,
        assignee=clerks[0].account,
        action=receive_rule.action,
        due_at=due(now, receive_rule.deadline_for(doc.urgency), doc.urgency),
        unit=target,
    )
    where_zh = _unit_name(directory, target)
    moved = "改送" if target != old else "重新分發給"
    return Decision(
        accepted=True,
        reply=(
            f"已將「{doc.title}」{moved}{where_zh}（{_name(directory, copy.assignee)}簽收）。\n"
            f'"{doc.title}" sent {"instead " if target != old else "again "}to {target} '
            f"({_name(directory, copy.assignee)} to sign for it)."
        ),
        state=doc.state,
        fields=fields,
        open_steps=(copy,),
        close_steps=(step.id,) if step.id is not None else (),
        trail=(
            TrailEntry(
                at=now,
                actor=actor,
                action="redistribute",
                on_behalf_of=on_behalf_of,
                opinion=f"→ {where_zh}" + (f"：{summary}" if summary else ""),
                step=REDISTRIBUTE_STEP,
            ),
        ),
        notices=(
            Notice(
                to=copy.assignee,
                template=receive_rule.template,
                action=receive_rule.action,
                step_index=0,
                variables={**variables, "due_at": copy.due_at, "unit": target},
            ),
        ),
        reasons=(f"第二十一條: {actor} sends the refused copy of {old} to {target}",),
        outcome="done",
    )


def _unit_name(directory: Directory, unit: str | None) -> str:
    info = directory.units.get(unit or "")
    return info.name if info is not None else (unit or "?")


def _name(directory: Directory, account: str) -> str:
    person = directory.people.get(account)
    return person.name if person else account


def _refusal(reply: str, reason: str) -> Decision:
    return Decision(accepted=False, reply=reply, reasons=(reason,))
