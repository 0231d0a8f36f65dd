"""Lays a document's steps out as a horizontal flow: who acted, for whom (代), when, how long, late.

Steps opened together under one name (a countersign by several units, a distribution to every
clerk) form one stage; the stages follow in the order they were opened.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from yizhan.mailstore.models import Step
from yizhan.routing.rules import Flow

__all__ = ["Part", "Stage", "duration_text", "stages"]


@dataclass(frozen=True, kw_only=True)
class Part:
    """One person's part in a stage."""

    step_id: int
    asked: str
    on_behalf_of: str | None
    done_by: str | None
    state: str
    opened_at: dt.datetime
    done_at: dt.datetime | None
    due_at: dt.datetime | None
    took: str
    late: bool
    outcome: str


@dataclass(frozen=True, kw_only=True)
class Stage:
    """Steps of one name opened together."""

    name: str
    label: str
    action: str
    state: str  # done | waiting | late | cancelled
    parts: tuple[Part, ...]


def duration_text(span: dt.timedelta) -> str:
    """A span as people say it: 3 d 4 h, 2 h 5 min, 12 min."""
    minutes = max(0, int(span.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {mins} min"
    return f"{mins} min"


def stages(
    steps: Sequence[Step], flow: Flow | None, names: Mapping[str, str], now: dt.datetime
) -> list[Stage]:
    """The stages of a document's ``steps`` (opened order), names looked up in ``names``."""
    grouped: list[list[Step]] = []
    for step in steps:
        last = grouped[-1] if grouped else None
        if (
            last
            and last[0].name == step.name
            and abs(last[0].created_at - step.created_at) < dt.timedelta(seconds=5)
        ):
            last.append(step)
        else:
            grouped.append([step])
    result = []
    for group in grouped:
        rule = flow.step(group[0].name) if flow else None
        parts = tuple(_part(s, names, now) for s in group)
        if all(p.state == "cancelled" for p in parts):
            state = "cancelled"
        elif any(p.late and p.state == "waiting" for p in parts):
            state = "late"
        elif any(p.state == "waiting" for p in parts):
            state = "waiting"
        else:
            state = "done"
        result.append(
            Stage(
                name=group[0].name,
                label=rule.label if rule else group[0].name,
                action=group[0].action,
                state=state,
                parts=parts,
            )
        )
    return result


def _part(step: Step, names: Mapping[str, str], now: dt.datetime) -> Part:
    end = step.done_at or now
    late = step.state != "cancelled" and step.due_at is not None and end > step.due_at
    return Part(
        step_id=step.id,
        asked=names.get(step.assignee, step.assignee),
        on_behalf_of=names.get(step.on_behalf_of, step.on_behalf_of) if step.on_behalf_of else None,
        done_by=names.get(step.done_by, step.done_by) if step.done_by else None,
        state=step.state,
        opened_at=step.created_at,
        done_at=step.done_at,
        due_at=step.due_at,
        took=duration_text(end - step.created_at),
        late=late,
        outcome=step.outcome or "",
    )
