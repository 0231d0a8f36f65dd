"""Tests that the step labels of ``<data_dir>/rules.toml`` reach the scheduler's mail.

A bureau may rename a step in its rules file (審批 → 處長核批, say); the reminders and the to-do
digests name the step as the rules in force call it, not as the built-in rules do.
"""

from __future__ import annotations

import datetime as dt
import email
from email import policy
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from sqlalchemy import select

from yizhan.daemon.config import load_rules
from yizhan.daemon.context import Context
from yizhan.daemon.jobs.digests import run_digests
from yizhan.daemon.jobs.reminders import run_reminders
from yizhan.daemon.jobs.slots import work_calendar
from yizhan.mailstore.directory import load_directory
from yizhan.mailstore.documents import apply_decision, create_document
from yizhan.mailstore.models import OutboundMessage
from yizhan.routing import workflow

TZ = ZoneInfo("Asia/Shanghai")
AUTHOR, HEAD = "xiewenbin", "liangguoqiang"  # 檢驗監管處 staff and its head
LABEL = "處長核批"

# 處室函 with its approval renamed; the rest as the built-in flow has it.
RULES = f"""
[[flows.hanjian.steps]]
name = "approve"
label = "{LABEL}"
state = "reviewing"
action = "approve"
who = "role"
roles = ["unit_head"]
commands = ["approve", "reject", "comment"]
deadline = 2

[[flows.hanjian.steps]]
name = "receive"
label = "簽收"
state = "sent"
action = "receive"
who = "role"
roles = ["clerk"]
units = "scope_others"
parallel = true
commands = ["received"]
"""


def at(day: str, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour, minute), tzinfo=TZ)


def body(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def queued(ctx: Context, prefix: str) -> list[EmailMessage]:
    with ctx.sessions() as session:
        rows = session.scalars(
            select(OutboundMessage).where(OutboundMessage.source.startswith(prefix))
        ).all()
        return [
            email.message_from_bytes(r.data, policy=policy.default)  # type: ignore[misc]
            for r in rows
        ]


def test_a_step_label_from_the_rules_file_reaches_reminders_and_digests(bureau: Context) -> None:
    # The rules file names the 處室函 approval 處長核批. A letter waits for 梁國強's approval,
    # opened Tuesday 22 September 2026 with two working days: Wednesday's 08:30 digest and the
    # half-time reminder that afternoon both call the step 處長核批.
    bureau.config.rules_file.write_text(RULES, encoding="utf-8")
    bureau.rules = load_rules(bureau.config)
    assert bureau.rules.flows["hanjian"].steps[0].label == LABEL
    opened = at("2026-09-22", 10)
    bureau.clock = lambda: opened
    with bureau.sessions.begin() as session:
        decision = workflow.open_document(
            kind="hanjian",
            title="關於借用檢測設備的函",
            author=AUTHOR,
            urgency=None,
            to_units=("finance",),
            fields={"body": "請支持。"},
            directory=load_directory(session),
            rules=bureau.rules,
            now=opened,
            due=work_calendar(bureau).due,
        )
        assert decision.accepted, decision.reply
        document = create_document(
            session,
            kind="hanjian",
            title="關於借用檢測設備的函",
            author=AUTHOR,
            unit="inspection",
            urgency=None,
            fields={},
            source_inbound=None,
            now=opened,
        )
        apply_decision(session, document, decision, actor=AUTHOR, on_behalf_of=None, now=opened)

    run_digests(bureau, at("2026-09-23", 8, 30))
    (digest,) = queued(bureau, f"digest:{HEAD}:")
    assert LABEL in body(digest)

    run_reminders(bureau, at("2026-09-23", 14))
    (reminder,) = queued(bureau, "remind:")
    assert reminder["To"].addresses[0].username == HEAD
    assert LABEL in body(reminder)
