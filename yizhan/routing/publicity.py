"""Counts each unit's published news items in a year (信息宣傳, 第二條), for 統計 at xinxi@.

A bureau reports how many news items each unit got published (信息報送 counts); anyone may
ask by mail: ``統計 2026`` / ``STATUS 2026`` at xinxi@, or without a year for this year. An
item counts for the unit that submitted it, in the year it was published, in the bureau's
time zone. Pure: the store passes in the published items, the caller the time zone.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from yizhan.routing.commands import Command, Verb
from yizhan.routing.directory import Directory

__all__ = ["CountRequest", "PublishedItem", "count_report", "parse_count_request", "yearly_counts"]

# "統計", "统计 2026", "COUNT 2026年", "統計：2026"; STATUS/查詢 come through as commands.
_COUNT: Final = re.compile(r"^\s*(?:統計|统计|count)\s*[:：]?\s*(?P<year>\S.*?)?\s*$", re.I)
_YEAR: Final = re.compile(r"^(?P<year>\d{4})\s*年?(?:度)?$")


@dataclass(frozen=True, kw_only=True)
class CountRequest:
    """A request for the yearly count: the year asked, None for this year."""

    year: int | None


@dataclass(frozen=True, kw_only=True)
class PublishedItem:
    """One published news item: the submitting unit and when it was published (UTC-aware)."""

    unit: str
    published_at: dt.datetime


def parse_count_request(command: Command) -> CountRequest | None:
    """The count a mail to xinxi@ asks for, or None when the mail is a news item.

    Only ``統計`` or ``STATUS`` (查詢), alone or with a year, asks: a news item may well open
    with 統計… or 查詢… (統計局發布…, 查詢系統上線), and is never taken for a command.
    """
    if command.verb is Verb.STATUS:
        argument = command.argument.strip()
    elif command.verb is Verb.UNKNOWN and (found := _COUNT.match(command.argument)):
        argument = (found["year"] or "").strip()
    else:
        return None
    if not argument:
        return CountRequest(year=None)
    year = _YEAR.match(argument)
    return CountRequest(year=int(year["year"])) if year else None


def yearly_counts(items: Iterable[PublishedItem], year: int, tz: dt.tzinfo) -> dict[str, int]:
    """How many items each unit got published in ``year`` (in ``tz``); units with none absent."""
    counts: dict[str, int] = {}
    for item in items:
        if item.published_at.astimezone(tz).year == year:
            counts[item.unit] = counts.get(item.unit, 0) + 1
    return counts


def count_report(counts: Mapping[str, int], year: int, directory: Directory) -> str:
    """The answer to 統計: every unit with its count, most first, then the total."""
    units = sorted(directory.units.values(), key=lambda u: (-counts.get(u.id, 0), u.id))
    known = {u.id for u in units}
    lines = [f"{year}年信息發布統計 / News items published in {year}, by unit:"]
    lines += [f"  {u.name}（{u.id}）: {counts.get(u.id, 0)}" for u in units]
    # A unit since removed from the organisation still had its items published.
    lines += [f"  {unit}: {n}" for unit, n in sorted(counts.items()) if unit not in known]
    lines.append(f"合計 Total: {sum(counts.values())}")
    return "\n".join(lines)
