"""Tests for yizhan.routing.supervision: 督查督辦 decided on literal documents, no I/O.

The demo bureau's office clerk 王芳 assigns tasks to 檢驗監管處 (clerk 宋佳, head 梁國強) and
大連分局 (clerk 田璐, head 蔣明); each decision is applied as the store applies it
(``tests.routing.test_workflow.apply_decision``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pytest

from tests.routing.test_workflow import DIRECTORY, apply_decision
from yizhan.routing import supervision, workflow
from yizhan.routing.calendar import WorkCalendar
from yizhan.routing.commands import parse_command
from yizhan.routing.documents import Decision, DocumentState, StepState
from yizhan.routing.rules import DEFAULT_RULES

TZ = ZoneInfo("Asia/Shanghai")
CALENDAR = WorkCalendar(tz=TZ)
NOW = dt.datetime(2026, 9, 21, 9, 0, tzinfo=TZ)  # a Monday
OFFICE, INSPECTION, DALIAN = "wangfang", "songjia", "tianlu"


def check(author: str = OFFICE, deadline: str | None = "2026-09-30", **kw: object) -> object:
    args: dict[str, object] = {"to_units": ("檢驗監管處",), "cc_units": (), "scope": (), **kw}
    return supervision.check_assignment(
        author=author,
        deadline_text=deadline,
        directory=DIRECTORY,
        calendar=CALENDAR,
        today=NOW.date(),
        **args,  # type: ignore[arg-type]
    )


def test_only_the_office_assigns() -> None:
    # 第六條: a unit head is not the office; the answer names the office and who to ask.
    refused = check(author="liangguoqiang")
    assert isinstance(refused, str)
    assert "第六條" in refused and "辦公室" in refused and "王芳" in refused and "陳志剛" in refused
    assert isinstance(check(author="chenzhigang"), supervision.Assignment)


def test_missing_units_and_deadline_are_both_asked_for() -> None:
    # One answer names everything to add, with an example mail.
    refused = check(deadline=None, to_units=())
    assert isinstance(refused, str)
    assert "主送" in refused and "期限" in refused and "例如" in refused
    assert "抄送" in str(check(cc_units=("財務處",)))
    assert "看不懂" in str(check(deadline="下個月"))
    assert "已過" in str(check(deadline="2026-09-01"))


def test_deadline_is_the_end_of_a_working_day() -> None:
    # The day written, at the end of the working day; 2026-10-01 (國慶) moves to the first
    # working day after the holiday (2026-10-08), and the reply says so.
    on_time = check(deadline="2026年9月30日")
    assert isinstance(on_time, supervision.Assignment)
    assert on_time.due_at == dt.datetime(2026, 9, 30, 17, 30, tzinfo=TZ)
    assert on_time.written is None
    holiday = check(deadline="2026-10-01")
    assert isinstance(holiday, supervision.Assignment)
    assert holiday.deadline == dt.date(2026, 10, 8) and holiday.written == dt.date(2026, 10, 1)


@dataclass
class Task:
    """A task and the decisions applied to it."""

    doc: DocumentState
    clock: dt.datetime = NOW

    @classmethod
    def assign(cls, *units: str) -> tuple[Task, Decision]:
        assignment = check(to_units=units)
        assert isinstance(assignment, supervision.Assignment)
        fixed = assignment.due_at
        decision = workflow.open_document(
            kind="duban",
            title="關於專項檢查的督辦",
            author=OFFICE,
            urgency=None,
            to_units=units,
            fields=assignment.fields(),
            directory=DIRECTORY,
            rules=DEFAULT_RULES,
            now=NOW,
            due=lambda _now, _days, _urgency: fixed,
        )
        decision = supervision.assigned(decision, DIRECTORY, NOW)
        assert decision.accepted, decision.reply
        doc = DocumentState(
            id=1,
            kind="duban",
            title="關於專項檢查的督辦",
            state="new",
            author=OFFICE,
            unit="office",
        )
        return cls(doc=apply_decision(doc, decision, actor=OFFICE, now=NOW)), decision

    def waiting(self, account: str) -> StepState:
        (step,) = [s for s in self.doc.steps if s.state == "waiting" and s.assignee == account]
        return step

    def act(self, actor: str, text: str, *, accepted: bool = True) -> Decision:
        self.clock += dt.timedelta(hours=1)
        decision = supervision.apply_command(
            doc=self.doc,
            step_id=self.waiting(actor).id,
            command=parse_command(text),
            actor=actor,
            directory=DIRECTORY,
            rules=DEFAULT_RULES,
            now=self.clock,
            due=CALENDAR.due,
        )
        assert decision.accepted is accepted, decision.reply
        if decision.accepted:
            self.doc = apply_decision(self.doc, decision, actor=actor, now=self.clock)
        return decision

    def states(self) -> dict[str, str]:
        return {p.unit: p.state for p in supervision.parts(self.doc, DIRECTORY, self.clock)}


def notices(decision: Decision) -> list[tuple[str, str, str]]:
    return sorted((n.to, n.template, n.action) for n in decision.notices)


def test_assignment_asks_each_clerk_and_tells_each_head() -> None:
    # Each unit's clerk gets a progress step due at the deadline; the heads are told.
    task, decision = Task.assign("檢驗監管處", "大連分局")
    assert task.doc.state == "supervising"
    assert {(s.assignee, s.action, s.unit) for s in task.doc.steps} == {
        (INSPECTION, "progress", "inspection"),
        (DALIAN, "progress", "dalian"),
    }
    assert {s.due_at for s in task.doc.steps} == {dt.datetime(2026, 9, 30, 17, 30, tzinfo=TZ)}
    assert notices(decision) == [
        ("jiangming", "supervision", "none"),
        ("liangguoqiang", "supervision", "none"),
        (INSPECTION, "supervision", "progress"),
        (DALIAN, "supervision", "progress"),
    ]
    assert "期限：2026-09-30 17:30" in decision.reply


def test_progress_keeps_the_part_open_and_tells_the_office() -> None:
    task, _ = Task.assign("檢驗監管處")
    first = task.act(INSPECTION, "進展：已完成自查")
    task.act(INSPECTION, "進展：已抽檢二十批")
    assert notices(first) == [(OFFICE, "progress", "none")]
    assert task.states() == {"inspection": "progressing"}
    (part,) = supervision.parts(task.doc, DIRECTORY, task.clock)
    assert part.progress == "已抽檢二十批"
    assert [e.action for e in task.doc.trail] == ["open", "progress", "progress"]
    assert "進展：" in task.act(INSPECTION, "進展", accepted=False).reply


def test_send_back_reopens_only_that_unit_and_the_last_confirmation_closes() -> None:
    # DONE asks the office to confirm that unit's part; REJECT reopens it for the same clerk,
    # leaving the other unit as it is; the task closes when both parts are confirmed.
    task, _ = Task.assign("檢驗監管處", "大連分局")
    assert "辦結：" in task.act(INSPECTION, "辦結", accepted=False).reply
    done = task.act(INSPECTION, "辦結：檢查完畢")
    assert notices(done) == [(OFFICE, "part_done", "approve")]
    assert task.states() == {"inspection": "done", "dalian": "progressing"}

    assert "理由" in task.act(OFFICE, "退回", accepted=False).reply
    back = task.act(OFFICE, "退回：請附抽檢記錄")
    assert notices(back) == [(INSPECTION, "rejected", "progress")]
    assert task.states() == {"inspection": "progressing", "dalian": "progressing"}
    assert task.waiting(INSPECTION).due_at == dt.datetime(2026, 9, 30, 17, 30, tzinfo=TZ)

    task.act(INSPECTION, "辦結：已補充")
    confirmed = task.act(OFFICE, "同意")
    assert task.doc.state == "supervising" and "大連分局（辦理中）" in confirmed.reply
    assert notices(confirmed) == [(INSPECTION, "approved", "none")]
    task.act(DALIAN, "辦結：已完成")
    closed = task.act(OFFICE, "同意，辦得好")
    assert task.doc.state == "closed"
    assert notices(closed) == [(INSPECTION, "closed", "none"), (DALIAN, "closed", "none")]
    assert task.states() == {"inspection": "confirmed", "dalian": "confirmed"}


def test_sent_back_after_the_deadline_gets_the_rules_working_days() -> None:
    # A part sent back when the deadline has passed would be overdue at once; it gets the
    # flow's days for the progress step (5 working days) from now instead.
    task, _ = Task.assign("檢驗監管處")
    task.clock = dt.datetime(2026, 10, 9, 9, 0, tzinfo=TZ)
    task.act(INSPECTION, "辦結：檢查完畢")
    task.act(OFFICE, "退回：不完整")
    assert task.waiting(INSPECTION).due_at == CALENDAR.add_working_days(task.clock, 5)


@pytest.mark.parametrize(
    ("actor", "text", "word"),
    [
        (INSPECTION, "同意", "不接受"),  # a unit does not approve its own part
        (INSPECTION, "用印", "不接受"),
    ],
)
def test_a_step_answers_what_it_accepts(actor: str, text: str, word: str) -> None:
    task, _ = Task.assign("檢驗監管處")
    refused = task.act(actor, text, accepted=False)
    assert word in refused.reply and "進展" in refused.reply and "辦結" in refused.reply


def test_comment_and_forward_are_the_engines() -> None:
    # The clerk hands the part to a colleague, who reports DONE for the unit.
    task, _ = Task.assign("檢驗監管處")
    task.act(INSPECTION, "轉交 謝文斌")
    task.act("xiewenbin", "辦結：已完成")
    assert task.states() == {"inspection": "done"}


def test_report_item_marks_what_is_overdue() -> None:
    task, _ = Task.assign("檢驗監管處", "大連分局")
    task.act(DALIAN, "辦結：已完成")
    later = dt.datetime(2026, 10, 12, 9, 0, tzinfo=TZ)
    item = supervision.report_item(task.doc, DIRECTORY, later, TZ)
    assert item["overdue"] and item["deadline"] == "2026-09-30 17:30"
    assert [(p["unit"], p["state"], p["overdue"]) for p in item["parts"]] == [
        ("檢驗監管處", "progressing", True),
        ("大連分局", "done", False),
    ]
    assert not supervision.report_item(task.doc, DIRECTORY, NOW, TZ)["overdue"]
