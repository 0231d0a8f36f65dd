"""Decides who acts for a person who is away (外出授權, 第九條).

Before leaving, a person names a delegate and an end date (``DELEGATE name UNTIL date`` at
cmd@); until the delegation is revoked or ends, every step addressed to them goes to the
delegate, marked as done on their behalf. Delegations chain: when A has delegated to B and B
to C, C acts for A. ``mailstore`` keeps the delegations and drops the revoked ones; this module
only reads them, with the time passed in.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from email.utils import parseaddr
from types import MappingProxyType
from typing import Final
from zoneinfo import ZoneInfo

from yizhan.routing.directory import Directory, PersonInfo
from yizhan.routing.documents import Decision
from yizhan.routing.drafts import simplified

__all__ = [
    "MAX_DELEGATION_DAYS",
    "Delegation",
    "active",
    "check_new_delegation",
    "parse_until",
    "resolve",
    "route_to_delegates",
]

#: The longest a delegation may run. Longer absences are a change of post, handled by the
#: unit (第十條), not by a forwarding rule nobody remembers.
MAX_DELEGATION_DAYS: Final = 180

# Shown in every refusal that concerns the date, so the sender can copy a form that works.
_DATE_FORMS: Final = "2026-12-01、2026/12/1、2026年12月1日、12月1日、12-01、明天、下週五"
_DATE_FORMS_EN: Final = "2026-12-01, 2026/12/1, 12-01, tomorrow, next friday"


@dataclass(frozen=True, kw_only=True)
class Delegation:
    """``delegator`` is away; ``delegate`` acts for them from ``starts_at`` to ``until``.

    Both ends are included; ``until`` is the last instant of the day named, in the bureau's
    time zone, so ``until.date()`` is that day.
    """

    delegator: str
    delegate: str
    starts_at: dt.datetime
    until: dt.datetime

    def is_active(self, now: dt.datetime) -> bool:
        """Whether the delegation holds at ``now``."""
        return self.starts_at <= now <= self.until


def active(delegations: Iterable[Delegation], now: dt.datetime) -> dict[str, Delegation]:
    """The delegations that hold at ``now``, by delegator.

    When a delegator has several, the one that started last wins: a new DELEGATE replaces the
    old one rather than being refused.
    """
    found: dict[str, Delegation] = {}
    for item in delegations:
        if not item.is_active(now):
            continue
        current = found.get(item.delegator)
        if current is None or item.starts_at >= current.starts_at:
            found[item.delegator] = item
    return found


def resolve(
    account: str,
    delegations: Iterable[Delegation],
    now: dt.datetime,
    *,
    directory: Directory | None = None,
) -> tuple[str, str | None]:
    """Who acts for ``account`` at ``now``, and on whose behalf (None when no one is away).

    The chain is followed to its end: A→B→C gives ``("C", "A")``. With a ``directory``, a
    delegate whose account is no longer active ends the chain before them, so that work does
    not go to someone who cannot log in. A loop (which :func:`check_new_delegation` refuses,
    but two delegations made at once by two instances could form) stops before it repeats.
    """
    holding = active(delegations, now)
    acting = account
    seen = {account}
    while acting in holding:
        nxt = holding[acting].delegate
        if nxt in seen or (directory is not None and not _can_act(directory, nxt)):
            break
        seen.add(nxt)
        acting = nxt
    return acting, (account if acting != account else None)


def route_to_delegates(
    decision: Decision, delegations: Iterable[Delegation], now: dt.datetime
) -> Decision:
    """``decision`` with each step it opens for someone away given to their delegate, marked
    as for them (代, 第九條), and the notices of those steps sent to the delegate."""
    holding = list(delegations)
    if not holding:
        return decision
    steps = []
    for spec in decision.open_steps:
        acting, delegator = resolve(spec.assignee, holding, now)
        steps.append(replace(spec, assignee=acting, on_behalf_of=delegator) if delegator else spec)
    notices = []
    for notice in decision.notices:
        if notice.step_index is not None:
            spec = steps[notice.step_index]
            notice = replace(notice, to=spec.assignee, on_behalf_of=spec.on_behalf_of)
        notices.append(notice)
    return replace(decision, open_steps=tuple(steps), notices=tuple(notices))


def _can_act(directory: Directory, account: str) -> bool:
    person = directory.people.get(account)
    return person is not None and person.state == "active"


# --- A new delegation -----------------------------------------------------------------------


def check_new_delegation(
    delegator: str,
    delegate_ref: str,
    until_text: str,
    directory: Directory,
    delegations: Iterable[Delegation],
    now: dt.datetime,
    tz: ZoneInfo,
    *,
    domain: str | None = None,
    from_text: str | None = None,
) -> Delegation | str:
    """The delegation a DELEGATE command asks for, or why it cannot be made.

    ``delegate_ref`` is an account, a real name (in either script) or a mail address (the
    person's own mailbox, or ``account@domain`` when ``domain`` is given). ``from_text`` is
    the first day of a delegation planned ahead (DELEGATE name FROM date UNTIL date); it starts
    at the beginning of that day, or now when that is today. One planned ahead may not overlap
    another of the delegator's; one starting now replaces the one in force. The refusal is
    Chinese, then English, and says what to send instead.
    """
    _require_aware(now)
    found = _find_person(delegate_ref, directory, domain)
    if isinstance(found, str):
        return found
    delegate = found
    if delegate.account == delegator:
        return (
            "不能授權給自己。請寫外出期間代您處理公文的同事，例如：授權 王芳 至 2026-12-01\n"
            "You cannot delegate to yourself. Name the colleague who will act for you, e.g. "
            "DELEGATE wangfang UNTIL 2026-12-01"
        )
    if delegate.state != "active":
        return (
            f"{delegate.name}（{delegate.account}）的帳號已停用，不能接受授權。請另選一位同事。\n"
            f"{delegate.name}'s account ({delegate.account}) is {delegate.state}; "
            "choose another colleague."
        )
    until = parse_until(until_text, now, tz)
    if until is None:
        return (
            f"看不懂日期「{until_text}」。請寫授權結束的日期，例如：{_DATE_FORMS}\n"
            f"Cannot read the date {until_text!r}. Write the day the delegation ends, "
            f"e.g. {_DATE_FORMS_EN}"
        )
    if until < now:
        return (
            f"結束日期 {until.date().isoformat()} 已經過去。請寫今天或以後的日期。\n"
            f"The end date {until.date().isoformat()} has passed; write today or a later day."
        )
    starts_at = now
    if from_text is not None:
        first = parse_until(from_text, now, tz)
        if first is None:
            return (
                f"看不懂開始日期「{from_text}」。例如：{_DATE_FORMS}\n"
                f"Cannot read the first day {from_text!r}, e.g. {_DATE_FORMS_EN}"
            )
        if first < now:
            return (
                f"開始日期 {first.date().isoformat()} 已經過去。請寫今天或以後的日期。\n"
                f"The first day {first.date().isoformat()} has passed; write today or later."
            )
        if first.date() > until.date():
            return (
                f"開始日期 {first.date().isoformat()} 晚於結束日期 {until.date().isoformat()}。\n"
                f"The first day {first.date().isoformat()} is after the last, "
                f"{until.date().isoformat()}."
            )
        if first.date() > now.astimezone(tz).date():
            starts_at = dt.datetime.combine(first.date(), dt.time.min, tzinfo=tz)
    latest = starts_at.astimezone(tz).date() + dt.timedelta(days=MAX_DELEGATION_DAYS)
    if until.date() > latest:
        return (
            f"授權最長 {MAX_DELEGATION_DAYS} 天，即至 {latest.isoformat()}。"
            "更長的離崗請由單位辦理崗位變更。\n"
            f"A delegation lasts at most {MAX_DELEGATION_DAYS} days, i.e. until "
            f"{latest.isoformat()}; for a longer absence your unit changes the post."
        )
    delegations = list(delegations)
    loop = _chain_from(delegate.account, active(delegations, now))
    if delegator in loop:
        path = "→".join([delegator, *loop[: loop.index(delegator) + 1]])
        return (
            f"{delegate.name}（{delegate.account}）已經把公文授權出去，這次授權會形成循環："
            f"{path}。請另選一位同事，或請對方先收回授權。\n"
            f"{delegate.account} has delegated in turn, so this would make a loop ({path}). "
            "Choose someone else, or ask them to REVOKE first."
        )
    clash = _overlapping(delegator, starts_at, until, delegations, now)
    if clash is not None:
        other = directory.people.get(clash.delegate)
        other_name = other.name if other is not None else clash.delegate
        begins, ends = (d.astimezone(tz).date().isoformat() for d in (clash.starts_at, clash.until))
        return (
            f"您已授權 {other_name} 自 {begins} 至 {ends}，與這次授權的日期重疊。"
            "請先發送「收回授權」，或另選不重疊的日期。\n"
            f"You have already delegated to {clash.delegate} from {begins} until {ends}, which "
            "overlaps these dates. Send REVOKE first, or choose dates that do not overlap."
        )
    return Delegation(
        delegator=delegator, delegate=delegate.account, starts_at=starts_at, until=until
    )


def _overlapping(
    delegator: str,
    starts_at: dt.datetime,
    until: dt.datetime,
    delegations: Iterable[Delegation],
    now: dt.datetime,
) -> Delegation | None:
    """A delegation of ``delegator`` the new one would overlap: any for a delegation planned
    ahead, only one planned ahead for a delegation starting now (the one in force is
    replaced)."""
    planned = starts_at > now
    for other in delegations:
        if other.delegator != delegator or other.until < now:
            continue
        if not planned and other.starts_at <= now:
            continue
        if other.starts_at <= until and starts_at <= other.until:
            return other
    return None


def _chain_from(account: str, holding: Mapping[str, Delegation]) -> list[str]:
    """``account`` and whoever acts for them in turn, in order, stopping at a repeat."""
    chain = [account]
    while chain[-1] in holding and holding[chain[-1]].delegate not in chain:
        chain.append(holding[chain[-1]].delegate)
    return chain


def _find_person(ref: str, directory: Directory, domain: str | None) -> PersonInfo | str:
    """The person ``ref`` names, or the refusal that says why it names no one person."""
    text = unicodedata.normalize("NFKC", ref).strip()
    # "王芳 <wangfang@bureau.example>" as a client writes it when the name is pasted.
    _, address = parseaddr(text)
    if "@" in text and "@" in address:
        person = _by_address(address, directory, domain)
        if person is not None:
            return person
    elif text.casefold() in directory.people:
        return directory.people[text.casefold()]
    else:
        key = simplified("".join(text.split()))
        named = sorted(
            (p for p in directory.people.values() if simplified(p.name) == key),
            key=lambda p: p.account,
        )
        if len(named) == 1:
            return named[0]
        if len(named) > 1:
            listed = "、".join(
                f"{p.name}（{p.account}，{_unit_name(directory, p.unit)}）" for p in named
            )
            listed_en = ", ".join(f"{p.account} ({p.unit})" for p in named)
            return (
                f"有 {len(named)} 位同事叫「{text}」：{listed}。請改寫帳號，"
                f"例如：授權 {named[0].account} 至 2026-12-01\n"
                f"{len(named)} people are called {text!r}: {listed_en}. Write the account "
                f"instead, e.g. DELEGATE {named[0].account} UNTIL 2026-12-01"
            )
    return (
        f"找不到「{text}」。請寫對方的帳號、姓名或郵件地址，例如：授權 wangfang 至 2026-12-01\n"
        f"No one is known as {text!r}. Write the delegate's account, name or mail address, "
        "e.g. DELEGATE wangfang UNTIL 2026-12-01"
    )


def _by_address(address: str, directory: Directory, domain: str | None) -> PersonInfo | None:
    if domain is not None:
        return directory.person_by_address(address, domain)
    wanted = address.strip().lower()
    return next(
        (p for p in directory.people.values() if p.email and p.email.lower() == wanted), None
    )


def _unit_name(directory: Directory, unit: str) -> str:
    info = directory.units.get(unit)
    return info.name if info is not None else unit


# --- The end date ---------------------------------------------------------------------------

_WEEKDAYS: Final[Mapping[str, int]] = MappingProxyType(
    {
        **{c: i for i, c in enumerate("一二三四五六")},
        "日": 6,
        "天": 6,
        "7": 6,
        **{str(i + 1): i for i in range(6)},
        **{
            name: i
            for i, name in enumerate(
                ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
            )
        },
        **{name: i for i, name in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun"))},
    }
)
_RELATIVE_DAYS: Final[Mapping[str, int]] = MappingProxyType(
    {
        "今天": 0,
        "今日": 0,
        "today": 0,
        "明天": 1,
        "明日": 1,
        "tomorrow": 1,
        "后天": 2,
        "後天": 2,
    }
)
# 2026-12-01, 2026/12/1, 2026.12.1, 2026年12月1日 (日 or 号/號 optional).
_FULL_DATE: Final = re.compile(
    r"^(?P<y>\d{4})\s*(?:[-/.]|年)\s*(?P<m>\d{1,2})\s*(?:[-/.]|月)\s*(?P<d>\d{1,2})\s*[日号號]?$"
)
# 20261201.
_COMPACT_DATE: Final = re.compile(r"^(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})$")
# 12-01, 12/1, 12.1, 12月1日: month first, as Chinese writes it.
_MONTH_DAY: Final = re.compile(r"^(?P<m>\d{1,2})\s*(?:[-/.]|月)\s*(?P<d>\d{1,2})\s*[日号號]?$")
# 周五, 週五, 星期五, 禮拜五, 下周五, 下星期五, friday, next friday.
_WEEKDAY: Final = re.compile(
    r"^(?P<next>下个?|下個?|next\s+)?"
    r"(?:(?:周|週|星期|礼拜|禮拜)(?P<zh>[一二三四五六日天1-7])|(?P<en>[a-z]+))$"
)


def parse_until(text: str, now: dt.datetime, tz: ZoneInfo) -> dt.datetime | None:
    """The end of the day ``text`` names, in ``tz``; None when it names no day.

    Accepted: ``2026-12-01``, ``2026/12/1``, ``2026.12.1``, ``20261201``, ``2026年12月1日``;
    without a year ``12-01``, ``12/1``, ``12月1日`` (this year, or next year when that day has
    passed); 今天/明天/後天 (today, tomorrow); 周五/星期五/friday (the next Friday, today
    included) and 下周五/next friday (Friday of next week, weeks starting on Monday).
    Full-width digits are read as digits. Whether the day is in the past is for the caller.
    """
    _require_aware(now)
    today = now.astimezone(tz).date()
    day = _parse_day(unicodedata.normalize("NFKC", text).strip().casefold(), today)
    if day is None:
        return None
    return dt.datetime.combine(day, dt.time.max, tzinfo=tz)


def _parse_day(text: str, today: dt.date) -> dt.date | None:
    text = text.rstrip("。.!！ ")
    if text in _RELATIVE_DAYS:
        return today + dt.timedelta(days=_RELATIVE_DAYS[text])
    found = _FULL_DATE.match(text) or _COMPACT_DATE.match(text)
    if found is not None:
        return _date(int(found["y"]), int(found["m"]), int(found["d"]))
    found = _MONTH_DAY.match(text)
    if found is not None:
        month, day = int(found["m"]), int(found["d"])
        this_year = _date(today.year, month, day)
        if this_year is not None and this_year >= today:
            return this_year
        # The day has passed this year (or is 2月29日 in a common year): the next one.
        return _date(today.year + 1, month, day)
    found = _WEEKDAY.match(text)
    if found is not None:
        weekday = _WEEKDAYS.get(found["zh"] or found["en"])
        if weekday is None:
            return None
        if found["next"]:
            monday = today + dt.timedelta(days=7 - today.weekday())
            return monday + dt.timedelta(days=weekday)
        return today + dt.timedelta(days=(weekday - today.weekday()) % 7)
    return None


def _date(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _require_aware(now: dt.datetime) -> None:
    # A naive time would be read in the server's zone, which is how deadlines drift by 8 hours.
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
