"""Bulletin rules of 第二十三條: reads a bulletin's scope and the facts it is refused on.

A bulletin (公告板, at gonggao@) goes to the scope its author names on the 範圍/Scope line:
units, roles (綜合人員, 主要領導 …) or people, in any mix; everyone matching any of them gets it.
The whole bureau (the bureau unit, or 全局/全體/all) is allowed only for a special bulletin
(marked [特殊]), which a bureau leader approves, as is an important one ([重要]). Meeting
notices, forwarded documents and requests for materials are not bulletins. The engine refuses
on the facts computed here through the gonggao flow's content rules
(``routing.rules.CONTENT_RULES``); this module only reads.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from yizhan.routing.directory import Directory, PersonInfo
from yizhan.routing.documents import Decision, DocumentState, TrailEntry
from yizhan.routing.drafts import ALL_UNITS_WORDS, Draft, simplified
from yizhan.routing.effects import WithdrawBulletin
from yizhan.routing.rules import CLOSED

#: A bulletin whose expiry date has passed: off the board, still on record.
EXPIRED: Final = "expired"
#: A bulletin cleared at year end: kept in the archive, which the office can search.
ARCHIVED: Final = "archived"

__all__ = [
    "ROLE_WORDS",
    "BulletinScope",
    "archive",
    "audience",
    "bulletin_facts",
    "cleanup_moment",
    "cleanup_notice_due",
    "default_expiry",
    "expire",
    "is_expired",
    "is_live",
    "may_read",
    "parse_expiry",
    "parse_scope",
    "parse_withdraw",
    "withdraw",
]

#: Words naming a role in a scope (compared after folding to Simplified, case and spaces).
ROLE_WORDS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "综合人员": "clerk",
        "文书": "clerk",
        "clerk": "clerk",
        "clerks": "clerk",
        "主要领导": "unit_head",
        "unit_head": "unit_head",
        "分管领导": "unit_leader",
        "unit_leader": "unit_leader",
        "局领导": "bureau_leader",
        "bureau_leader": "bureau_leader",
        "印章管理员": "seal_custodian",
        "seal_custodian": "seal_custodian",
    }
)

# What a meeting notice, a forwarded document or a request for materials says in its title,
# after folding to Simplified (第二十三條 names all three).
_MEETING: Final = re.compile(r"会议通知|召开.*会议|meeting notice|notice of (the )?meeting", re.I)
_FORWARD: Final = re.compile(r"^\s*(fwd?|转发|转寄)\s*[:：]|转发", re.I)
_MATERIALS: Final = re.compile(
    r"上报|报送|提交.*材料|征集.*材料|材料.*报|联系工作|request(s)? for material|submit", re.I
)
_DATE: Final = re.compile(r"^\s*(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?\s*$")
_WITHDRAW: Final = re.compile(r"^\s*(?:撤回|撤销|撤銷|withdraw)\s*[:：]?\s*#?(\d+)\s*(.*)$", re.I)


@dataclass(frozen=True, kw_only=True)
class BulletinScope:
    """Who a bulletin is for: unit ids, role names and accounts; what could not be read."""

    units: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    people: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()
    all_bureau: bool = False

    @property
    def empty(self) -> bool:
        """True when the scope names nobody."""
        return not (self.units or self.roles or self.people)


def _fold(text: str) -> str:
    return "".join(simplified(text).casefold().split())


def parse_scope(refs: Iterable[str], directory: Directory) -> BulletinScope:
    """Read each 範圍 reference as a unit (id or name), a role word, or a person (account, name).

    The bureau unit, or a word for everyone (``drafts.ALL_UNITS_WORDS``), is the whole bureau.
    """
    units: list[str] = []
    roles: list[str] = []
    people: list[str] = []
    unknown: list[str] = []
    all_bureau = False
    names = {_fold(u.name): u.id for u in directory.units.values()}
    for ref in refs:
        key = _fold(ref)
        unit_id = ref.strip() if ref.strip() in directory.units else names.get(key)
        person = directory.people.get(ref.strip().lower())
        same_name = [p for p in directory.people.values() if _fold(p.name) == key]
        if key in ALL_UNITS_WORDS:
            all_bureau = True
        elif unit_id is not None:
            if directory.units[unit_id].kind == "bureau":
                all_bureau = True
            elif unit_id not in units:
                units.append(unit_id)
        elif key in ROLE_WORDS:
            if ROLE_WORDS[key] not in roles:
                roles.append(ROLE_WORDS[key])
        elif person is not None or len(same_name) == 1:
            account = person.account if person is not None else same_name[0].account
            if account not in people:
                people.append(account)
        else:
            unknown.append(ref)
    bureau = [u.id for u in directory.units_of_kind("bureau")]
    if all_bureau:
        units = bureau[:1] or sorted(directory.units)
    return BulletinScope(
        units=tuple(units),
        roles=tuple(roles),
        people=tuple(people),
        unknown=tuple(unknown),
        all_bureau=all_bureau,
    )


def bulletin_facts(draft: Draft, subject: str, scope: BulletinScope) -> dict[str, bool]:
    """The facts the gonggao flow's content rules and conditions read (第二十三條).

    ``needs_bureau_leader`` routes the approval: an important bulletin, or a special one to the
    whole bureau, goes to a bureau leader; any other to the author's unit head.
    """
    title = simplified(draft.title)
    return {
        "no_scope": scope.empty,
        "all_bureau_not_special": scope.all_bureau and not draft.special,
        "meeting_notice": bool(_MEETING.search(title)),
        "requests_materials": bool(_MATERIALS.search(title)),
        "forwards_document": bool(_FORWARD.search(simplified(subject))),
        "needs_bureau_leader": draft.important or (scope.all_bureau and draft.special),
    }


def audience(
    directory: Directory, units: Sequence[str], roles: Sequence[str], people: Sequence[str]
) -> list[PersonInfo]:
    """Everyone active in scope, in account order: in a unit, holding a role, or named.

    A bureau unit in ``units`` is the whole bureau (allowed only for a special bulletin).
    """
    everyone = any(directory.units[u].kind == "bureau" for u in units if u in directory.units)
    chosen = [
        p
        for p in directory.people.values()
        if p.state == "active"
        and (everyone or p.unit in units or p.roles & set(roles) or p.account in people)
    ]
    return sorted(chosen, key=lambda p: p.account)


def default_expiry(today: dt.date) -> dt.date:
    """The end of ``today``'s year: every bulletin is cleared at year end (第二十三條)."""
    return dt.date(today.year, 12, 31)


def parse_expiry(text: str | None, today: dt.date) -> dt.date | str:
    """The expiry date written on the 期限 line (default: the year end), or why it is wrong."""
    if not text:
        return default_expiry(today)
    found = _DATE.match(text)
    try:
        date = dt.date(*(int(g) for g in found.groups())) if found else None
    except ValueError:
        date = None
    if date is None:
        return (
            f"期限「{text}」無法識別，請寫日期，例如 期限：{today.year}-12-31。\n"
            f"Deadline {text!r} is not a date; write e.g. Deadline: {today.year}-12-31."
        )
    if date < today:
        return f"期限 {date} 已過。\nThe expiry date {date} has passed."
    if date > default_expiry(today):
        # 第二十三條: every bulletin is cleared at the end of the year.
        return (
            f"公告每年年底清理（第二十三條），期限不能晚於 {default_expiry(today)}。\n"
            f"Bulletins are cleared at year end (art. 23); expire by {default_expiry(today)}."
        )
    return date


def is_expired(fields: Mapping[str, Any], today: dt.date) -> bool:
    """Whether a published bulletin with ``fields`` has lapsed on ``today``."""
    expires = fields.get("expires")
    return bool(expires) and dt.date.fromisoformat(str(expires)) < today


#: Days before the year-end clean-up that authors are told to keep what matters (第二十三條).
CLEANUP_NOTICE_DAYS: Final = 7


def is_live(doc: DocumentState) -> bool:
    """Whether ``doc`` is a bulletin on the board: published, not withdrawn, not lapsed."""
    return (
        doc.kind == "gonggao"
        and doc.state == CLOSED
        and bool(doc.fields.get("published_at"))
        and not doc.fields.get("withdrawn_at")
    )


def expire(doc: DocumentState, *, today: dt.date, now: dt.datetime, actor: str) -> Decision | None:
    """Take a live bulletin off the board once its expiry date has passed (第二十三條)."""
    if not is_live(doc) or not is_expired(doc.fields, today):
        return None
    expires = doc.fields.get("expires")
    return Decision(
        accepted=True,
        reply="",
        state=EXPIRED,
        fields={"expired_at": now.isoformat()},
        trail=(TrailEntry(at=now, actor=actor, action="expire", opinion=f"期限 {expires}"),),
        reasons=(f"第二十三條: the bulletin expired on {expires}",),
        outcome="expire",
    )


def cleanup_moment(year: int, tz: dt.tzinfo) -> dt.datetime:
    """When the bulletins of ``year`` are cleared: as that year ends, local time (第二十三條)."""
    return dt.datetime(year + 1, 1, 1, tzinfo=tz)


def cleanup_notice_due(today: dt.date) -> bool:
    """Whether authors are due their notice of this year's clean-up (from 7 days before)."""
    return today >= default_expiry(today) - dt.timedelta(days=CLEANUP_NOTICE_DAYS - 1)


def archive(doc: DocumentState, *, now: dt.datetime, actor: str) -> Decision | None:
    """Clear a bulletin of a past year from the board into the archive (第二十三條).

    Every bulletin is cleared, live, lapsed or withdrawn; the archive keeps its text, which
    the office can still search.
    """
    if doc.kind != "gonggao" or doc.state not in (CLOSED, EXPIRED) or doc.fields.get("archived_at"):
        return None
    return Decision(
        accepted=True,
        reply="",
        state=ARCHIVED,
        fields={"archived_at": now.isoformat()},
        trail=(TrailEntry(at=now, actor=actor, action="archive", opinion="年底清理"),),
        reasons=("第二十三條: bulletins are cleared at year end",),
        outcome="archive",
    )


def may_read(state: str, fields: Mapping[str, Any], account: str, *, in_office: bool) -> bool:
    """Whether ``account`` may look a bulletin up (STATUS, SEARCH) besides its author and
    approvers: those it was published to, while it is on the board (not withdrawn) or after
    it lapsed; once
    cleared at year end, the office, which keeps the archive searchable (第二十三條)."""
    if state == ARCHIVED:
        return in_office
    if fields.get("withdrawn_at"):
        return False
    if state in (CLOSED, EXPIRED) and fields.get("published_at"):
        return account in fields.get("recipients", ())
    return False


def parse_withdraw(text: str) -> tuple[int, str] | None:
    """A withdrawal written at gonggao@ ("撤回 12 理由", "WITHDRAW #12"): id and reason."""
    found = _WITHDRAW.match(text)
    if found is None:
        return None
    return int(found[1]), found[2].strip()


def withdraw(
    doc: DocumentState, *, actor: str, reason: str, now: dt.datetime, office: bool = False
) -> Decision:
    """Decide a withdrawal: by the author, or by the office (``office``: 第六條 gives it every
    module but leave, so it takes any bulletin off the board); only a published bulletin, only
    once (第二十三條)."""
    if doc.kind != "gonggao":
        return _no(f"#{doc.id} 不是公告。\n#{doc.id} is not a bulletin.", "not a bulletin")
    if actor != doc.author and not office:
        return _no(
            "只有發布人或辦公室可以撤回公告。\n"
            "Only the author or the office may withdraw a bulletin.",
            f"{actor} is neither the author nor the office",
        )
    if doc.state in (EXPIRED, ARCHIVED):
        return _no(
            "公告已過期或已在年底清理中歸檔，不在公告板上，無需撤回。\n"
            "The bulletin has expired or was archived; it is no longer on the board.",
            f"already {doc.state}",
        )
    if doc.state != CLOSED or not doc.fields.get("published_at"):
        return _no(
            "公告尚未發布；審批中的公告請等待結果或請審批人退回。\n"
            "The bulletin is not published yet.",
            "not published",
        )
    if doc.fields.get("withdrawn_at"):
        return _no("公告已經撤回。\nThe bulletin was already withdrawn.", "already withdrawn")
    return Decision(
        accepted=True,
        reply=(
            f"已撤回公告「{doc.title}」，並通知收到公告的人員。\n"
            f'Bulletin "{doc.title}" withdrawn; its recipients are told.'
        ),
        state=CLOSED,
        fields={"withdrawn_at": now.isoformat(), "withdrawn_reason": reason},
        trail=(TrailEntry(at=now, actor=actor, action="withdraw", opinion=reason),),
        reasons=(
            f"第二十三條: {actor}, the author, withdraws the bulletin"
            if actor == doc.author
            else f"第六條: {actor}, of the office, withdraws the bulletin",
        ),
        outcome="withdraw",
        effects=(WithdrawBulletin(reason=reason),),
    )


def _no(reply: str, reason: str) -> Decision:
    return Decision(accepted=False, reply=reply, reasons=(reason,))
