"""Tests for routing.delegation.route_to_delegates: steps for someone away go to their delegate."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from yizhan.routing.delegation import Delegation, route_to_delegates
from yizhan.routing.documents import Decision, Notice, StepState

TZ = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 9, 16, 10, 0, tzinfo=TZ)

DECISION = Decision(
    accepted=True,
    reply="ok",
    open_steps=(
        StepState(id=None, name="review", assignee="lijun", action="approve"),
        StepState(id=None, name="review", assignee="wangfang", action="approve"),
    ),
    notices=(
        Notice(to="lijun", template="step_request", action="approve", step_index=0),
        Notice(to="wangfang", template="step_request", action="approve", step_index=1),
        Notice(to="lijun", template="comment"),
    ),
)


def test_a_step_for_someone_away_goes_to_their_delegate_marked_for_them() -> None:
    # 第九條: 李軍 is away and has named 劉洋. His step, and the mail that asks for it, go to
    # 劉洋 marked as for 李軍 (代); 王芳's step and a mere notice to 李軍 stay as they were.
    away = Delegation(
        delegator="lijun",
        delegate="liuyang",
        starts_at=NOW - dt.timedelta(days=1),
        until=NOW + dt.timedelta(days=3),
    )
    routed = route_to_delegates(DECISION, [away], NOW)
    assert [(s.assignee, s.on_behalf_of) for s in routed.open_steps] == [
        ("liuyang", "lijun"),
        ("wangfang", None),
    ]
    assert [(n.to, n.on_behalf_of) for n in routed.notices] == [
        ("liuyang", "lijun"),
        ("wangfang", None),
        ("lijun", None),
    ]


def test_without_a_delegation_in_force_nothing_changes() -> None:
    # A delegation that ended yesterday, or none at all, leaves the decision as it is.
    ended = Delegation(
        delegator="lijun",
        delegate="liuyang",
        starts_at=NOW - dt.timedelta(days=5),
        until=NOW - dt.timedelta(days=1),
    )
    assert route_to_delegates(DECISION, [ended], NOW) == DECISION
    assert route_to_delegates(DECISION, [], NOW) is DECISION
