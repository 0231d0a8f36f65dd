"""督查督辦 at duban@ (第二條; run by the office, 第六條): who assigns, and each unit's part.

The office assigns a task (a document of kind ``duban``) to the units on its 主送 line, due by
the day on its 期限 line. Each unit's part is a ``progress`` step asked of the unit's clerk
(綜合人員, who chases the unit's work, 第二十一條; its head when it has none), and the unit head,
who answers for it, is told. The clerk reports PROGRESS (進展) as often as needed, which is
recorded and told to the office, and DONE (辦結) with a summary, which asks the office member
who assigned the task to confirm that part (a ``confirm`` step): APPROVE (同意) confirms it,
REJECT (退回) with a reason sends that unit's part back, and the task closes once every unit's
part is confirmed.

The parts run side by side and each is confirmed on its own, which the engine's parallel steps
(all of them done, then the next step) do not express; so these four commands are decided
here, on the engine's documents and steps and after the engine's checks
(``workflow.acting_step``), and COMMENT and FORWARD are the engine's. The deadlines are the
steps' ``due_at``, so the reminder sweep's ladder (the clerk, then the unit head, then the
office) chases a late part as it chases any step; :func:`report_item` is one task of the weekly
supervision report.

Pure: the directory, the rules, the calendar and the time are passed in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from yizhan.routing import workflow
from yizhan.routing.calendar import WorkCalendar
from yizhan.routing.commands import Command, Verb
from yizhan.routing.delegation import parse_until
from yizhan.routing.directory import Directory, PersonInfo
from yizhan.routing.documents import Decision, DocumentState, Notice, StepState, TrailEntry
from yizhan.routing.rules import CLOSED, Rules, StepRule

__all__ = [
    "CONFIRM_STEP",
    "KIND",
    "PART_STATES",
    "PROGRESS_STEP",
    "Assignment",
    "Part",
    "apply_command",
    "assigned",
    "check_assignment",
    "deadline_of",
    "office_members",
    "parts",
    "report_item",
]

#: The document kind, and its two steps (``routing.rules.DUBAN``).
KIND: Final = "duban"
PROGRESS_STEP: Final = "progress"
CONFIRM_STEP: Final = "confirm"

#: Where a unit's part stands: still being handled (or sent back), reported done and waiting
#: for the office, or confirmed by the office.
PART_STATES: Final = ("progressing", "done", "confirmed")

# The verbs decided here; every other one is the engine's.
_OURS: Final = frozenset({Verb.PROGRESS, Verb.DONE, Verb.APPROVE, Verb.REJECT})

_EXAMPLE: Final = (
    "例如 e.g.:\n  主送：檢驗監管處、大連分局\n  期限：2026-12-10\n\n  請於期限前報送整改落實情況。"
)


@dataclass(frozen=True, kw_only=True)
class Assignment:
    """A task's deadline as read from its 期限 line.

    ``due_at`` is the end of the working day ``deadline``; ``written`` is the day as written
    when it was not a working day and the deadline moved to the next one.
    """

    deadline: dt.date
    due_at: dt.datetime
    written: dt.date | None = None

    def fields(self) -> dict[str, Any]:
        """The document fields that keep the deadline (read back by :func:`assigned`)."""
        return {
            "deadline_at": self.due_at.isoformat(),
            "deadline_local": f"{self.due_at:%Y-%m-%d %H:%M}",
            "deadline_written": self.written.isoformat() if self.written else None,
        }


@dataclass(frozen=True, kw_only=True)
class Part:
    """One unit's part of a task, as the office follows it.

    ``state`` is one of :data:`PART_STATES`; ``handler`` the person asked for the unit (the
    delegator when a delegate acts); ``progress`` the latest PROGRESS or DONE text and
    ``reported_at`` when it came; ``overdue`` is True for a part still being handled past its
    deadline.
    """

    unit: str
    unit_name: str
    state: str
    handler: str | None
    handler_name: str
    due_at: dt.datetime | None
    overdue: bool
    progress: str = ""
    reported_at: dt.datetime | None = None


def office_members(directory: Directory) -> list[PersonInfo]:
    """The active people of the office (units of kind office), who run supervision (第六條)."""
    return [
        p
        for unit in directory.units_of_kind("office")
        for p in directory.people.values()
        if p.unit == unit.id and p.state == "active"
    ]


def check_assignment(
    *,
    author: str,
    to_units: Sequence[str],
    cc_units: Sequence[str],
    scope: Sequence[str],
    deadline_text: str | None,
    directory: Directory,
    calendar: WorkCalendar,
    today: dt.date,
) -> Assignment | str:
    """The task's deadline, or everything wrong with the assignment (both languages).

    Only the office assigns (第六條: every module but leave is run by the office); the task
    names its units on 主送 (unit references are checked by the engine) and its deadline on
    期限, a day not before ``today``. A day off moves to the next working day.
    """
    office = office_members(directory)
    if author not in {p.account for p in office}:
        names = "、".join(p.name for p in office if p.roles & {"unit_head", "unit_leader", "clerk"})
        unit = "、".join(u.name for u in directory.units_of_kind("office")) or "辦公室"
        return (
            f"督查督辦事項由{unit}立項交辦（第六條），請聯繫{unit}（{names or '-'}）。\n"
            f"Supervision tasks are assigned by the office (art. 6); ask {unit} "
            f"({names or '-'})."
        )
    problems: list[str] = []
    if not to_units:
        problems.append(
            "請在正文開頭寫明承辦單位（主送：單位名稱）。\n"
            "Name the units to carry it out on a To-Units line at the top of the body."
        )
    if cc_units or scope:
        problems.append(
            "督辦事項只寫主送（承辦單位），不用抄送或範圍；請把要承辦的單位都寫在主送。\n"
            "A supervision task names only To-Units (the units that carry it out), no "
            "Cc-Units or Scope."
        )
    assignment: Assignment | None = None
    if not deadline_text:
        problems.append(
            "請寫明辦理期限（期限：日期）。\nGive the deadline on a Deadline line (a date)."
        )
    else:
        start = dt.datetime.combine(today, dt.time(), tzinfo=calendar.tz)
        until = parse_until(deadline_text, start, calendar.tz)
        if until is None:
            problems.append(
                f"看不懂期限「{deadline_text}」，請寫日期，例如 2026-12-10 或 12月10日。\n"
                f"Deadline {deadline_text!r} is not a date; write e.g. 2026-12-10."
            )
        elif until.date() < today:
            problems.append(
                f"期限 {until.date()} 已過，請寫今天或以後的日期。\n"
                f"The deadline {until.date()} has passed; give today or a later day."
            )
        else:
            assignment = _assignment(until.date(), calendar)
    if problems:
        return "\n".join([*problems, _EXAMPLE])
    assert assignment is not None
    return assignment


def _assignment(day: dt.date, calendar: WorkCalendar) -> Assignment:
    # A time limit ending on a day off runs to the next working day.
    deadline = day if calendar.is_working_day(day) else calendar.next_working_day(day)
    return Assignment(
        deadline=deadline,
        due_at=dt.datetime.combine(deadline, calendar.day_end, tzinfo=calendar.tz),
        written=None if deadline == day else day,
    )


def assigned(decision: Decision, directory: Directory, now: dt.datetime) -> Decision:
    """The engine's decision on a new task, with the unit heads told and the deadline said.

    Each unit's head answers for its part, so they get the task for information; the clerk
    asked has the engine's notice. Every notice lists the units' parts. The deadline is the one
    :func:`check_assignment` put in the task's fields.
    """
    if not decision.accepted:
        return decision
    task = DocumentState(
        id=None,
        kind=KIND,
        title="",
        state=decision.state or "",
        author="",
        unit="",
        fields=decision.fields,
        steps=decision.open_steps,
    )
    rows = [_part_row(p) for p in parts(task, directory, now)]
    notices = [replace(n, variables={**n.variables, "parts": rows}) for n in decision.notices]
    for notice in list(notices):
        if notice.step_index is None:
            continue
        step = decision.open_steps[notice.step_index]
        for head in directory.members(step.unit or "", "unit_head"):
            if head.account != step.assignee:
                notices.append(replace(notice, to=head.account, action="none", step_index=None))
    when = decision.fields.get("deadline_local", "-")
    written = decision.fields.get("deadline_written")
    moved = f"（{written} 非工作日，順延）" if written else ""
    moved_en = f" ({written} is a day off: moved to the next working day)" if written else ""
    return replace(
        decision,
        notices=tuple(notices),
        reply=f"{decision.reply}\n期限：{when}{moved}\nDeadline: {when}{moved_en}",
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
    due: workflow.Due,
) -> Decision:
    """Decide a reply on a supervision task (see the module docstring).

    PROGRESS and DONE on a unit's part, APPROVE and REJECT on the office's confirmation are
    decided here; anything else (COMMENT, FORWARD, a word the step does not take) by the
    engine, whose answer says what the step accepts.
    """
    if command.verb not in _OURS:
        return workflow.apply_command(
            doc=doc,
            step_id=step_id,
            command=command,
            actor=actor,
            on_behalf_of=on_behalf_of,
            directory=directory,
            rules=rules,
            now=now,
            due=due,
        )
    found = workflow.acting_step(
        doc=doc,
        step_id=step_id,
        command=command,
        actor=actor,
        on_behalf_of=on_behalf_of,
        directory=directory,
        rules=rules,
        now=now,
        due=due,
    )
    if isinstance(found, Decision):
        return found
    step, rule, obo = found
    act = _Act(doc=doc, step=step, rule=rule, command=command, actor=actor, obo=obo)
    if step.name == PROGRESS_STEP and command.verb is Verb.PROGRESS:
        return _progress(act, directory, now)
    if step.name == PROGRESS_STEP and command.verb is Verb.DONE:
        return _done(act, directory, rules, now, due)
    if step.name == CONFIRM_STEP and command.verb is Verb.APPROVE:
        return _confirm(act, directory, now)
    if step.name == CONFIRM_STEP and command.verb is Verb.REJECT:
        return _send_back(act, directory, rules, now, due)
    return _no(
        f"督辦事項的「{rule.label}」不接受此命令，請聯繫辦公室。\n"
        f"A supervision task's {rule.name} step does not take {command.verb.value.upper()}.",
        f"{command.verb.value} at {step.name} of a supervision task",
    )


@dataclass(frozen=True, kw_only=True)
class _Act:
    """A command the engine's checks let through: on which step, by whom, for whom."""

    doc: DocumentState
    step: StepState
    rule: StepRule
    command: Command
    actor: str
    obo: str | None

    @property
    def unit(self) -> str:
        return self.step.unit or ""

    def trail(self, action: str, opinion: str, now: dt.datetime) -> TrailEntry:
        return TrailEntry(
            at=now,
            actor=self.actor,
            action=action,
            on_behalf_of=self.obo,
            opinion=opinion,
            step=self.rule.name,
        )

    def variables(
        self, directory: Directory, now: dt.datetime, doc: DocumentState, opinion: str
    ) -> dict[str, Any]:
        return {
            **workflow.notice_variables(doc, self.rule, opinion=opinion, by=self.actor),
            "unit": self.unit,
            "parts": [_part_row(p) for p in parts(doc, directory, now)],
        }


def _progress(act: _Act, directory: Directory, now: dt.datetime) -> Decision:
    """PROGRESS: recorded and told to the office; the part stays open."""
    doc, text = act.doc, act.command.opinion.strip()
    if not text:
        return _no(
            "請寫明辦理進展：「進展：已完成……」。\n"
            "Say what has been done: reply “PROGRESS: what has been done”.",
            "PROGRESS without text",
        )
    report = _report(act, text, now)
    fields = {"progress": {**doc.fields.get("progress", {}), act.unit: report}}
    after = replace(doc, fields={**doc.fields, **fields})
    unit = _unit_name(directory, act.unit)
    office = _name(directory, doc.author)
    return Decision(
        accepted=True,
        reply=(
            f"已記錄{unit}在「{doc.title}」的辦理進展，並告知{office}。期限不變。\n"
            f'Progress of {unit} on "{doc.title}" recorded; {office} is told. '
            "The deadline stands."
        ),
        state=doc.state,
        fields=fields,
        trail=(act.trail("progress", text, now),),
        notices=_to_office(
            doc, act, "progress", act.variables(directory, now, after, f"{unit}：{text}")
        ),
        reasons=(f"第二條: {act.actor} reports progress for {act.unit}; the part stays open",),
    )


def _done(
    act: _Act, directory: Directory, rules: Rules, now: dt.datetime, due: workflow.Due
) -> Decision:
    """DONE with a summary: the part goes to the office member who assigned it to confirm."""
    doc, summary = act.doc, act.command.opinion.strip()
    if not summary:
        return _no(
            "辦結需寫明辦理結果：「辦結：……」，辦公室據此確認。\n"
            "Say what was done: reply “DONE: summary”; the office confirms on it.",
            "DONE without a summary",
        )
    confirm_rule = _rule(rules, CONFIRM_STEP)
    if confirm_rule is None:
        return _broken_rules(CONFIRM_STEP)
    confirm = StepState(
        id=None,
        name=CONFIRM_STEP,
        assignee=doc.author,
        action=confirm_rule.action,
        due_at=due(now, confirm_rule.deadline_for(doc.urgency), doc.urgency),
        unit=act.unit,
    )
    fields = {"progress": {**doc.fields.get("progress", {}), act.unit: _report(act, summary, now)}}
    after = replace(
        doc,
        fields={**doc.fields, **fields},
        steps=(*_marked(doc, act.step, "done"), confirm),
    )
    unit = _unit_name(directory, act.unit)
    office = _name(directory, doc.author)
    variables = {
        **act.variables(directory, now, after, f"{unit}辦結：{summary}"),
        "due_at": confirm.due_at,
    }
    return Decision(
        accepted=True,
        reply=(
            f"已報送{unit}在「{doc.title}」的辦結情況，待{office}確認。\n"
            f'{unit}\'s part of "{doc.title}" reported done; {office} confirms it.'
        ),
        state=doc.state,
        fields=fields,
        open_steps=(confirm,),
        close_steps=_ids(act.step),
        trail=(act.trail("done", summary, now),),
        notices=(
            Notice(
                to=doc.author,
                template="part_done",
                action=confirm_rule.action,
                step_index=0,
                variables=variables,
            ),
        ),
        reasons=(f"第六條: {act.unit}'s part is done; {doc.author} confirms it",),
        outcome="done",
    )


def _confirm(act: _Act, directory: Directory, now: dt.datetime) -> Decision:
    """APPROVE: the unit's part is confirmed; the task closes when every part is."""
    doc, opinion = act.doc, act.command.opinion.strip()
    after = replace(doc, steps=_marked(doc, act.step, "approve"))
    standing = parts(after, directory, now)
    unit = _unit_name(directory, act.unit)
    trail = act.trail("approve", f"{unit}{'：' + opinion if opinion else ''}", now)
    if all(p.state == "confirmed" for p in standing):
        closed = replace(after, state=CLOSED)
        variables = act.variables(directory, now, closed, opinion)
        handlers = dict.fromkeys(p.handler for p in standing if p.handler)
        return Decision(
            accepted=True,
            reply=(
                f"已確認{unit}的辦結。各單位均已辦結，「{doc.title}」督辦完畢。\n"
                f'{unit}\'s part confirmed. Every unit is done: "{doc.title}" is closed.'
            ),
            state=CLOSED,
            close_steps=_ids(act.step),
            trail=(trail,),
            notices=tuple(
                Notice(to=account, template="closed", variables=variables)
                for account in handlers
                if account != act.actor
            ),
            reasons=(f"第六條: {act.unit} confirmed; every part is confirmed, the task closes",),
            outcome="approve",
        )
    waiting = [p for p in standing if p.state != "confirmed"]
    left_zh = "、".join(f"{p.unit_name}（{_STATE_ZH[p.state]}）" for p in waiting)
    left_en = ", ".join(f"{p.unit_name} ({p.state})" for p in waiting)
    notices: tuple[Notice, ...] = ()
    handler = _handler(doc, act.unit)
    if handler is not None and handler != act.actor:
        notices = (
            Notice(
                to=handler,
                template="approved",
                variables=act.variables(directory, now, after, f"{unit}：{opinion or '同意'}"),
            ),
        )
    return Decision(
        accepted=True,
        reply=(
            f"已確認{unit}的辦結。尚未辦結：{left_zh}。\n"
            f"{unit}'s part confirmed. Still open: {left_en}."
        ),
        state=doc.state,
        close_steps=_ids(act.step),
        trail=(trail,),
        notices=notices,
        reasons=(f"第六條: {act.unit} confirmed; {len(waiting)} part(s) still open",),
        outcome="approve",
    )


def _send_back(
    act: _Act, directory: Directory, rules: Rules, now: dt.datetime, due: workflow.Due
) -> Decision:
    """REJECT with a reason: that unit's part opens again; the other parts are untouched."""
    doc, reason = act.doc, act.command.opinion.strip()
    if not reason:
        return _no(
            "退回需要說明理由：請回覆「退回：理由」。\n"
            "Sending back needs a reason: reply “REJECT: reason”.",
            "REJECT without a reason",
        )
    handler = _handler(doc, act.unit)
    if handler is None:
        return _no(
            "找不到該單位的承辦人，請聯繫管理員。\nNo one handled this unit's part.",
            f"no progress step for {act.unit}",
        )
    progress_rule = _rule(rules, PROGRESS_STEP)
    if progress_rule is None:
        return _broken_rules(PROGRESS_STEP)
    # The part keeps the task's deadline; sent back after it, the unit gets the rule's days.
    again = due(now, progress_rule.deadline_for(doc.urgency), doc.urgency)
    deadline = _deadline(doc)
    reopened = StepState(
        id=None,
        name=PROGRESS_STEP,
        assignee=handler,
        action=progress_rule.action,
        due_at=max(deadline, again) if deadline is not None else again,
        unit=act.unit,
    )
    after = replace(doc, steps=(*_marked(doc, act.step, "reject"), reopened))
    unit = _unit_name(directory, act.unit)
    variables = {**act.variables(directory, now, after, reason), "due_at": reopened.due_at}
    return Decision(
        accepted=True,
        reply=(
            f"已將{unit}在「{doc.title}」的辦結退回重辦。\n"
            f'{unit}\'s part of "{doc.title}" sent back to be done again.'
        ),
        state=doc.state,
        open_steps=(reopened,),
        close_steps=_ids(act.step),
        trail=(act.trail("reject", f"{unit}：{reason}", now),),
        notices=(
            Notice(
                to=handler,
                template="rejected",
                action=progress_rule.action,
                step_index=0,
                variables=variables,
            ),
        ),
        reasons=(f"第六條: {act.actor} sends {act.unit}'s part back",),
        outcome="reject",
    )


# --- Where the parts stand -------------------------------------------------------------------

_STATE_ZH: Final = {"progressing": "辦理中", "done": "待確認", "confirmed": "已確認"}


def parts(doc: DocumentState, directory: Directory, now: dt.datetime) -> list[Part]:
    """Each unit's part of ``doc``, in the order of its 主送 line."""
    found = []
    reports = doc.fields.get("progress", {})
    for unit in doc.fields.get("to_units", ()):
        steps = [
            s
            for s in doc.steps
            if s.unit == unit and s.name in (PROGRESS_STEP, CONFIRM_STEP) and s.state != "cancelled"
        ]
        last = steps[-1] if steps else None
        if last is None or (last.name == PROGRESS_STEP and last.state == "waiting"):
            state = "progressing"
        elif last.name == CONFIRM_STEP and last.state == "done" and last.outcome == "approve":
            state = "confirmed"
        else:
            state = "done"
        progress = [s for s in steps if s.name == PROGRESS_STEP]
        current = progress[-1] if progress else None
        report = reports.get(unit, {})
        due_at = current.due_at if current else None
        handler = (current.on_behalf_of or current.assignee) if current else None
        found.append(
            Part(
                unit=unit,
                unit_name=_unit_name(directory, unit),
                state=state,
                handler=handler,
                handler_name=_name(directory, handler) if handler else "-",
                due_at=due_at,
                overdue=state == "progressing" and due_at is not None and due_at < now,
                progress=str(report.get("text", "")),
                reported_at=dt.datetime.fromisoformat(report["at"]) if "at" in report else None,
            )
        )
    return found


def report_item(
    doc: DocumentState, directory: Directory, now: dt.datetime, tz: dt.tzinfo
) -> dict[str, Any]:
    """One open task for the weekly supervision report, its times in ``tz``."""
    standing = parts(doc, directory, now)
    deadline = _deadline(doc)
    return {
        "id": doc.id,
        "title": doc.title,
        "number": doc.number,
        "author": _name(directory, doc.author),
        "deadline": f"{deadline.astimezone(tz):%Y-%m-%d %H:%M}" if deadline else "-",
        "overdue": any(p.overdue for p in standing),
        "parts": [_part_row(p, tz, deadline) for p in standing],
    }


def _part_row(
    part: Part, tz: dt.tzinfo | None = None, deadline: dt.datetime | None = None
) -> dict[str, Any]:
    """A part as the templates show it; its deadline only when not the task's ``deadline``."""
    at = part.reported_at
    own_due = part.due_at is not None and part.due_at != deadline
    return {
        "unit": part.unit_name,
        "state": part.state,
        "handler": part.handler_name,
        "overdue": part.overdue,
        "progress": part.progress,
        "reported_at": f"{at.astimezone(tz):%Y-%m-%d}" if at and tz else "",
        "due": f"{part.due_at.astimezone(tz):%Y-%m-%d %H:%M}"
        if own_due and part.due_at and tz
        else "",
    }


# --- Small helpers ---------------------------------------------------------------------------


def _report(act: _Act, text: str, now: dt.datetime) -> dict[str, str]:
    return {"at": now.isoformat(), "by": act.actor, "text": text}


def _deadline(doc: DocumentState) -> dt.datetime | None:
    return deadline_of(doc.fields)


def deadline_of(fields: Mapping[str, Any]) -> dt.datetime | None:
    """A task's deadline as its document's fields keep it (``Assignment.fields``)."""
    raw = fields.get("deadline_at")
    return dt.datetime.fromisoformat(raw) if raw else None


def _handler(doc: DocumentState, unit: str) -> str | None:
    """The person asked for ``unit``'s part (the delegator when a delegate acts)."""
    progress = [s for s in doc.steps if s.unit == unit and s.name == PROGRESS_STEP]
    return (progress[-1].on_behalf_of or progress[-1].assignee) if progress else None


def _marked(doc: DocumentState, step: StepState, outcome: str) -> tuple[StepState, ...]:
    """``doc``'s steps with ``step`` done with ``outcome``, as they will be after the decision."""
    return tuple(
        replace(s, state="done", outcome=outcome) if s.id == step.id else s for s in doc.steps
    )


def _to_office(
    doc: DocumentState, act: _Act, template: str, variables: dict[str, Any]
) -> tuple[Notice, ...]:
    if doc.author in (act.actor, act.obo):
        return ()
    return (Notice(to=doc.author, template=template, variables=variables),)


def _rule(rules: Rules, name: str) -> StepRule | None:
    flow = rules.flow(KIND)
    return flow.step(name) if flow is not None else None


def _broken_rules(name: str) -> Decision:
    # A rules file that renamed the flow's steps; the administrator must put them back.
    return _no(
        "督查督辦的流程設定有誤，請聯繫辦公室。\n"
        "The supervision flow's rules are broken; contact the office.",
        f"the {KIND} flow has no {name} step",
    )


def _ids(step: StepState) -> tuple[int, ...]:
    return (step.id,) if step.id is not None else ()


def _unit_name(directory: Directory, unit: str) -> str:
    found = directory.units.get(unit)
    return found.name if found is not None else unit


def _name(directory: Directory, account: str) -> str:
    person = directory.people.get(account)
    return person.name if person is not None else account


def _no(reply: str, reason: str) -> Decision:
    return Decision(accepted=False, reply=reply, reasons=(reason,))
