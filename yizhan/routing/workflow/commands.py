"""The reply commands on a waiting step: 同意, 退回, 轉交, 意見, the instruction that sends a
document on to handling units, and an edit of the text."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from yizhan.routing.closing import effect_on_close
from yizhan.routing.commands import Command, Verb
from yizhan.routing.documents import Decision, DocumentState, Notice, StepState, TrailEntry
from yizhan.routing.edits import read_edit
from yizhan.routing.effects import Effect
from yizhan.routing.receipt import redistribute
from yizhan.routing.rules import (
    AUTHOR,
    CLOSED,
    COMPLETING_VERB,
    REDISTRIBUTE_STEP,
    RETURNED,
    REVISE_STEP,
    StepRule,
)
from yizhan.routing.workflow.advance import _advance
from yizhan.routing.workflow.base import (
    _DONE_WORDS,
    _INSTRUCTION_USAGE,
    _acting_for,
    _closing_notices,
    _Ctx,
    _help,
    _ids,
    _person_named,
    _refusal,
    _Refused,
    _Stage,
    _stage_en,
    _stage_zh,
    _variables,
)
from yizhan.routing.workflow.units import named_units

# --- The commands ----------------------------------------------------------------------------


def _complete(
    ctx: _Ctx,
    doc: DocumentState,
    step: StepState,
    rule: StepRule,
    command: Command,
    actor: str,
    obo: str | None,
) -> Decision:
    """The step's own command (APPROVE, SEAL, RECEIVED, DONE, READ): done; maybe move on."""
    expected = COMPLETING_VERB.get(rule.action)
    if command.verb is not expected:
        raise _Refused(
            _help(ctx, rule, command), f"{command.verb.value} does not complete {rule.name}"
        )
    opinion = command.opinion
    reasons = [f"{rule.article}: {rule.name} ({rule.label}) {command.verb.value} by {actor}"]
    fields_update: dict[str, Any] = {}
    if rule.names_units:
        units = named_units(ctx.directory, command.argument, command.text)
        if not units:
            zh, en = _INSTRUCTION_USAGE
            raise _Refused(
                f"批示需要指明承辦單位：請回覆「{zh}」。\n"
                f"An instruction must name the handling units: reply {en}.",
                "instruction names no unit",
            )
        fields_update["handling_units"] = units
        reasons.append(f"the instruction names the handling units {', '.join(units)}")
    if rule.edits_body:
        opinion = _edit(doc, rule, command, actor, fields_update, reasons)
    trail = TrailEntry(
        at=ctx.now,
        actor=actor,
        action=command.verb.value,
        on_behalf_of=obo,
        opinion=opinion,
        step=rule.name,
    )
    # A refused copy waiting to be sent again (第二十一條) keeps the distribution open too.
    others = [
        s
        for s in doc.steps
        if s.state == "waiting"
        and s.id != step.id
        and (s.name == step.name or (rule.action == "receive" and s.name == REDISTRIBUTE_STEP))
    ]
    zh, en = _DONE_WORDS[command.verb]
    if others:
        reasons.append(f"{len(others)} other {rule.name} step(s) still wait; the state stays")
        return Decision(
            accepted=True,
            reply=(
                f"已{zh}「{doc.title}」（{rule.label}）。尚有{len(others)}人未辦理。\n"
                f'{en}: "{doc.title}" ({rule.name}); {len(others)} still to act.'
            ),
            state=doc.state,
            fields=fields_update,
            close_steps=_ids(step),
            trail=(trail,),
            reasons=tuple(reasons),
            outcome=command.verb.value,
        )
    moved = replace(doc, fields={**doc.fields, **fields_update})
    stage = _advance(
        ctx, moved, ctx.flow.following(rule), opinion=opinion, by=actor, reasons=reasons
    )
    reasons.append(f"transition {doc.state} --complete--> {stage.state}")
    notices = list(stage.notices)
    variables = _variables(moved, rule, opinion=opinion, by=actor)
    if rule.done_template is not None:
        notices.append(Notice(to=doc.author, template=rule.done_template, variables=variables))
    if stage.state == CLOSED:
        notices.extend(_closing_notices(ctx, moved, variables))
    return Decision(
        accepted=True,
        reply=(
            f"已{zh}「{doc.title}」（{rule.label}）。{_stage_zh(ctx, stage)}。\n"
            f'{en}: "{doc.title}" ({rule.name}). {_stage_en(ctx, stage).capitalize()}.'
        ),
        state=stage.state,
        fields=fields_update,
        open_steps=stage.steps,
        close_steps=_ids(step),
        trail=(trail,),
        notices=tuple(notices),
        needs_number=stage.needs_number,
        reasons=tuple(reasons),
        outcome=command.verb.value,
        effects=_closing_effects(ctx, moved, stage, reasons),
    )


def _redistribute(
    ctx: _Ctx,
    doc: DocumentState,
    step: StepState,
    command: Command,
    actor: str,
    obo: str | None,
) -> Decision:
    """A reply to a copy refused at receipt (``routing.receipt``): DONE sends it out again."""
    receive = next((s for s in ctx.flow.steps if s.action == "receive"), None)
    if receive is None:
        raise _Refused(
            "流程已修改，已無簽收步驟，請聯繫辦公室。\n"
            "The flow has no receipt step any more; contact the office.",
            "no receive step in the flow",
        )
    if command.verb is not Verb.DONE:
        return _refusal(
            "請更正後回覆「辦結」重新分發給該單位，或「辦結：單位名稱」改送正確的單位。\n"
            "Correct it, then reply “DONE” to send it to that unit again, or "
            "“DONE: unit name” to send it to the right unit instead.",
            f"{command.verb.value} at {REDISTRIBUTE_STEP}",
        )
    return redistribute(
        doc=doc,
        step=step,
        summary=command.opinion.strip(),
        named=named_units(ctx.directory, command.argument),
        actor=actor,
        on_behalf_of=_acting_for(step, actor, obo),
        variables=_variables(doc, receive, opinion="", by=actor),
        receive_rule=receive,
        directory=ctx.directory,
        now=ctx.now,
        due=ctx.due,
    )


def _edit(
    doc: DocumentState,
    rule: StepRule,
    command: Command,
    actor: str,
    fields_update: dict[str, Any],
    reasons: list[str],
) -> str:
    """An APPROVE that may carry an edited text (``edits_body``): the opinion to record.

    The edited text replaces the body; the author's own text is kept as ``original_body``.
    """
    edit = read_edit(command)
    if isinstance(edit, str):
        raise _Refused(edit, "an edit marker with no text below it")
    if edit.body is None:
        return edit.opinion
    fields_update["body"] = edit.body
    fields_update["edited_by"] = actor
    fields_update["original_body"] = doc.fields.get("original_body", doc.fields.get("body", ""))
    reasons.append(f"{rule.name}: {actor} edited the text")
    return f"{edit.opinion}（修改稿 edited）".lstrip()


def _closing_effects(
    ctx: _Ctx, doc: DocumentState, stage: _Stage, reasons: list[str]
) -> tuple[Effect, ...]:
    """The flow's ``on_close`` effect when ``stage`` closes ``doc``; else none."""
    if stage.state != CLOSED or ctx.flow.on_close is None:
        return ()
    reasons.append(f"{ctx.flow.article}: the flow ends with {ctx.flow.on_close}")
    return (effect_on_close(ctx.flow.on_close, doc),)


def _reject(
    ctx: _Ctx,
    doc: DocumentState,
    step: StepState,
    rule: StepRule,
    command: Command,
    actor: str,
    obo: str | None,
) -> Decision:
    """REJECT with a reason: every waiting step is withdrawn and the document goes back."""
    reason = command.opinion.strip()
    if not reason:
        raise _Refused(
            "退回需要說明理由：請回覆「退回：理由」。\n"
            "A rejection needs a reason: reply “REJECT: reason”.",
            "REJECT without a reason",
        )
    withdrawn = [s for s in doc.steps if s.state == "waiting" and s.id != step.id]
    reasons = [f"{rule.name}: REJECT by {actor} returns to {rule.reject_to}"]
    variables = _variables(doc, rule, opinion=reason, by=actor)
    notices = [
        Notice(
            to=s.assignee, template="withdrawn", on_behalf_of=s.on_behalf_of, variables=variables
        )
        for s in withdrawn
    ]
    if rule.reject_to == AUTHOR:
        revise = StepState(
            id=None,
            name=REVISE_STEP,
            assignee=doc.author,
            action="handle",
            due_at=ctx.due(ctx.now, ctx.flow.revise_deadline, doc.urgency),
            unit=doc.unit,
        )
        state = RETURNED
        opened: tuple[StepState, ...] = (revise,)
        notices.insert(
            0,
            Notice(
                to=doc.author,
                template="rejected",
                action="handle",
                step_index=0,
                variables={**variables, "due_at": revise.due_at},
            ),
        )
        back_zh, back_en = "退回起草人修改", "returned to the author for revision"
    else:
        target = ctx.flow.step(rule.reject_to)
        if target is None:
            raise _Refused(
                "流程設定有誤（退回目標不存在），請聯繫辦公室。\n"
                "The rules are broken (REJECT target missing); contact the office.",
                f"reject_to {rule.reject_to!r} is not a step",
            )
        stage = _advance(ctx, doc, target, opinion=reason, by=actor, reasons=reasons)
        state, opened = stage.state, stage.steps
        notices[:0] = [replace(n, template="rejected") for n in stage.notices]
        back_zh, back_en = f"退回{target.label}", f"sent back to {target.name}"
    reasons.append(f"transition {doc.state} --reject--> {state}")
    return Decision(
        accepted=True,
        reply=(
            f"已退回「{doc.title}」（{rule.label}），{back_zh}。\n"
            f'Returned "{doc.title}" ({rule.name}): {back_en}.'
        ),
        state=state,
        open_steps=opened,
        close_steps=_ids(step),
        cancel_steps=tuple(s.id for s in withdrawn if s.id is not None),
        trail=(
            TrailEntry(
                at=ctx.now,
                actor=actor,
                action="reject",
                on_behalf_of=obo,
                opinion=reason,
                step=rule.name,
            ),
        ),
        notices=tuple(notices),
        reasons=tuple(reasons),
        outcome="reject",
    )


def _forward(
    ctx: _Ctx,
    doc: DocumentState,
    step: StepState,
    rule: StepRule,
    command: Command,
    actor: str,
    obo: str | None,
) -> Decision:
    """FORWARD name: the step is handed to another person, with the same deadline."""
    person = _person_named(ctx.directory, command.argument)
    if rule.forward_to and not (person.roles & set(rule.forward_to)):
        raise _Refused(
            f"{rule.label}只能轉交給{'、'.join(rule.forward_to)}，{person.name}不是。\n"
            f"{rule.name} can only be forwarded to a {' or '.join(rule.forward_to)}; "
            f"{person.name} is not one.",
            f"{person.account} holds none of {rule.forward_to}",
        )
    if person.account in (step.assignee, actor):
        raise _Refused(
            f"此步驟已在{person.name}處，無需轉交。\nThe step is already with {person.name}.",
            "forward to the same person",
        )
    handed = StepState(
        id=None,
        name=step.name,
        assignee=person.account,
        action=step.action,
        due_at=step.due_at,
        unit=step.unit,
    )
    variables = {
        **_variables(doc, rule, opinion=command.text, by=actor),
        "due_at": step.due_at,
        "unit": step.unit,
        "forwarded_by": actor,
    }
    return Decision(
        accepted=True,
        reply=(
            f"已將「{doc.title}」（{rule.label}）轉交{person.name}。\n"
            f'Forwarded "{doc.title}" ({rule.name}) to {person.name}.'
        ),
        state=doc.state,
        open_steps=(handed,),
        close_steps=_ids(step),
        trail=(
            TrailEntry(
                at=ctx.now,
                actor=actor,
                action="forward",
                on_behalf_of=obo,
                opinion=f"→ {person.account}",
                step=rule.name,
            ),
        ),
        notices=(
            Notice(
                to=person.account,
                template=rule.template,
                action=rule.action,
                step_index=0,
                variables=variables,
            ),
        ),
        reasons=(f"{rule.name}: FORWARD by {actor} to {person.account}",),
        outcome="forward",
    )


def _comment(
    ctx: _Ctx, doc: DocumentState, command: Command, actor: str, obo: str | None
) -> Decision:
    """COMMENT: recorded in the trail and sent to the author and everyone now asked to act."""
    text = command.opinion.strip()
    if not text:
        raise _Refused(
            "意見不能為空：請回覆「意見：內容」。\nA comment needs text: reply “COMMENT: text”.",
            "empty comment",
        )
    people = (
        {doc.author}
        | {s.assignee for s in doc.steps}
        | {s.on_behalf_of for s in doc.steps if s.on_behalf_of}
    )
    if actor not in people and (obo is None or obo not in people):
        raise _Refused(
            "只有本件的起草人和經辦人可以提出意見。\n"
            "Only the author and the people asked to act on this document may comment.",
            f"{actor} is not on the document",
        )
    recipients = [doc.author] + [s.assignee for s in doc.steps if s.state == "waiting"]
    variables = {**_variables(doc, None, opinion=text, by=actor)}
    return Decision(
        accepted=True,
        reply=f'已記錄對「{doc.title}」的意見。\nComment recorded on "{doc.title}".',
        state=doc.state,
        trail=(
            TrailEntry(at=ctx.now, actor=actor, action="comment", on_behalf_of=obo, opinion=text),
        ),
        notices=tuple(
            Notice(to=to, template="comment", variables=variables)
            for to in dict.fromkeys(recipients)
            if to not in (actor, obo)
        ),
        reasons=(f"COMMENT from {actor}, who is on the document",),
    )
