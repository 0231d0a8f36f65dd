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
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from yizhan.routing.closing import effect_on_close
from yizhan.routing.commands import VERB_WORDS, Command, Verb
from yizhan.routing.directory import Directory, PersonInfo
from yizhan.routing.documents import Decision, DocumentState, Notice, StepState, TrailEntry
from yizhan.routing.duties import leader_in_charge
from yizhan.routing.edits import read_edit
from yizhan.routing.effects import Effect
from yizhan.routing.numbering import parse_number
from yizhan.routing.objection import decide_objection, object_to, objection_waiting
from yizhan.routing.receipt import redistribute, refuse_receipt
from yizhan.routing.rules import (
    AUTHOR,
    CANCELLED,
    CLOSED,
    COMPLETING_VERB,
    CONTENT_RULES,
    DEFAULT_RULES,
    OBJECTION_STEP,
    REDISTRIBUTE_STEP,
    RETURNED,
    REVISE_STEP,
    URGENCIES,
    Actor,
    Flow,
    Rules,
    StepRule,
)

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

# Separators between unit references in an instruction: "檢驗監管處、衛生檢疫處", "it, hr".
_UNIT_SEPARATORS: Final = re.compile(r"[\s,，、;；:：。.]+")


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


def units_in_scope(fields: Mapping[str, Any]) -> list[str]:
    """Every unit a document is addressed to: 主送, then 抄送, then 範圍, each once."""
    units: list[str] = []
    for key in ("to_units", "cc_units", "scope_units"):
        for unit in fields.get(key, ()):
            if unit not in units:
                units.append(unit)
    return units


def signoff_leader(directory: Directory, unit_id: str) -> tuple[str, str] | None:
    """The bureau leader who signs off ``unit_id``'s documents, and why it is them.

    See ``routing.duties.leader_in_charge``.
    """
    return leader_in_charge(directory, unit_id)


def named_units(directory: Directory, argument: str, text: str = "") -> list[str]:
    """The units an instruction (批示) names, as ids in the order written.

    Unit ids count only as whole words of the command's own line (``argument``), so that an
    English "it" in the text below is not the IT department; unit names count anywhere in
    ``argument`` or ``text``. The bureau itself is never a handling unit.
    """
    found: dict[int, str] = {}
    offset = 0
    for token in _UNIT_SEPARATORS.split(argument):
        position = argument.find(token, offset)
        offset = position + len(token)
        unit = directory.units.get(token)
        if token and unit is not None and unit.kind != "bureau":
            found.setdefault(position, unit.id)
    whole = f"{argument}\n{text}"
    # Longest names first, so that a name inside a longer one is not counted twice.
    for unit in sorted(directory.units.values(), key=lambda u: -len(u.name)):
        if unit.kind == "bureau" or unit.id in found.values():
            continue
        position = whole.find(unit.name)
        if position >= 0:
            found[position] = unit.id
            whole = whole.replace(unit.name, "\0" * len(unit.name))
    return list(dict.fromkeys(found[p] for p in sorted(found)))


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


# --- Moving through the flow -----------------------------------------------------------------


def _advance(
    ctx: _Ctx,
    doc: DocumentState,
    start: StepRule | None,
    *,
    opinion: str,
    by: str,
    reasons: list[str],
) -> _Stage:
    """Walk from ``start`` to the first step someone must act on, and open it.

    A ``number`` step on the way asks the store for a number (unless the document has one);
    an optional step with nobody to ask is skipped. Past the last step the document closes.
    """
    needs_number: str | None = None
    step = start
    visited: set[str] = set()
    while step is not None:
        if step.name in visited:
            raise _Refused(
                "流程設定有誤（循環），請聯繫辦公室。\nThe rules loop; contact the office.",
                f"the flow loops at {step.name}",
            )
        visited.add(step.name)
        if not step.applies(doc.fields):
            reasons.append(f"{step.name}: only when {step.when}; skipped")
            step = ctx.flow.following(step)
            continue
        if step.action == "number":
            if doc.number is None:
                needs_number = _prefix(ctx.directory, doc, step)
                reasons.append(f"{step.article}: {step.name} allocates a {needs_number} number")
            else:
                reasons.append(f"{step.name}: keeps {doc.number}; numbers are never reissued")
            step = ctx.flow.following(step)
            continue
        targets = _resolve(ctx, doc, step)
        if not targets and step.optional:
            reasons.append(f"{step.name}: optional, and no unit to ask; skipped")
            step = ctx.flow.following(step)
            continue
        if not targets:
            raise _Refused(
                f"{step.label}無人可送：請指明單位。\n"
                f"No one to ask for {step.name}: name the units.",
                f"{step.name} resolves to nobody",
            )
        opened = tuple(
            StepState(
                id=None,
                name=step.name,
                assignee=account,
                action=step.action,
                due_at=ctx.due(ctx.now, step.deadline_for(doc.urgency), doc.urgency),
                unit=unit,
            )
            for unit, account in targets
        )
        notices = tuple(
            Notice(
                to=s.assignee,
                template=step.template,
                action=step.action,
                step_index=i,
                variables={
                    **_variables(doc, step, opinion=opinion, by=by),
                    "due_at": s.due_at,
                    "unit": s.unit,
                },
            )
            for i, s in enumerate(opened)
        )
        reasons.append(
            f"{step.article}: {step.name} ({step.label}) asks "
            f"{', '.join(a for _, a in targets)} by {_selector_text(step.actor)}, "
            f"{step.deadline_for(doc.urgency)} working day(s)"
        )
        return _Stage(step.state, step, opened, notices, needs_number)
    return _Stage(CLOSED, None, (), (), needs_number)


def _resolve(ctx: _Ctx, doc: DocumentState, step: StepRule) -> list[tuple[str | None, str]]:
    """Who acts at ``step`` for ``doc``: (unit, account) pairs, one per unit for parallel steps."""
    actor = step.actor
    if actor is None:
        return []
    if actor.kind == "author":
        return [(doc.unit, doc.author)]
    if actor.kind == "person":
        person = ctx.directory.people.get(actor.account or "")
        if person is None or person.state != "active":
            raise _Refused(
                f"{step.label}指定的人員（{actor.account}）不在職，請聯繫辦公室。\n"
                f"The person set for {step.name} ({actor.account}) is not active.",
                f"{actor.account} is not active",
            )
        return [(person.unit, person.account)]
    if actor.kind == "signoff_leader":
        found = signoff_leader(ctx.directory, doc.unit)
        if found is None:
            raise _Refused(
                "沒有局領導可以簽發，請聯繫辦公室。\nNo bureau leader can sign off.",
                "no bureau_leader",
            )
        return [(None, found[0])]
    pairs: list[tuple[str | None, str]] = []
    for unit in _actor_units(ctx, doc, actor):
        holder = next(
            (m for r in actor.roles for m in ctx.directory.members(unit, r)),
            None,
        )
        if holder is None:
            name = ctx.directory.units[unit].name if unit in ctx.directory.units else unit
            raise _Refused(
                f"單位「{name}」沒有{'或'.join(actor.roles)}可送{step.label}，"
                "請改選單位或聯繫管理員。\n"
                f"Unit {unit} has no {' or '.join(actor.roles)} for {step.name}; choose other "
                "units or ask the administrator.",
                f"no {'/'.join(actor.roles)} in {unit}",
            )
        pairs.append((unit, holder.account))
    return pairs


def _actor_units(ctx: _Ctx, doc: DocumentState, actor: Actor) -> list[str]:
    """The units a ``role`` actor is looked up in."""
    if actor.units == "own":
        return [doc.unit]
    if actor.units == "scope":
        return units_in_scope(doc.fields)
    if actor.units == "scope_others":
        return [u for u in units_in_scope(doc.fields) if u != doc.unit]
    if actor.units == "instructed":
        return list(doc.fields.get("handling_units", ()))
    kind = "bureau" if actor.units == "bureau" else actor.units.removeprefix("kind:")
    units = ctx.directory.units_of_kind(kind)
    if not units:
        raise _Refused(
            f"組織中沒有{kind}類單位，請聯繫管理員。\nThe organisation has no {kind} unit.",
            f"no unit of kind {kind}",
        )
    return [units[0].id]


def _prefix(directory: Directory, doc: DocumentState, step: StepRule) -> str:
    """The number prefix at a number step: its own, else the unit's, else the bureau's."""
    if step.prefix:
        return step.prefix
    unit = directory.units.get(doc.unit)
    if unit is not None and unit.prefix:
        return unit.prefix
    for bureau in directory.units_of_kind("bureau"):
        if bureau.prefix:
            return bureau.prefix
    raise _Refused(
        "本單位和本局都沒有設定文號前綴，請聯繫管理員。\n"
        "Neither the unit nor the bureau has a number prefix; ask the administrator.",
        f"no prefix for {doc.unit}",
    )


def _check_content(
    flow: Flow,
    *,
    classified: bool,
    forwards_document: bool,
    facts: Mapping[str, bool] | None = None,
) -> list[str]:
    """Refuse content the flow's rules forbid; the reasons of the rules that passed."""
    facts = {**(facts or {}), "classified": classified, "forwards_document": forwards_document}
    reasons = []
    for name in flow.content_rules:
        rule = CONTENT_RULES[name]
        if facts.get(rule.fact, False):
            raise _Refused(rule.reply, f"{rule.article}: {name} ({rule.fact})")
        reasons.append(f"{rule.article}: {name} passed")
    return reasons


def _unit_fields(
    directory: Directory,
    to_units: Sequence[str],
    cc_units: Sequence[str],
    scope_units: Sequence[str],
) -> dict[str, list[str]]:
    """The unit lists as ids; refuses naming every reference that is no unit."""
    unknown: list[str] = []
    result: dict[str, list[str]] = {}
    for key, refs in (("to_units", to_units), ("cc_units", cc_units), ("scope_units", scope_units)):
        ids: list[str] = []
        for ref in refs:
            unit = directory.unit_by_ref(ref)
            if unit is None:
                unknown.append(ref)
            elif unit.id not in ids:
                ids.append(unit.id)
        result[key] = ids
    if unknown:
        raise _Refused(
            f"不認識的單位：{'、'.join(unknown)}。請寫單位名稱或代號（如 辦公室 或 office）。\n"
            f"Unknown units: {', '.join(unknown)}. Write unit names or ids (辦公室 or office).",
            f"unknown units {unknown}",
        )
    return result


def _check_scope(ctx: _Ctx, doc: DocumentState) -> None:
    """A flow that distributes needs at least one unit to send to."""
    if ctx.flow.needs_scope and not units_in_scope(doc.fields):
        raise _Refused(
            "請在正文開頭寫明主送單位，例如「主送：檢驗監管處、大連分局」。\n"
            "Name the units it goes to at the top of the body, e.g. “To-Units: inspection”.",
            "no unit in scope",
        )


def _check_resolvable(ctx: _Ctx, doc: DocumentState) -> None:
    """Refuse now, rather than halfway, a document some later step could not be sent on from."""
    for step in ctx.flow.steps:
        if step.actor is None or step.actor.units == "instructed" or not step.applies(doc.fields):
            continue
        if not _resolve(ctx, doc, step) and not step.optional:
            raise _Refused(
                f"{step.label}無單位可送：請在主送/抄送中寫明其他單位。\n"
                f"No unit to send to for {step.name}: name other units in To-Units/Cc-Units.",
                f"{step.name} would resolve to nobody",
            )


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
