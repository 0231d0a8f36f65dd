"""The office's hand on the wheel (第六條, 第二十一條 催辦): stuck work moves.

The office runs the system (第六條) and chases what is late (第二十一條), so it may give a
waiting step to another person (REASSIGN / 轉辦), end a document (CANCEL / 撤銷), or move the
deadline of its waiting steps (EXTEND / 延期). Each is a pure decision here, written and told
by the desk like any other: the people concerned get a notice, the trail (the audit log) keeps
who did it and why, and a refused command changes nothing.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any, Final

from yizhan.routing.directory import Directory, PersonInfo
from yizhan.routing.documents import Decision, DocumentState, Notice, StepState, TrailEntry
from yizhan.routing.drafts import simplified
from yizhan.routing.rules import CANCELLED, CLOSED, Flow

__all__ = [
    "Reference",
    "cancel",
    "extend",
    "find_person",
    "is_office",
    "leaving_reason",
    "parse_cancel",
    "parse_extend",
    "parse_reassign",
    "reassign",
    "refusal",
    "successor",
]

#: The notice templates of these decisions (labels in ``desk.notices``).
REASSIGNED: Final = "reassigned"
CANCEL_NOTICE: Final = "cancelled"
EXTENDED: Final = "extended"

_SEPARATORS: Final = r"[\s,，、:：;；]+"
# "#12 王芳 理由", "12，wangfang，理由", "#12.34 王芳 理由" (a step of the document).
_REASSIGN: Final = re.compile(
    r"^#?\s*(?P<doc>\d+)(?:[./](?P<step>\d+))?" + _SEPARATORS + r"(?P<name>[^\s,，、:：;；]+)"
    r"(?:" + _SEPARATORS + r"(?P<reason>.+))?$",
    re.DOTALL,
)
# "#12 理由"
_CANCEL: Final = re.compile(
    r"^#?\s*(?P<doc>\d+)(?:" + _SEPARATORS + r"(?P<reason>.+))?$", re.DOTALL
)
# "#12 2026-12-20", "#12.34 12月20日"
_EXTEND: Final = re.compile(
    r"^#?\s*(?P<doc>\d+)(?:[./](?P<step>\d+))?(?:" + _SEPARATORS + r"(?P<date>.+))?$", re.DOTALL
)


@dataclass(frozen=True, kw_only=True)
class Reference:
    """What an oversight command names: the document, a step of it (optional), and the rest."""

    document_id: int
    step_id: int | None = None
    name: str = ""
    text: str = ""


def is_office(directory: Directory, account: str) -> bool:
    """Whether ``account`` speaks for the office (第六條): an active member of a unit of kind
    office."""
    person = directory.people.get(account)
    return (
        person is not None
        and person.state == "active"
        and directory.in_unit_of_kind(account, "office")
    )


def parse_reassign(argument: str) -> Reference | None:
    """``#id name reason`` (``#id.step`` for one step of several); None when unreadable."""
    found = _REASSIGN.match(_clean(argument))
    if found is None:
        return None
    return Reference(
        document_id=int(found["doc"]),
        step_id=int(found["step"]) if found["step"] else None,
        name=found["name"],
        text=(found["reason"] or "").strip(),
    )


def parse_cancel(argument: str) -> Reference | None:
    """``#id reason``; None when unreadable."""
    found = _CANCEL.match(_clean(argument))
    if found is None:
        return None
    return Reference(document_id=int(found["doc"]), text=(found["reason"] or "").strip())


def parse_extend(argument: str) -> Reference | None:
    """``#id date`` (``#id.step date`` for one step); None when unreadable."""
    found = _EXTEND.match(_clean(argument))
    if found is None:
        return None
    return Reference(
        document_id=int(found["doc"]),
        step_id=int(found["step"]) if found["step"] else None,
        text=(found["date"] or "").strip(),
    )


def _clean(argument: str) -> str:
    return unicodedata.normalize("NFKC", argument).strip()


def find_person(ref: str, directory: Directory, domain: str) -> PersonInfo | None:
    """The one person ``ref`` names: an account, a real name (either script) or an address."""
    text = unicodedata.normalize("NFKC", ref).strip()
    if "@" in text:
        return directory.person_by_address(parseaddr(text)[1] or text, domain)
    if text.casefold() in directory.people:
        return directory.people[text.casefold()]
    key = simplified(text)
    named = [p for p in directory.people.values() if simplified(p.name) == key]
    return named[0] if len(named) == 1 else None


def refusal(zh: str, en: str) -> Decision:
    """A refused oversight command: nothing changes, the answer says why."""
    return Decision(accepted=False, reply=f"{zh}\n{en}", reasons=(en,))


def _open_to_act(doc: DocumentState) -> Decision | None:
    """The refusal for a document no longer moving, if it is one."""
    if doc.state == CANCELLED:
        return refusal(
            f"文件 #{doc.id} 已撤銷，不能再處理。", f"Document #{doc.id} was cancelled already."
        )
    if doc.state == CLOSED:
        return refusal(
            f"文件 #{doc.id} 已辦結，沒有可處理的待辦。",
            f"Document #{doc.id} is closed; nothing waits on it.",
        )
    return None


def _waiting(doc: DocumentState, step_id: int | None) -> list[StepState] | Decision:
    """The waiting steps a command means (one step when ``step_id`` names it)."""
    waiting = [s for s in doc.steps if s.state == "waiting"]
    if step_id is not None:
        waiting = [s for s in waiting if s.id == step_id]
        if not waiting:
            return refusal(
                f"文件 #{doc.id} 沒有等待中的步驟 {step_id}。",
                f"Document #{doc.id} has no waiting step {step_id}.",
            )
    if not waiting:
        return refusal(
            f"文件 #{doc.id} 目前沒有等待辦理的步驟。",
            f"Nothing waits on document #{doc.id}.",
        )
    return waiting


def _steps_listed(doc: DocumentState, steps: list[StepState], directory: Directory) -> str:
    return "\n".join(f"  #{doc.id}.{s.id} {s.name} — {_name(directory, s.assignee)}" for s in steps)


def _name(directory: Directory, account: str) -> str:
    person = directory.people.get(account)
    return f"{person.name}（{account}）" if person else account


def _base(doc: DocumentState, *, opinion: str, by: str) -> dict[str, Any]:
    return {
        "title": doc.title,
        "kind": doc.kind,
        "number": doc.number,
        "author": doc.author,
        "opinion": opinion,
        "by": by,
    }


def reassign(
    doc: DocumentState,
    *,
    step_id: int | None,
    to: PersonInfo,
    reason: str,
    actor: str,
    directory: Directory,
    flow: Flow | None,
    now: dt.datetime,
) -> Decision:
    """REASSIGN (轉辦): the waiting step goes to ``to``, with its deadline, for ``reason``.

    The old step is withdrawn (its request mail's token refuses from then on), a new one opens
    for ``to`` with the request mail; the person who had it and the author are told why.
    """
    stopped = _open_to_act(doc)
    if stopped is not None:
        return stopped
    if not reason:
        return refusal(
            "請寫明轉辦理由，例如：轉辦 #12 王芳 原經辦人調離",
            "Give the reason, e.g. REASSIGN #12 wangfang the person left",
        )
    if to.state != "active":
        return refusal(
            f"{to.name}（{to.account}）的帳號已停用，不能轉辦給他。",
            f"{to.name}'s account ({to.account}) is {to.state}; choose someone else.",
        )
    found = _waiting(doc, step_id)
    if isinstance(found, Decision):
        return found
    if len(found) > 1:
        same_unit = [s for s in found if s.unit == to.unit or _unit_of(directory, s) == to.unit]
        found = same_unit if len(same_unit) == 1 else found
    if len(found) > 1:
        return refusal(
            f"文件 #{doc.id} 有 {len(found)} 個步驟在等待，請寫明轉辦哪一個，"
            f"例如：轉辦 #{doc.id}.{found[0].id} {to.name} 理由\n"
            + _steps_listed(doc, found, directory),
            f"{len(found)} steps wait on document #{doc.id}; name one, e.g. "
            f"REASSIGN #{doc.id}.{found[0].id} {to.account} reason",
        )
    (step,) = found
    if to.account == step.assignee:
        return refusal(f"此步驟已在{to.name}處，無需轉辦。", f"The step is already with {to.name}.")
    rule = flow.step(step.name) if flow is not None else None
    handed = StepState(
        id=None,
        name=step.name,
        assignee=to.account,
        action=step.action,
        due_at=step.due_at,
        unit=step.unit,
    )
    opinion = f"辦公室轉辦 Reassigned by the office: {_name(directory, step.assignee)} → " + (
        f"{_name(directory, to.account)}；理由 reason: {reason}"
    )
    variables = {**_base(doc, opinion=opinion, by=actor), "due_at": step.due_at}
    told = [
        a
        for a in (step.assignee, step.on_behalf_of)
        if a and a in directory.people and directory.people[a].state == "active"
    ]
    notices = [
        Notice(
            to=to.account,
            template=rule.template if rule is not None else "step_request",
            action=step.action,
            step_index=0,
            variables=variables,
        ),
        *(Notice(to=a, template=REASSIGNED, variables=variables) for a in told),
    ]
    author = directory.people.get(doc.author)
    if author is not None and author.state == "active" and doc.author not in {to.account, *told}:
        notices.append(Notice(to=doc.author, template=REASSIGNED, variables=variables))
    return Decision(
        accepted=True,
        reply=(
            f"已將文件 #{doc.id}「{doc.title}」的{step.name}步驟由"
            f"{_name(directory, step.assignee)}轉辦給{_name(directory, to.account)}，"
            "已通知相關人員。\n"
            f'Reassigned step {step.name} of #{doc.id} "{doc.title}" from {step.assignee} '
            f"to {to.account}; the people concerned have been told."
        ),
        open_steps=(handed,),
        cancel_steps=(step.id,) if step.id is not None else (),
        trail=(
            TrailEntry(
                at=now,
                actor=actor,
                action="reassign",
                opinion=f"{step.assignee} → {to.account}: {reason}",
                step=step.name,
            ),
        ),
        notices=tuple(notices),
        reasons=(f"{step.name}: REASSIGN by {actor} from {step.assignee} to {to.account}",),
        outcome="reassign",
    )


def _unit_of(directory: Directory, step: StepState) -> str | None:
    person = directory.people.get(step.assignee)
    return person.unit if person else None


def cancel(
    doc: DocumentState, *, reason: str, actor: str, directory: Directory, now: dt.datetime
) -> Decision:
    """CANCEL (撤銷): the document ends; every waiting step is withdrawn and its holder told,
    and so is the author. Its request mails are void: their tokens refuse."""
    stopped = _open_to_act(doc)
    if stopped is not None:
        return stopped
    if not reason:
        return refusal(
            f"請寫明撤銷理由，例如：撤銷 #{doc.id} 重複發文",
            f"Give the reason, e.g. CANCEL #{doc.id} sent twice",
        )
    waiting = [s for s in doc.steps if s.state == "waiting"]
    told: dict[str, None] = {}
    for s in waiting:
        told[s.assignee] = None
        if s.on_behalf_of:
            told[s.on_behalf_of] = None
    told[doc.author] = None
    opinion = f"辦公室撤銷 Cancelled by the office；理由 reason: {reason}"
    variables = _base(doc, opinion=opinion, by=actor)
    return Decision(
        accepted=True,
        reply=(
            f"已撤銷文件 #{doc.id}「{doc.title}」，撤回待辦 {len(waiting)} 件，已通知相關人員。\n"
            f'Cancelled #{doc.id} "{doc.title}"; {len(waiting)} waiting step(s) withdrawn, '
            "the people concerned told."
        ),
        state=CANCELLED,
        fields={"cancelled_reason": reason, "cancelled_by": actor},
        cancel_steps=tuple(s.id for s in waiting if s.id is not None),
        trail=(TrailEntry(at=now, actor=actor, action="cancel", opinion=reason),),
        notices=tuple(Notice(to=a, template=CANCEL_NOTICE, variables=variables) for a in told),
        reasons=(f"CANCEL by {actor}: {len(waiting)} steps withdrawn",),
        outcome="cancel",
    )


def extend(
    doc: DocumentState,
    *,
    step_id: int | None,
    due_at: dt.datetime,
    actor: str,
    directory: Directory,
    now: dt.datetime,
    shown: str,
) -> Decision:
    """EXTEND (延期): the waiting steps (or the one named) are due at ``due_at`` instead; the
    people who hold them are told. ``shown`` is the new deadline as people read it."""
    stopped = _open_to_act(doc)
    if stopped is not None:
        return stopped
    if due_at <= now:
        return refusal(
            f"新期限 {shown} 已經過去，請寫以後的日期。",
            f"The new deadline {shown} has passed; write a later day.",
        )
    found = _waiting(doc, step_id)
    if isinstance(found, Decision):
        return found
    moved = [s for s in found if s.due_at != due_at]
    if not moved:
        return refusal(
            f"文件 #{doc.id} 的期限已是 {shown}，無需延期。",
            f"Document #{doc.id} is already due {shown}.",
        )
    opinion = f"辦公室延期 Deadline moved by the office: {shown}"
    variables = {**_base(doc, opinion=opinion, by=actor), "due_at": due_at}
    told: dict[str, None] = {}
    for s in moved:
        told[s.assignee] = None
    return Decision(
        accepted=True,
        reply=(
            f"已將文件 #{doc.id}「{doc.title}」{len(moved)} 個待辦步驟的期限改為 {shown}，"
            "已通知經辦人。\n"
            f'Moved the deadline of {len(moved)} waiting step(s) of #{doc.id} "{doc.title}" '
            f"to {shown}; the people concerned have been told."
        ),
        extend_steps=tuple((s.id, due_at) for s in moved if s.id is not None),
        trail=tuple(
            TrailEntry(
                at=now,
                actor=actor,
                action="extend",
                opinion=f"{s.assignee}: {shown}",
                step=s.name,
            )
            for s in moved
        ),
        notices=tuple(Notice(to=a, template=EXTENDED, variables=variables) for a in told),
        reasons=(f"EXTEND by {actor} to {due_at.isoformat()}",),
        outcome="extend",
    )


# --- A person leaves their post or their unit (第十條; mine rules 一(三)) ---------------------


def successor(
    directory: Directory, account: str, *, unit: str, named: str | None = None
) -> PersonInfo | None:
    """Who takes over the waiting steps of ``account``, who leaves ``unit``: the person
    ``named`` in the change request if active, else the unit's head, else the bureau leader
    in charge of the unit (第五條), else the bureau's head; never ``account`` itself."""

    def usable(person: PersonInfo | None) -> bool:
        return person is not None and person.state == "active" and person.account != account

    chosen = directory.people.get(named or "")
    if usable(chosen):
        return chosen
    for person in directory.members(unit, "unit_head"):
        if usable(person):
            return person
    info = directory.units.get(unit)
    leader = directory.people.get(info.leader) if info is not None and info.leader else None
    if usable(leader):
        return leader
    for bureau in directory.units_of_kind("bureau"):
        for person in directory.members(bureau.id, "unit_head"):
            if usable(person):
                return person
    return None


def leaving_reason(directory: Directory, account: str, why: str) -> str:
    """The reason a handover gives, in both languages: ``why`` is suspended, revoked or moved."""
    person = directory.people.get(account)
    name = person.name if person else account
    zh, en = _LEAVING.get(why, (why, why))
    return f"{name}{zh}，其待辦轉交辦理 {name} {en}; their waiting work is handed over"


_LEAVING: Final = {
    "suspended": ("的帳號已停用", "was suspended"),
    "revoked": ("已離崗，帳號已註銷", "left their post"),
    "moved": ("已調離本單位", "moved to another unit"),
}
