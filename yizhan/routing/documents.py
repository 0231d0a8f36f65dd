"""The shapes the workflow engine works on: a document's state in, a decision out.

``mailstore`` builds a :class:`DocumentState` from the database and applies a :class:`Decision`
in one transaction; the engine in ``routing.workflow`` only computes. Times are UTC-aware.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from yizhan.routing.effects import Effect

#: What a recipient is asked to do (the X-Yizhan-Action header).
ACTIONS = ("approve", "seal", "receive", "handle", "progress", "read", "none")


@dataclass(frozen=True, kw_only=True)
class StepState:
    """One person's part in a document: who, what is asked, and where it stands.

    ``id`` is None for a step the engine opens in this decision; the store assigns it.
    ``assignee`` is the person asked (after delegation); ``on_behalf_of`` the delegator, if any.
    ``unit`` is the unit the step acts for (one receive, handle or countersign step is opened
    per unit); ``done_at`` is when it was done or cancelled. ``DocumentState.steps`` lists the
    steps in the order they were opened.
    """

    id: int | None
    name: str
    assignee: str
    action: str
    state: str = "waiting"  # waiting | done | cancelled
    due_at: dt.datetime | None = None
    on_behalf_of: str | None = None
    done_by: str | None = None
    outcome: str | None = None
    unit: str | None = None
    done_at: dt.datetime | None = None


@dataclass(frozen=True, kw_only=True)
class TrailEntry:
    """One line of the document's history, shown in every mail about it.

    ``step`` names the workflow step the line is about (review, signoff …), None for the
    document as a whole (open, revise, comment).
    """

    at: dt.datetime
    actor: str
    action: str
    on_behalf_of: str | None = None
    opinion: str = ""
    step: str | None = None


@dataclass(frozen=True, kw_only=True)
class DocumentState:
    """A document as the engine sees it."""

    id: int | None
    kind: str  # fawen | shouwen | qianbao | hanjian (and later modules)
    title: str
    state: str
    author: str
    unit: str
    urgency: str | None = None
    number: str | None = None
    version: int = 1
    fields: dict[str, Any] = field(default_factory=dict)
    steps: tuple[StepState, ...] = ()
    trail: tuple[TrailEntry, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Notice:
    """A mail the decision sends: to whom, why, and what they are asked to do.

    ``step_index`` points into ``Decision.open_steps`` when the mail asks for action on a step
    opened by this decision (the store turns it into a reply token); ``template`` names the
    mail template; ``variables`` are for the template.
    """

    to: str
    template: str
    action: str = "none"
    step_index: int | None = None
    on_behalf_of: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Decision:
    """Everything one command or one new document changes.

    ``accepted`` False means the command was refused: nothing changes and ``reply`` says why
    and what to send instead. ``needs_number`` asks the store to allocate the next number of
    that prefix for the year before applying (then ``number`` is filled by the store, with
    ``routing.workflow.assign_number``).

    ``fields`` are merged over the document's fields (for a new document: all of them);
    ``close_steps`` are marked done by the acting person with ``outcome``; ``title`` and
    ``version`` are set when not None (a revision); ``number`` is the document number to set.
    ``effects`` are what the store must do besides (publish, record, change the directory;
    see :mod:`yizhan.routing.effects`), in order, in the same transaction.
    """

    accepted: bool
    reply: str
    state: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    open_steps: tuple[StepState, ...] = ()
    close_steps: tuple[int, ...] = ()
    cancel_steps: tuple[int, ...] = ()
    #: Waiting steps given a new deadline (EXTEND, ``routing.oversight``): (step id, due).
    extend_steps: tuple[tuple[int, dt.datetime], ...] = ()
    trail: tuple[TrailEntry, ...] = ()
    notices: tuple[Notice, ...] = ()
    needs_number: str | None = None
    reasons: tuple[str, ...] = ()
    outcome: str | None = None
    number: str | None = None
    title: str | None = None
    version: int | None = None
    effects: tuple[Effect, ...] = ()
