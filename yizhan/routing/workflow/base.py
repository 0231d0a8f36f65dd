"""What the workflow engine's parts share: its context, the refusal it raises, the step an
actor acts on, and the texts of its replies."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from yizhan.routing.commands import VERB_WORDS, Command, Verb
from yizhan.routing.directory import Directory, PersonInfo
from yizhan.routing.documents import Decision, DocumentState, Notice, StepState
from yizhan.routing.rules import (
    CANCELLED,
    CLOSED,
    COMPLETING_VERB,
    REVISE_STEP,
    Actor,
    Flow,
    StepRule,
)
from yizhan.routing.workflow.units import _UNIT_SEPARATORS, units_in_scope

#: The calendar's deadline function: ``due(now, working_days, urgency)``.
Due = Callable[[dt.datetime, int, str | None], dt.datetime]

#: The actor of trail lines Yizhan writes itself (the document number).
SYSTEM_ACTOR: Final = "yizhan"

#: The state before a document exists, as the source of the ``open`` transition.
NEW: Final = "new"

# How each command reads in a confirmation: (Chinese, English).
_DONE_WORDS: Final[Mapping[Verb, tuple[str, str]]] = {
    Verb.APPROVE: ("同意", "Approved"),
    Verb.REJECT: ("退回", "Returned"),
    Verb.RECEIVED: ("簽收", "Received"),
    Verb.DONE: ("辦結", "Done"),
    Verb.SEAL: ("用印", "Sealed"),
    Verb.READ: ("已閱", "Read"),
    Verb.FORWARD: ("轉交", "Forwarded"),
    Verb.COMMENT: ("記錄意見", "Comment recorded on"),
}

# How to write each command in a reply, for help texts: (Chinese, English).
_USAGE: Final[Mapping[Verb, tuple[str, str]]] = {
    Verb.APPROVE: ("同意［意見］", "APPROVE [opinion]"),
    Verb.REJECT: ("退回：理由", "REJECT: reason"),
    Verb.FORWARD: ("轉交 姓名", "FORWARD name"),
    Verb.COMMENT: ("意見：內容", "COMMENT: text"),
    Verb.RECEIVED: ("簽收", "RECEIVED"),
    Verb.DONE: ("辦結：辦理結果", "DONE: summary"),
    Verb.PROGRESS: ("進展：辦理情況", "PROGRESS: what has been done"),
    Verb.SEAL: ("用印", "SEAL"),
    Verb.READ: ("已閱", "READ"),
}
_INSTRUCTION_USAGE: Final = (
    "同意：承辦單位（如 檢驗監管處、衛生檢疫處）",
    "APPROVE: handling units",
)


class _Refused(Exception):
    """Raised inside the engine when a command cannot be carried out; becomes a refusal."""

    def __init__(self, reply: str, reason: str) -> None:
        super().__init__(reason)
        self.reply = reply
        self.reason = reason


@dataclass(frozen=True)
class _Ctx:
    """What every decision needs besides the document."""

    flow: Flow
    directory: Directory
    now: dt.datetime
    due: Due


@dataclass(frozen=True)
class _Stage:
    """Where advancing through the flow stopped: the state, and the steps opened there."""

    state: str
    rule: StepRule | None
    steps: tuple[StepState, ...]
    notices: tuple[Notice, ...]
    needs_number: str | None


# --- Finding the step and the people ---------------------------------------------------------


def _find_step(
    ctx: _Ctx,
    doc: DocumentState,
    step_id: int | None,
    command: Command,
    actor: str,
    obo: str | None,
) -> StepState:
    """The step a command is for, if ``actor`` may act on it now; else a refusal that says why."""
    if step_id is None:
        mine = [s for s in doc.steps if s.state == "waiting" and _may_act(s, actor, obo)]
        if not mine:
            raise _Refused(
                f"您在「{doc.title}」沒有待辦事項。\nYou have nothing waiting on “{doc.title}”.",
                f"no waiting step for {actor}",
            )
        wanted = [s for s in mine if COMPLETING_VERB.get(s.action) is command.verb]
        return (wanted or mine)[0]
    step = next((s for s in doc.steps if s.id == step_id), None)
    if step is None:
        raise _Refused(
            "找不到此待辦事項，請回覆最新的通知郵件。\n"
            "No such step on this document; reply to the latest notice.",
            f"step {step_id} not on document {doc.id}",
        )
    if not _may_act(step, actor, obo):
        raise _not_yours(ctx, step, actor, step.name)
    if step.state == "done":
        who = _name(ctx.directory, step.done_by or "?")
        when = f"{step.done_at:%Y-%m-%d %H:%M %Z}".strip() if step.done_at else "?"
        raise _Refused(
            f"此步驟已由{who}於{when}辦理，無需再次回覆。\n"
            f"This step was already done by {who} at {when}.",
            f"step {step.id} already done by {step.done_by}",
        )
    if doc.state == CANCELLED:
        reason = str(doc.fields.get("cancelled_reason", ""))
        raise _Refused(
            f"此文件已由辦公室撤銷（{reason}），原待辦通知作廢，無需辦理。\n"
            f"This document was cancelled by the office ({reason}); its requests are void.",
            f"document {doc.id} is cancelled",
        )
    if step.state == "cancelled" or doc.state == CLOSED:
        raise _Refused(
            "此待辦事項已撤銷（公文已退回、轉交、轉辦或辦結），請以最新通知為準。\n"
            "This step was withdrawn (returned, forwarded, reassigned or closed); "
            "see the latest notice.",
            f"step {step.id} is {step.state}",
        )
    if step.name == REVISE_STEP:
        raise _Refused(
            "請直接回覆修改後的新版本（正文和附件），系統會重新送審。\n"
            "Reply with the revised text and attachments; it will be sent for approval again.",
            "a revise step takes a new version, not a command",
        )
    return step


def _rule_of(flow: Flow, step: StepState) -> StepRule:
    rule = flow.step(step.name)
    if rule is None:
        raise _Refused(
            "流程已修改，此步驟不再存在，請聯繫辦公室。\n"
            "The flow has changed and this step no longer exists; contact the office.",
            f"step {step.name} is not in the flow",
        )
    return rule


def _may_act(step: StepState, actor: str, obo: str | None) -> bool:
    """The asked person, the person they stand in for, or a delegate of either may act."""
    asked = {step.assignee} | ({step.on_behalf_of} if step.on_behalf_of else set())
    return actor in asked or (obo is not None and obo in asked)


def _acting_for(step: StepState, actor: str, obo: str | None) -> str | None:
    """Whom the trail says the actor acted for: the delegator, if any."""
    if obo is not None:
        return obo
    if actor == step.assignee and step.on_behalf_of:
        return step.on_behalf_of
    return None


def _not_yours(ctx: _Ctx, step: StepState, actor: str, label: str) -> _Refused:
    asked = _name(ctx.directory, step.assignee)
    you = _name(ctx.directory, actor)
    return _Refused(
        f"此步驟（{label}）是請{asked}辦理的，{you}不能代為操作；如需代辦，請{asked}先授權。\n"
        f"This step ({label}) was sent to {asked}; {you} may not act on it unless "
        f"{asked} delegates to you (DELEGATE at cmd@).",
        f"{actor} is not {step.assignee} nor acting for them",
    )


def _person_named(directory: Directory, argument: str) -> PersonInfo:
    """The active person a FORWARD names by account or real name."""
    words = [w for w in _UNIT_SEPARATORS.split(argument.strip()) if w]
    candidates = [argument.strip(), *words[:1]]
    for ref in candidates:
        if not ref:
            continue
        person = directory.people.get(ref.lower())
        if person is not None and person.state == "active":
            return person
        same = [p for p in directory.people.values() if p.name == ref and p.state == "active"]
        if len(same) == 1:
            return same[0]
        if len(same) > 1:
            accounts = "、".join(p.account for p in same)
            raise _Refused(
                f"同名的人不止一位（{accounts}），請寫帳號：「轉交 帳號」。\n"
                f"More than one person is called {ref} ({accounts}); write the account.",
                f"ambiguous name {ref}",
            )
    raise _Refused(
        "請寫明轉交給誰：「轉交 姓名」或「FORWARD 帳號」。\n"
        "Say whom to hand it to: “FORWARD name” or “FORWARD account”.",
        f"no active person named {argument!r}",
    )


def _help(ctx: _Ctx, rule: StepRule, command: Command) -> str:
    """What a step accepts, for a command it does not."""
    if command.verb is Verb.UNKNOWN:
        written = command.argument or "（空）"
    else:
        written = VERB_WORDS[command.verb][0]
    usages = []
    for verb in rule.commands:
        zh, en = _INSTRUCTION_USAGE if (verb is Verb.APPROVE and rule.names_units) else _USAGE[verb]
        usages.append((zh, en))
    return (
        f"此步驟（{rule.label}）不接受「{written}」。可回覆：{'、'.join(z for z, _ in usages)}。\n"
        f"This step ({rule.name}) does not accept “{written}”. Reply with one of: "
        f"{'; '.join(e for _, e in usages)}."
    )


# --- Texts and variables ---------------------------------------------------------------------


def _variables(
    doc: DocumentState, rule: StepRule | None, *, opinion: str, by: str | None
) -> dict[str, Any]:
    """Template variables every notice about ``doc`` carries."""
    return {
        "title": doc.title,
        "kind": doc.kind,
        "version": doc.version,
        "urgency": doc.urgency,
        "number": doc.number,
        "author": doc.author,
        "step": rule.name if rule else None,
        "label": rule.label if rule else None,
        "opinion": opinion,
        "by": by,
        "handling_units": list(doc.fields.get("handling_units", ())),
        "units": units_in_scope(doc.fields),
        "edits_body": rule.edits_body if rule else False,
    }


def _closing_notices(ctx: _Ctx, doc: DocumentState, variables: dict[str, Any]) -> list[Notice]:
    return [Notice(to=doc.author, template=ctx.flow.close_template, variables=variables)]


def _confirm_open(ctx: _Ctx, doc: DocumentState, stage: _Stage) -> str:
    return (
        f"已收到{ctx.flow.label}「{doc.title}」，{_stage_zh(ctx, stage)}。\n"
        f'Received "{doc.title}" ({ctx.flow.kind}); {_stage_en(ctx, stage)}.'
    )


def _stage_zh(ctx: _Ctx, stage: _Stage) -> str:
    if stage.rule is None:
        return "本件已辦結"
    names = "、".join(_name(ctx.directory, s.assignee) for s in stage.steps)
    return f"下一步：{stage.rule.label}（{names}）"


def _stage_en(ctx: _Ctx, stage: _Stage) -> str:
    if stage.rule is None:
        return "the document is closed"
    names = ", ".join(_name(ctx.directory, s.assignee) for s in stage.steps)
    return f"next: {stage.rule.name} by {names}"


def _selector_text(actor: Actor | None) -> str:
    if actor is None:
        return "Yizhan"
    if actor.kind == "role":
        return f"{'/'.join(actor.roles)} of {actor.units}"
    if actor.kind == "person":
        return f"person {actor.account}"
    return actor.kind


def _name(directory: Directory, account: str) -> str:
    person = directory.people.get(account)
    return person.name if person else account


def _ids(step: StepState) -> tuple[int, ...]:
    return (step.id,) if step.id is not None else ()


def _refusal(reply: str, reason: str) -> Decision:
    return Decision(accepted=False, reply=reply, reasons=(reason,))
