"""The monthly assessment (mine rules 二 考核): what the rules name, for one month, with proof.

Mine rules 二 have the office assess each month how the system was used. From the steps of
documents and the audit trail, :func:`assess` lists, each line with the document or audit ids
that prove it:

- steps handled late (第八條, 第二十條), by person and by unit: done after their deadline
  during the month, or due during it and still not done at its end;
- problem reports (報修, 第十二條) fixed late, the same way;
- commands refused for acting in another's name (第七條);
- publishing refused at review, or published without a review (mine rules 一(六));
- virus uploads refused or quarantined (第十一條; mine rules 一(八));
- accounts not registered, changed or revoked in time: change requests and account
  applications (事項變更申請, 第十條) whose steps were late.

Pure: the store passes the facts in (``mailstore.assessment``) and the month's bounds.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from yizhan.routing.directory import Directory

__all__ = [
    "AuditFact",
    "DocumentFact",
    "StepFact",
    "assess",
    "month_bounds",
    "parse_month",
    "previous_month",
]

#: Kinds whose flows publish (信息宣傳, 公告板), and those that change accounts (第十條).
PUBLISHING_KINDS: Final = frozenset({"xinxi", "gonggao"})
ACCOUNT_KINDS: Final = frozenset({"biangeng"})
PROBLEM_KINDS: Final = frozenset({"baoxiu"})

#: Audit actions of a virus refused or quarantined, and the content rule that names a virus.
VIRUS_ACTIONS: Final = frozenset({"content.refused", "content.quarantined"})
VIRUS_RULE: Final = "virus"

_MONTH: Final = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, kw_only=True)
class DocumentFact:
    """What the assessment needs of a document."""

    id: int
    kind: str
    title: str
    state: str
    #: Whether any step of it was approved (a review given), and when it closed, if it has.
    reviewed: bool = False
    closed_at: dt.datetime | None = None


@dataclass(frozen=True, kw_only=True)
class StepFact:
    """One step: who answers for it (the delegator when a delegate was asked), its unit, its
    deadline and when it was done (None: not yet)."""

    id: int
    document_id: int
    name: str
    person: str
    unit: str | None
    state: str
    outcome: str | None = None
    due_at: dt.datetime | None = None
    done_at: dt.datetime | None = None


@dataclass(frozen=True, kw_only=True)
class AuditFact:
    """One entry of the audit trail."""

    id: int
    at: dt.datetime
    actor: str
    action: str
    target: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


def parse_month(text: str) -> tuple[int, int]:
    """``YYYY-MM`` as (year, month); ValueError saying what to write instead."""
    found = _MONTH.match(text.strip())
    if found is None or not 1 <= int(found.group(2)) <= 12:
        raise ValueError(f"month {text!r} is not YYYY-MM (for example 2026-11)")
    return int(found.group(1)), int(found.group(2))


def month_bounds(year: int, month: int, tz: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
    """The first moment of the month and of the next one, in the bureau's time zone."""
    start = dt.datetime(year, month, 1, tzinfo=tz)
    end = dt.datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=tz)
    return start, end


def previous_month(day: dt.date) -> tuple[int, int]:
    """The month before ``day``'s."""
    return (day.year - 1, 12) if day.month == 1 else (day.year, day.month - 1)


def assess(
    *,
    year: int,
    month: int,
    start: dt.datetime,
    end: dt.datetime,
    now: dt.datetime,
    documents: Mapping[int, DocumentFact],
    steps: Iterable[StepFact],
    audit: Iterable[AuditFact],
    directory: Directory,
) -> dict[str, Any]:
    """The assessment of the month from ``start`` to ``end`` (see the module docstring), as
    plain data: each section a list of lines, each line with its ``documents`` or ``audit``
    ids. ``now`` bounds a month not yet over: a step not yet due is not late."""
    late = [s for s in steps if _late(s, start, min(end, now))]
    entries = list(audit)

    def kind_of(step: StepFact) -> str:
        doc = documents.get(step.document_id)
        return doc.kind if doc else ""

    return {
        "month": f"{year:04d}-{month:02d}",
        "from": start.isoformat(),
        "until": end.isoformat(),
        "late_steps_by_person": _by(late, lambda s: s.person, directory, person=True),
        "late_steps_by_unit": _by(late, lambda s: s.unit or "-", directory, person=False),
        "late_problem_reports": [
            _step_line(s, documents, directory) for s in late if kind_of(s) in PROBLEM_KINDS
        ],
        "impersonation_refused": [
            {
                "audit": e.id,
                "at": e.at.isoformat(),
                "account": e.actor,
                "in_the_name_of": e.target,
            }
            for e in entries
            if e.action == "impersonation"
        ],
        "publishing_refused": [
            {
                "audit": e.id,
                "document": _doc_id(e.target),
                "at": e.at.isoformat(),
                "by": e.actor,
                "reason": str(e.detail.get("opinion", "")),
            }
            for e in entries
            if e.action == "doc.reject"
            and (doc := documents.get(_doc_id(e.target) or 0)) is not None
            and doc.kind in PUBLISHING_KINDS
        ],
        "published_without_review": [
            {"document": d.id, "title": d.title, "closed_at": d.closed_at.isoformat()}
            for d in sorted(documents.values(), key=lambda d: d.id)
            if d.kind in PUBLISHING_KINDS
            and d.state == "closed"
            and not d.reviewed
            and d.closed_at is not None
            and start <= d.closed_at < end
        ],
        "virus_uploads": [
            {
                "audit": e.id,
                "at": e.at.isoformat(),
                "sender": e.actor,
                "quarantine": e.detail.get("quarantine"),
                "reason": str(e.detail.get("reason", "")),
            }
            for e in entries
            if e.action in VIRUS_ACTIONS and e.target == VIRUS_RULE
        ],
        "accounts_late": [
            _step_line(s, documents, directory) for s in late if kind_of(s) in ACCOUNT_KINDS
        ],
    }


def _late(step: StepFact, start: dt.datetime, end: dt.datetime) -> bool:
    """Done late during the month, or due during it (before ``end``) and not done."""
    if step.due_at is None or step.state == "cancelled":
        return False
    if step.done_at is not None and step.state == "done":
        return start <= step.done_at < end and step.done_at > step.due_at
    return step.state == "waiting" and start <= step.due_at < end


def _by(
    late: Sequence[StepFact],
    key: Callable[[StepFact], str],
    directory: Directory,
    *,
    person: bool,
) -> list[dict[str, Any]]:
    groups: dict[str, list[StepFact]] = defaultdict(list)
    for step in late:
        groups[key(step)].append(step)
    lines = []
    for who, found in groups.items():
        if person:
            info = directory.people.get(who)
            name = info.name if info else who
            unit = info.unit if info else None
            line: dict[str, Any] = {"account": who, "name": name, "unit": unit}
        else:
            unit_info = directory.units.get(who)
            line = {"unit": who, "name": unit_info.name if unit_info else who}
        line["count"] = len(found)
        line["documents"] = sorted({s.document_id for s in found})
        line["steps"] = sorted(s.id for s in found)
        lines.append(line)
    return sorted(lines, key=lambda line: (-line["count"], str(line.get("account", line["unit"]))))


def _step_line(
    step: StepFact, documents: Mapping[int, DocumentFact], directory: Directory
) -> dict[str, Any]:
    doc = documents.get(step.document_id)
    info = directory.people.get(step.person)
    return {
        "document": step.document_id,
        "title": doc.title if doc else "",
        "step": step.id,
        "account": step.person,
        "name": info.name if info else step.person,
        "due_at": step.due_at.isoformat() if step.due_at else None,
        "done_at": step.done_at.isoformat() if step.done_at else None,
    }


def _doc_id(target: str | None) -> int | None:
    if target and target.startswith("doc:") and target[4:].isdigit():
        return int(target[4:])
    return None
