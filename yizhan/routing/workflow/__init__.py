"""The workflow engine: from a document, a command and the time, decides what happens next.

Each public function is a pure transition: it takes the directory, the rules
(:mod:`yizhan.routing.rules`), the document as the store holds it, the time and a ``due``
function (the calendar's: ``due(now, working_days, urgency)``), and returns a
:class:`~yizhan.routing.documents.Decision` that the store applies in one transaction. Nothing
here reads a clock, a calendar, the database or the network.

The states of a flow are the ``state`` of its steps, plus ``returned`` (back with the author
after REJECT) and ``closed``. :func:`transitions` lists which state may follow which, and
:func:`check_invariants` says what must always hold of a document; the property tests drive
random commands through the engine and check both.

A decision that needs a document number (``Decision.needs_number``, the prefix) is completed by
the store: it allocates the next number of that prefix for the year, in the same transaction,
and applies ``assign_number(decision, number)`` instead of the decision itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from yizhan.routing.commands import Command, Verb
from yizhan.routing.directory import Directory
from yizhan.routing.documents import Decision, DocumentState, StepState, TrailEntry
from yizhan.routing.numbering import parse_number
from yizhan.routing.objection import decide_objection, object_to, objection_waiting
from yizhan.routing.receipt import refuse_receipt
from yizhan.routing.rules import (
    OBJECTION_STEP,
    REDISTRIBUTE_STEP,
    RETURNED,
    REVISE_STEP,
    URGENCIES,
    Rules,
    StepRule,
)
from yizhan.routing.workflow.advance import (
    _advance,
    _check_content,
    _check_resolvable,
    _check_scope,
    _unit_fields,
)
from yizhan.routing.workflow.base import (
    NEW,
    SYSTEM_ACTOR,
    Due,
    _acting_for,
    _confirm_open,
    _Ctx,
    _find_step,
    _help,
    _ids,
    _may_act,
    _name,
    _not_yours,
    _refusal,
    _Refused,
    _rule_of,
    _stage_en,
    _stage_zh,
    _variables,
)
from yizhan.routing.workflow.commands import (
    _closing_effects,
    _comment,
    _complete,
    _forward,
    _redistribute,
    _reject,
)
from yizhan.routing.workflow.invariants import check_invariants, transitions
from yizhan.routing.workflow.units import named_units, signoff_leader, units_in_scope

__all__ = [
    "NEW",
    "SYSTEM_ACTOR",
    "Due",
    "acting_step",
    "apply_command",
    "assign_number",
    "check_invariants",
    "named_units",
    "notice_variables",
    "open_document",
    "revise_document",
    "signoff_leader",
    "transitions",
    "units_in_scope",
]


# --- Public API ------------------------------------------------------------------------------


def open_document(
    *,
    kind: str,
    title: str,
    author: str,
    urgency: str | None,
    to_units: Sequence[str],
    cc_units: Sequence[str] = (),
    scope_units: Sequence[str] = (),
    fields: Mapping[str, Any] | None = None,
    classified: bool = False,
    forwards_document: bool = False,
    facts: Mapping[str, bool] | None = None,
    directory: Directory,
    rules: Rules,
    now: dt.datetime,
    due: Due,
) -> Decision:
    """Decide what a new document of ``kind`` does: refused, or sent to its first step.

    ``to_units``, ``cc_units`` and ``scope_units`` are unit ids or names (主送, 抄送, 範圍);
    ``classified`` and ``forwards_document`` are facts the caller established from the mail,
    checked against the flow's content rules (第十四條, 第二十二條), as are the module's own
    ``facts`` (a bulletin's meeting notice, 第二十三條). The decision's ``fields`` are all the new
    document's fields (with the units as ids); its unit is the author's. A flow that ends at
    once (every step's condition fails) carries its ``on_close`` effect.
    """
    flow = rules.flow(kind)
    if flow is None:
        return _refusal(
            f"不認識的公文種類「{kind}」。\nUnknown document kind {kind!r}.",
            f"no flow for kind {kind!r}",
        )
    person = directory.people.get(author)
    if person is None or person.state != "active":
        return _refusal(
            "寄件人不是有效帳號，無法立件。\nThe sender is not an active account.",
            f"author {author!r} is not an active person",
        )
    ctx = _Ctx(flow=flow, directory=directory, now=now, due=due)
    try:
        if urgency is not None and urgency not in URGENCIES:
            raise _Refused(
                f"緊急程度只能是 {'、'.join(URGENCIES)}。\nUrgency must be one of "
                f"{', '.join(URGENCIES)}.",
                f"unknown urgency {urgency!r}",
            )
        if not title.strip():
            raise _Refused(
                "公文標題不能為空：請把標題寫在郵件主題。\n"
                "The title is empty: put it in the subject.",
                "empty title",
            )
        reasons = [f"{flow.article}: {flow.label} ({flow.kind}) flow"]
        reasons += _check_content(
            flow, classified=classified, forwards_document=forwards_document, facts=facts
        )
        unit_fields = _unit_fields(directory, to_units, cc_units, scope_units)
        doc = DocumentState(
            id=None,
            kind=kind,
            title=title.strip(),
            state=NEW,
            author=author,
            unit=person.unit,
            urgency=urgency,
            fields={
                **(fields or {}),
                **unit_fields,
                "classified": classified,
                "forwards_document": forwards_document,
            },
        )
        _check_scope(ctx, doc)
        _check_resolvable(ctx, doc)
        stage = _advance(ctx, doc, flow.steps[0], opinion="", by=author, reasons=reasons)
    except _Refused as refused:
        return _refusal(refused.reply, refused.reason)
    reasons.append(f"transition {NEW} --open--> {stage.state}")
    return Decision(
        accepted=True,
        reply=_confirm_open(ctx, doc, stage),
        state=stage.state,
        fields=dict(doc.fields),
        open_steps=stage.steps,
        trail=(TrailEntry(at=now, actor=author, action="open", opinion=doc.title),),
        notices=stage.notices,
        needs_number=stage.needs_number,
        reasons=tuple(reasons),
        effects=_closing_effects(ctx, doc, stage, reasons),
    )


def apply_command(
    *,
    doc: DocumentState,
    step_id: int | None,
    command: Command,
    actor: str,
    on_behalf_of: str | None = None,
    directory: Directory,
    rules: Rules,
    now: dt.datetime,
    due: Due,
) -> Decision:
    """Decide what ``command`` from ``actor`` on step ``step_id`` of ``doc`` does.

    ``actor`` is the person acting; ``on_behalf_of`` the person they act for as delegate (the
    store resolves delegation first). ``step_id`` is the step the reply token names, or None
    when only the document is known: then the actor's own waiting step is meant. COMMENT is
    accepted from anyone on the document, at any step. A reply to a ``revise`` step goes to
    :func:`revise_document` instead.
    """
    flow = rules.flow(doc.kind)
    if flow is None:
        return _refusal(
            f"本件的種類「{doc.kind}」已無流程，請聯繫辦公室。\n"
            f"No flow for kind {doc.kind!r}; contact the office.",
            f"no flow for kind {doc.kind!r}",
        )
    ctx = _Ctx(flow=flow, directory=directory, now=now, due=due)
    try:
        if command.verb is Verb.COMMENT:
            return _comment(ctx, doc, command, actor, on_behalf_of)
        if command.verb is Verb.OBJECT:
            return object_to(
                doc=doc,
                reason=command.opinion,
                actor=actor,
                on_behalf_of=on_behalf_of,
                variables=_variables(doc, None, opinion=command.opinion, by=actor),
                directory=directory,
                now=now,
                due=due,
            )
        step = _find_step(ctx, doc, step_id, command, actor, on_behalf_of)
        if step.name == OBJECTION_STEP:
            return decide_objection(
                doc=doc,
                step=step,
                command=command,
                actor=actor,
                on_behalf_of=_acting_for(step, actor, on_behalf_of),
                variables=_variables(doc, None, opinion="", by=actor),
                revise_days=flow.revise_deadline,
                directory=directory,
                now=now,
                due=due,
            )
        pending = objection_waiting(doc)
        if pending is not None and command.verb is not Verb.FORWARD:
            leader = _name(directory, pending.assignee)
            raise _Refused(
                f"本件有異議待{leader}裁決，裁決前暫停辦理；裁決後請再回覆。\n"
                f"An objection to this document waits for {leader} to decide; nothing else "
                "can be done on it until then. Reply again after the decision.",
                "the document waits for an objection to be decided",
            )
        if step.name == REDISTRIBUTE_STEP:
            return _redistribute(ctx, doc, step, command, actor, on_behalf_of)
        rule = _rule_of(flow, step)
        trail_obo = _acting_for(step, actor, on_behalf_of)
        if command.verb not in rule.commands:
            raise _Refused(
                _help(ctx, rule, command), f"{command.verb.value} not accepted at {rule.name}"
            )
        if command.verb is Verb.REJECT and rule.action == "receive":
            # 第二十一條: a receiving clerk sends their copy back, not the whole document.
            return refuse_receipt(
                doc=doc,
                step=step,
                rule=rule,
                reason=command.opinion,
                actor=actor,
                on_behalf_of=trail_obo,
                variables=_variables(doc, rule, opinion=command.opinion, by=actor),
                directory=directory,
                now=now,
                due=due,
            )
        if command.verb is Verb.REJECT:
            return _reject(ctx, doc, step, rule, command, actor, trail_obo)
        if command.verb is Verb.FORWARD:
            return _forward(ctx, doc, step, rule, command, actor, trail_obo)
        return _complete(ctx, doc, step, rule, command, actor, trail_obo)
    except _Refused as refused:
        return _refusal(refused.reply, refused.reason)


def acting_step(
    *,
    doc: DocumentState,
    step_id: int | None,
    command: Command,
    actor: str,
    on_behalf_of: str | None = None,
    directory: Directory,
    rules: Rules,
    now: dt.datetime,
    due: Due,
) -> tuple[StepState, StepRule, str | None] | Decision:
    """The step ``command`` from ``actor`` acts on, its rule, and whom the trail says they act for.

    For modules that decide their own commands on this engine's documents (督查督辦): the same
    checks as :func:`apply_command` (the actor may act, the step waits, the flow accepts the
    command there), or the refusal that says what is wrong and what to send instead.
    """
    flow = rules.flow(doc.kind)
    if flow is None:
        return _refusal(
            f"本件的種類「{doc.kind}」已無流程，請聯繫辦公室。\n"
            f"No flow for kind {doc.kind!r}; contact the office.",
            f"no flow for kind {doc.kind!r}",
        )
    ctx = _Ctx(flow=flow, directory=directory, now=now, due=due)
    try:
        step = _find_step(ctx, doc, step_id, command, actor, on_behalf_of)
        rule = _rule_of(flow, step)
        if command.verb not in rule.commands:
            raise _Refused(
                _help(ctx, rule, command), f"{command.verb.value} not accepted at {rule.name}"
            )
    except _Refused as refused:
        return _refusal(refused.reply, refused.reason)
    return step, rule, _acting_for(step, actor, on_behalf_of)


def notice_variables(
    doc: DocumentState, rule: StepRule | None, *, opinion: str, by: str | None
) -> dict[str, Any]:
    """The template variables every notice about ``doc`` carries (title, kind, number …)."""
    return _variables(doc, rule, opinion=opinion, by=by)


def revise_document(
    *,
    doc: DocumentState,
    actor: str,
    on_behalf_of: str | None = None,
    new_title: str | None = None,
    new_fields: Mapping[str, Any] | None = None,
    to_units: Sequence[str] | None = None,
    cc_units: Sequence[str] | None = None,
    scope_units: Sequence[str] | None = None,
    classified: bool = False,
    forwards_document: bool = False,
    facts: Mapping[str, bool] | None = None,
    directory: Directory,
    rules: Rules,
    now: dt.datetime,
    due: Due,
) -> Decision:
    """Decide what the author's new version of a returned document does.

    The author (or their delegate) replies to the ``revise`` step with the new text; the
    version goes up by one, the title and fields change as given (unit lists as in
    :func:`open_document`, None: unchanged), the content rules are checked again, and the chain
    starts again from its first step, so every approval is given anew. A number already issued
    is kept: numbers are never reissued or left as gaps.
    """
    flow = rules.flow(doc.kind)
    if flow is None:
        return _refusal(
            f"本件的種類「{doc.kind}」已無流程。\nNo flow for kind {doc.kind!r}.",
            f"no flow for kind {doc.kind!r}",
        )
    ctx = _Ctx(flow=flow, directory=directory, now=now, due=due)
    try:
        if doc.state != RETURNED:
            raise _Refused(
                "本件不在退回修改狀態，無需提交新版本。\nThis document is not returned for "
                "revision; there is nothing to revise.",
                f"revise in state {doc.state}",
            )
        step = next(s for s in doc.steps if s.state == "waiting" and s.name == REVISE_STEP)
        if not _may_act(step, actor, on_behalf_of):
            raise _not_yours(ctx, step, actor, "修改 / revise")
        reasons = _check_content(
            flow, classified=classified, forwards_document=forwards_document, facts=facts
        )
        units = _unit_fields(
            directory,
            to_units if to_units is not None else doc.fields.get("to_units", ()),
            cc_units if cc_units is not None else doc.fields.get("cc_units", ()),
            scope_units if scope_units is not None else doc.fields.get("scope_units", ()),
        )
        title = (new_title or doc.title).strip()
        if not title:
            raise _Refused("公文標題不能為空。\nThe title is empty.", "empty title")
        fields_update: dict[str, Any] = {
            **(new_fields or {}),
            **units,
            "classified": classified,
            "forwards_document": forwards_document,
        }
        revised = replace(
            doc,
            title=title,
            version=doc.version + 1,
            fields={**doc.fields, **fields_update},
        )
        _check_scope(ctx, revised)
        _check_resolvable(ctx, revised)
        reasons.append(f"version {revised.version}: the chain starts again from its first step")
        stage = _advance(ctx, revised, flow.steps[0], opinion="", by=actor, reasons=reasons)
    except _Refused as refused:
        return _refusal(refused.reply, refused.reason)
    reasons.append(f"transition {RETURNED} --revise--> {stage.state}")
    return Decision(
        accepted=True,
        reply=(
            f"已提交第{revised.version}版「{title}」，重新送{_stage_zh(ctx, stage)}。\n"
            f'Version {revised.version} of "{title}" submitted; {_stage_en(ctx, stage)}.'
        ),
        state=stage.state,
        fields=fields_update,
        open_steps=stage.steps,
        close_steps=_ids(step),
        trail=(
            TrailEntry(
                at=now,
                actor=actor,
                action="revise",
                on_behalf_of=_acting_for(step, actor, on_behalf_of),
                opinion=f"v{revised.version}",
            ),
        ),
        notices=stage.notices,
        needs_number=stage.needs_number,
        reasons=tuple(reasons),
        outcome="revised",
        title=title,
        version=revised.version,
    )


def assign_number(decision: Decision, number: str) -> Decision:
    """``decision`` completed with the number the store allocated for ``decision.needs_number``.

    The number goes into ``Decision.number``, every notice's ``number`` variable, the reply and
    a trail line by :data:`SYSTEM_ACTOR`. Raises ValueError if the decision asked for no number
    or ``number`` is not one of the asked prefix.
    """
    if decision.needs_number is None:
        raise ValueError("this decision asked for no number")
    parsed = parse_number(number)
    if parsed is None or parsed[0] != decision.needs_number:
        raise ValueError(f"{number!r} is not a number with prefix {decision.needs_number!r}")
    at = decision.trail[0].at if decision.trail else None
    if at is None:
        raise ValueError("a decision that needs a number carries the trail line that caused it")
    return replace(
        decision,
        needs_number=None,
        number=number,
        reply=f"{decision.reply}\n文號 / Number: {number}",
        notices=tuple(
            replace(n, variables={**n.variables, "number": number}) for n in decision.notices
        ),
        trail=(
            *decision.trail,
            TrailEntry(at=at, actor=SYSTEM_ACTOR, action="number", opinion=number, step="number"),
        ),
        reasons=(*decision.reasons, f"number {number} allocated for prefix {parsed[0]}"),
    )
