"""Leave rules (休假管理, 第六條): types, periods in working days, annual balance, overlaps.

Annual leave follows 《職工帶薪年休假條例》第三條: a person with at least 1 full year of service
has 5 days a year, from 10 years 10 days, from 20 years 15 days; the days are working days,
so public holidays inside a leave do not count (the calendar's :meth:`is_working_day`).
HR records each person's service start and may correct the records (an adjustment of the
year's annual days, or a record cancelled). Nothing here reads the store: the caller passes
the person's records.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Protocol

from yizhan.routing.drafts import simplified

__all__ = [
    "ADJUST",
    "LEAVE_TYPES",
    "LONG_LEAVE_DAYS",
    "Balance",
    "HrCorrection",
    "LeaveRecord",
    "LeaveRequest",
    "annual_entitlement",
    "balance",
    "check_request",
    "leave_type",
    "parse_hr_set",
    "parse_period",
    "working_days",
    "years_of_service",
]

#: A leave longer than this many working days also needs the bureau leader in charge.
LONG_LEAVE_DAYS: Final = 3

#: The record type of an HR correction of the year's annual days.
ADJUST: Final = "adjust"

#: Leave types: canonical name → (Traditional, Simplified, English) label.
LEAVE_TYPES: Final[Mapping[str, tuple[str, str, str]]] = MappingProxyType(
    {
        "annual": ("年休假", "年休假", "annual"),
        "sick": ("病假", "病假", "sick"),
        "personal": ("事假", "事假", "personal"),
        "marriage": ("婚假", "婚假", "marriage"),
        "maternity": ("產假", "产假", "maternity"),
        "paternity": ("陪產假", "陪产假", "paternity"),
        "bereavement": ("喪假", "丧假", "bereavement"),
        "family_visit": ("探親假", "探亲假", "family visit"),
    }
)
_TYPE_WORDS: Final[Mapping[str, str]] = MappingProxyType(
    {
        **{simplified(zh).casefold(): name for name, (zh, _, _) in LEAVE_TYPES.items()},
        **{sc: name for name, (_, sc, _) in LEAVE_TYPES.items()},
        **{en.replace(" ", ""): name for name, (_, _, en) in LEAVE_TYPES.items()},
        **{name.replace("_", ""): name for name in LEAVE_TYPES},
        "年假": "annual",
        "带薪年休假": "annual",
        "丧葬假": "bereavement",
    }
)

_DATE: Final = r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
_PERIOD: Final = re.compile(
    rf"^\s*{_DATE}\s*(?:(?:至|到|-|–|—|~|～|to|until)\s*{_DATE})?\s*$", re.I
)
# 調整 -2 理由 / adjust +1 reason; 取消 7 / cancel 7; 參加工作 2005-07-01 / service 2005-07-01.
_HR_SET: Final = re.compile(
    r"^\s*(?P<account>[a-z][a-z0-9._-]*)\s+(?P<key>\S+)\s+(?P<value>\S+)\s*(?P<note>.*)$",
    re.I | re.S,
)


class Calendar(Protocol):
    """What leave needs of the work calendar (``routing.calendar.WorkCalendar``)."""

    def is_working_day(self, day: dt.date) -> bool:
        """Whether ``day`` is a working day."""
        ...


@dataclass(frozen=True, kw_only=True)
class LeaveRecord:
    """One line of HR's leave book: a leave taken, or an adjustment (``ADJUST``) of annual days.

    ``state`` is ``recorded`` or ``cancelled``; ``pending`` records are requests still being
    approved, which count against overlaps and the balance so that two requests cannot both
    spend the same days.
    """

    id: int | None
    leave_type: str
    start: dt.date
    end: dt.date
    days: int
    state: str = "recorded"


@dataclass(frozen=True, kw_only=True)
class LeaveRequest:
    """A request that passed the checks: what the document's fields will hold."""

    leave_type: str
    start: dt.date
    end: dt.date
    days: int

    @property
    def long(self) -> bool:
        """Whether the bureau leader in charge must approve too."""
        return self.days > LONG_LEAVE_DAYS


@dataclass(frozen=True, kw_only=True)
class Balance:
    """A year's annual leave: entitled, corrected by HR, taken, awaiting approval, left."""

    year: int
    years_of_service: int | None
    entitled: int
    adjusted: int
    used: int
    pending: int

    @property
    def remaining(self) -> int:
        """Days still free to request."""
        return self.entitled + self.adjusted - self.used - self.pending

    def text(self) -> str:
        """The balance in both languages, with every number."""
        service = "未登記" if self.years_of_service is None else f"{self.years_of_service}年"
        service_en = "not recorded" if self.years_of_service is None else str(self.years_of_service)
        return (
            f"{self.year}年年休假：應休 {self.entitled} 天（工齡 {service}），"
            f"調整 {self.adjusted:+d} 天，已休 {self.used} 天，待批 {self.pending} 天，"
            f"剩餘 {self.remaining} 天。\n"
            f"Annual leave {self.year}: entitled {self.entitled} (years of service "
            f"{service_en}), adjusted {self.adjusted:+d}, taken {self.used}, pending "
            f"{self.pending}, remaining {self.remaining} working day(s)."
        )


@dataclass(frozen=True, kw_only=True)
class HrCorrection:
    """What an HR ``SET`` at xiujia@ asks: set the service start, adjust, or cancel a record."""

    account: str
    what: str  # service_start | adjust | cancel
    service_start: dt.date | None = None
    days: int = 0
    record_id: int | None = None
    note: str = ""


def leave_type(text: str | None) -> str | None:
    """The canonical leave type a 類型 value names, or None."""
    if not text:
        return None
    return _TYPE_WORDS.get("".join(simplified(text).casefold().split()))


def parse_period(text: str | None) -> tuple[dt.date, dt.date] | None:
    """The first and last day of a 起止 value ("2026-12-01 至 2026-12-03"; one date: one day)."""
    found = _PERIOD.match(text or "")
    if found is None:
        return None
    try:
        start = dt.date(int(found[1]), int(found[2]), int(found[3]))
        end = dt.date(int(found[4]), int(found[5]), int(found[6])) if found[4] else start
    except ValueError:
        return None
    return start, end


def working_days(calendar: Calendar, start: dt.date, end: dt.date) -> int:
    """Working days from ``start`` to ``end``, both included."""
    days = 0
    day = start
    while day <= end:
        days += calendar.is_working_day(day)
        day += dt.timedelta(days=1)
    return days


def years_of_service(service_start: dt.date, on: dt.date) -> int:
    """Full years from ``service_start`` to ``on``."""
    years = on.year - service_start.year
    if (on.month, on.day) < (service_start.month, service_start.day):
        years -= 1
    return max(years, 0)


def annual_entitlement(years: int) -> int:
    """Annual leave days for ``years`` of service (《職工帶薪年休假條例》第三條)."""
    if years >= 20:
        return 15
    if years >= 10:
        return 10
    if years >= 1:
        return 5
    return 0


def balance(records: Sequence[LeaveRecord], service_start: dt.date | None, year: int) -> Balance:
    """The annual leave balance of ``year``; years of service counted at the year's start."""
    years = None if service_start is None else years_of_service(service_start, dt.date(year, 1, 1))
    live = [r for r in records if r.start.year == year and r.state != "cancelled"]
    return Balance(
        year=year,
        years_of_service=years,
        entitled=annual_entitlement(years) if years is not None else 0,
        adjusted=sum(r.days for r in live if r.leave_type == ADJUST),
        used=sum(r.days for r in live if r.leave_type == "annual" and r.state == "recorded"),
        pending=sum(r.days for r in live if r.leave_type == "annual" and r.state == "pending"),
    )


def check_request(
    *,
    type_text: str | None,
    period_text: str | None,
    records: Sequence[LeaveRecord],
    service_start: dt.date | None,
    calendar: Calendar,
    today: dt.date,
) -> LeaveRequest | str:
    """The request, or the reason it is refused, with the numbers (第六條).

    Refused: an unknown type, an unreadable or reversed period, a period with no working day,
    one that overlaps a recorded or pending leave, annual leave across a year end, and annual
    leave beyond the year's balance.
    """
    kind = leave_type(type_text)
    if kind is None:
        names = "、".join(zh for zh, _, _ in LEAVE_TYPES.values())
        return (
            f"請寫明休假類型（{names}），例如「類型：年休假」。\n"
            f"Name the leave type, e.g. “Leave-Type: annual” "
            f"({', '.join(en for _, _, en in LEAVE_TYPES.values())})."
        )
    period = parse_period(period_text)
    if period is None:
        return (
            "請寫明起止日期，例如「起止：2026-12-01 至 2026-12-03」。\n"
            "Give the dates, e.g. “From-To: 2026-12-01 to 2026-12-03”."
        )
    start, end = period
    if end < start:
        return f"結束日期 {end} 早於開始日期 {start}。\nThe end {end} is before the start {start}."
    if end < today:
        return f"休假已在 {end} 結束，請聯繫人事處補登。\nThe leave ended on {end}; ask HR."
    days = working_days(calendar, start, end)
    if days == 0:
        return (
            f"{start} 至 {end} 沒有工作日，無需請假。\n"
            f"There is no working day from {start} to {end}; no leave is needed."
        )
    for r in records:
        if r.leave_type != ADJUST and r.state != "cancelled" and r.start <= end and start <= r.end:
            what = "待批" if r.state == "pending" else "已登記"
            return (
                f"與{what}的休假 {r.start} 至 {r.end}（{r.days} 個工作日）重疊，"
                f"本次申請 {start} 至 {end}（{days} 個工作日）。\n"
                f"Overlaps a {'pending' if r.state == 'pending' else 'recorded'} leave from "
                f"{r.start} to {r.end} ({r.days} working days); this request is {start} to "
                f"{end} ({days} working days)."
            )
    if kind == "annual":
        if start.year != end.year:
            return (
                "年休假按年度計算，跨年的請分兩次申請。\n"
                "Annual leave is counted per year; split a request across the year end."
            )
        if service_start is None:
            return (
                "人事處尚未登記您的參加工作時間，無法計算年休假，請聯繫人事處。\n"
                "HR has not recorded when your service started, so annual leave cannot be "
                "counted; ask HR."
            )
        left = balance(records, service_start, start.year)
        if days > left.remaining:
            return (
                f"年休假不足：本次申請 {days} 個工作日，剩餘 {left.remaining} 天。\n"
                f"Not enough annual leave: {days} working day(s) asked, "
                f"{left.remaining} left.\n" + left.text()
            )
    return LeaveRequest(leave_type=kind, start=start, end=end, days=days)


#: The longest working life a service start may imply (第六條 counts years of service; no one
#: works longer than this, so an earlier date is a typing error, e.g. 1800-01-01).
LONGEST_SERVICE_YEARS = 60


def parse_hr_set(argument: str, today: dt.date) -> HrCorrection | str:
    """An HR correction: ``account 參加工作 2005-07-01``, ``account 調整 -2 理由`` or
    ``account 取消 7`` (English: ``service``, ``adjust``, ``cancel``). A service start
    must lie between ``LONGEST_SERVICE_YEARS`` years before ``today`` and ``today``."""
    usage = (
        "人事處可發送：設置 帳號 參加工作 2005-07-01 / 設置 帳號 調整 -2 理由 / "
        "設置 帳號 取消 記錄號\n"
        "HR may send: SET account service 2005-07-01 / SET account adjust -2 reason / "
        "SET account cancel record-id"
    )
    found = _HR_SET.match(argument)
    if found is None:
        return usage
    account, key, value = found["account"].lower(), simplified(found["key"]), found["value"]
    note = found["note"].strip()
    if key in ("参加工作", "參加工作", "工作时间", "service", "service-start"):
        period = parse_period(value)
        if period is None:
            return usage
        earliest = today.replace(year=today.year - LONGEST_SERVICE_YEARS, day=1)
        if not earliest <= period[0] <= today:
            return (
                f"參加工作時間 {period[0].isoformat()} 不可能："
                f"應在 {earliest.isoformat()} 與今天之間。\n"
                f"A service start of {period[0].isoformat()} is not possible: it must lie "
                f"between {earliest.isoformat()} and today.\n{usage}"
            )
        return HrCorrection(account=account, what="service_start", service_start=period[0])
    if key in ("调整", "adjust") and re.fullmatch(r"[+-]?\d{1,3}", value):
        return HrCorrection(account=account, what="adjust", days=int(value), note=note)
    if key in ("取消", "cancel") and re.fullmatch(r"#?[0-9]{1,18}", value):
        return HrCorrection(account=account, what="cancel", record_id=int(value.lstrip("#")))
    return usage
