"""The monthly assessment's rules (mine rules 二 考核), on literal facts."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.routing.test_workflow import DIRECTORY
from yizhan.routing.assessment import (
    AuditFact,
    DocumentFact,
    StepFact,
    assess,
    month_bounds,
    parse_month,
    previous_month,
)

TZ = ZoneInfo("Asia/Shanghai")
START, END = month_bounds(2026, 11, TZ)


def at(day: int, hour: int = 10) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, tzinfo=TZ)


def step(
    id: int, person: str, *, due: dt.datetime, done: dt.datetime | None, doc: int = 1
) -> StepFact:
    return StepFact(
        id=id,
        document_id=doc,
        name="review",
        person=person,
        unit=DIRECTORY.people[person].unit,
        state="done" if done else "waiting",
        due_at=due,
        done_at=done,
    )


def report(
    steps: list[StepFact], audit: tuple[AuditFact, ...] = (), now: dt.datetime = END
) -> dict[str, Any]:
    documents = {
        1: DocumentFact(id=1, kind="qianbao", title="請示", state="closed"),
        2: DocumentFact(id=2, kind="baoxiu", title="打印機", state="handling"),
        3: DocumentFact(
            id=3, kind="xinxi", title="動態", state="closed", reviewed=False, closed_at=at(20)
        ),
    }
    return assess(
        year=2026,
        month=11,
        start=START,
        end=END,
        now=now,
        documents=documents,
        steps=steps,
        audit=audit,
        directory=DIRECTORY,
    )


def test_late_means_done_after_the_deadline_or_still_waiting_past_it() -> None:
    # Done late in the month, and waiting past a deadline in the month, count; done in time,
    # done late but in October, and due next month do not.
    steps = [
        step(1, "liangguoqiang", due=at(3), done=at(5)),
        step(2, "liangguoqiang", due=at(10), done=at(9)),
        step(3, "wuhaifeng", due=at(20), done=None, doc=2),
        step(4, "liuyang", due=at(2) - dt.timedelta(days=10), done=at(1) - dt.timedelta(days=3)),
        step(5, "liuyang", due=END + dt.timedelta(days=2), done=None),
    ]
    data = report(steps)
    people = {line["account"]: line for line in data["late_steps_by_person"]}
    assert set(people) == {"liangguoqiang", "wuhaifeng"}
    assert people["liangguoqiang"]["steps"] == [1]
    assert [line["document"] for line in data["late_problem_reports"]] == [2]
    assert {line["unit"] for line in data["late_steps_by_unit"]} == {"inspection", "it"}
    # Before the deadline of the waiting step has come, it is not late yet.
    assert report(steps, now=at(15))["late_problem_reports"] == []


def test_audit_lines_keep_their_ids_and_unreviewed_publishing_is_named() -> None:
    audit = (
        AuditFact(id=7, at=at(4), actor="hanxue", action="impersonation", target="lijun"),
        AuditFact(id=8, at=at(4), actor="hanxue", action="content.refused", target="virus"),
        AuditFact(id=9, at=at(4), actor="hanxue", action="content.refused", target="classified"),
    )
    data = report([], audit)
    assert data["impersonation_refused"][0]["audit"] == 7
    assert [line["audit"] for line in data["virus_uploads"]] == [8]
    assert [line["document"] for line in data["published_without_review"]] == [3]


def test_months_are_written_yyyy_mm() -> None:
    assert parse_month("2026-11") == (2026, 11)
    assert previous_month(dt.date(2027, 1, 4)) == (2026, 12)
    assert month_bounds(2026, 12, TZ)[1] == dt.datetime(2027, 1, 1, tzinfo=TZ)
    for bad in ("2026-13", "11/2026", "2026-1"):
        with pytest.raises(ValueError, match="YYYY-MM"):
            parse_month(bad)
