"""Decides who gets a to-do digest at which window, with one-click reply links for each item.

Clerks (綜合人員) get a digest at 08:30, 10:30, 13:30 and 15:30 on working days, everyone else
at 08:30 and 13:30 (第八條), only when something waits for them. ``SET digest`` changes a
person's windows (any half hour of the working day) or turns digests off.

Each item carries ``mailto:`` links (RFC 6068) to its reply address ``r+TOKEN@domain`` with
the command already written in the body, so a quick operation (快捷操作) is one click and one
Send in any mail client: the desk reads the first line of the reply as the command.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final
from urllib.parse import quote

from yizhan.routing.calendar import CLERK_WINDOWS, STAFF_WINDOWS, WorkCalendar
from yizhan.routing.commands import Verb

__all__ = [
    "QUICK_COMMANDS",
    "EarlierRun",
    "Link",
    "allowed_windows",
    "default_windows",
    "digest_due",
    "last_covered",
    "mailto",
    "reply_links",
    "windows_for",
]

#: The value of the ``digest`` setting that turns digests off.
OFF: Final = "off"

#: Windows fall on the hour or the half hour: the scheduler looks every half hour.
WINDOW_STEP: Final = dt.timedelta(minutes=30)

#: The quick commands offered for each action a step asks for (X-Yizhan-Action).
QUICK_COMMANDS: Final[Mapping[str, tuple[Verb, ...]]] = MappingProxyType(
    {
        "approve": (Verb.APPROVE, Verb.REJECT),
        "seal": (Verb.SEAL, Verb.REJECT),
        "receive": (Verb.RECEIVED,),
        "handle": (Verb.DONE, Verb.PROGRESS),
        "progress": (Verb.PROGRESS, Verb.DONE),
        "read": (Verb.READ,),
    }
)

# The word each quick command is written with, per language. A command that needs a reason or
# a summary ends with a colon, so the cursor lands where the text goes.
_WORDS: Final[Mapping[str, Mapping[Verb, str]]] = MappingProxyType(
    {
        "zh_CN": {
            Verb.APPROVE: "同意",
            Verb.REJECT: "退回：",
            Verb.SEAL: "用印",
            Verb.RECEIVED: "签收",
            Verb.DONE: "办结：",
            Verb.PROGRESS: "进展：",
            Verb.READ: "已阅",
        },
        "zh_TW": {
            Verb.APPROVE: "同意",
            Verb.REJECT: "退回：",
            Verb.SEAL: "用印",
            Verb.RECEIVED: "簽收",
            Verb.DONE: "辦結：",
            Verb.PROGRESS: "進展：",
            Verb.READ: "已閱",
        },
        "en": {
            Verb.APPROVE: "APPROVE",
            Verb.REJECT: "REJECT: ",
            Verb.SEAL: "SEAL",
            Verb.RECEIVED: "RECEIVED",
            Verb.DONE: "DONE: ",
            Verb.PROGRESS: "PROGRESS: ",
            Verb.READ: "READ",
        },
    }
)

# RFC 6068 section 2: outside the address, everything but unreserved characters is
# percent-encoded as UTF-8. "+" too, since many clients read a query's "+" as a space, and
# "&", "=", "#" would end the field.
_HFVALUE_SAFE: Final = ""
# In the address part "+" and "@" may stand as they are ("some-delims"); a token is ASCII.
_ADDRESS_SAFE: Final = "@+"


@dataclass(frozen=True, kw_only=True)
class Link:
    """A one-click command: ``label`` to show, ``url`` a ``mailto:`` URI."""

    verb: Verb
    label: str
    url: str


def default_windows(roles: Iterable[str]) -> tuple[dt.time, ...]:
    """The digest windows of a person with ``roles`` who has not chosen any."""
    return tuple(CLERK_WINDOWS) if "clerk" in set(roles) else tuple(STAFF_WINDOWS)


def allowed_windows(calendar: WorkCalendar) -> tuple[dt.time, ...]:
    """The windows a person may choose: each half hour from the start to the end of the day."""
    times = []
    moment = dt.datetime.combine(dt.date(2000, 1, 1), calendar.day_start)
    end = dt.datetime.combine(dt.date(2000, 1, 1), calendar.day_end)
    while moment < end:
        times.append(moment.time())
        moment += WINDOW_STEP
    return tuple(times)


def windows_for(roles: Iterable[str], setting: str | None) -> tuple[dt.time, ...]:
    """A person's windows: none when the ``digest`` setting is off, the chosen ones, or the
    defaults for their roles. A setting that cannot be read counts as no setting."""
    if setting is None or not setting.strip() or setting.strip() == "on":
        return default_windows(roles)
    if setting.strip() == OFF:
        return ()
    chosen = []
    for part in setting.split(","):
        try:
            chosen.append(dt.time.fromisoformat(part.strip()))
        except ValueError:
            return default_windows(roles)
    return tuple(sorted(set(chosen)))


def digest_due(
    windows: Sequence[dt.time],
    slot: dt.datetime,
    previous: dt.datetime | None,
    calendar: WorkCalendar,
) -> bool:
    """Whether the digest run for ``slot`` sends to a person with ``windows``.

    ``previous`` is the slot of the run before (None when there was none): every window of
    the slot's working day after it, up to the slot, counts, so a daemon that was down for
    two windows sends one digest for both. Never on a day off.
    """
    local = slot.astimezone(calendar.tz)
    day = local.date()
    if not windows or not calendar.is_working_day(day):
        return False
    start_of_day = dt.datetime.combine(day, dt.time(0), tzinfo=calendar.tz)
    after = local - dt.timedelta(seconds=1) if previous is None else previous
    after = max(after, start_of_day - dt.timedelta(seconds=1))
    return any(
        after < dt.datetime.combine(day, window, tzinfo=calendar.tz) <= local for window in windows
    )


@dataclass(frozen=True)
class EarlierRun:
    """A digest run before this one: its slot, whether it went through everyone, and the last
    account it reached (runs go through the accounts in order, a batch at a time)."""

    slot: dt.datetime
    finished: bool
    cursor: str | None


def last_covered(account: str, earlier: Sequence[EarlierRun]) -> dt.datetime | None:
    """The slot of the latest run in ``earlier`` (newest first) that reached ``account``: the
    ``previous`` :func:`digest_due` counts windows after, for that person.

    A run cut short by a crash reached only the accounts up to its cursor; one after it in
    the order had nothing from that run, so its windows since the run before still count at
    the next slot rather than being lost. When none of ``earlier`` reached the account, a
    moment just before the oldest of them (whose day's windows then all count); None when
    there was no run at all.
    """
    for run in earlier:
        if run.finished or (run.cursor is not None and account <= run.cursor):
            return run.slot
    return earlier[-1].slot - dt.timedelta(seconds=1) if earlier else None


def mailto(address: str, *, subject: str, body: str) -> str:
    """A ``mailto:`` URI (RFC 6068) that opens a mail to ``address`` with the fields filled."""
    query = "&".join(
        f"{name}={quote(value, safe=_HFVALUE_SAFE)}"
        for name, value in (("subject", subject), ("body", body))
        if value
    )
    return f"mailto:{quote(address, safe=_ADDRESS_SAFE)}" + (f"?{query}" if query else "")


def reply_links(
    *, token: str, domain: str, title: str, action: str, language: str | None
) -> tuple[Link, ...]:
    """The one-click commands for a step asking ``action``, in the reader's language."""
    words = _WORDS.get(language or "zh_CN", _WORDS["zh_CN"])
    address = f"r+{token}@{domain}"
    return tuple(
        Link(
            verb=verb,
            label=words[verb].rstrip(":： "),
            url=mailto(address, subject=f"Re: {title}", body=words[verb]),
        )
        for verb in QUICK_COMMANDS.get(action, ())
    )
