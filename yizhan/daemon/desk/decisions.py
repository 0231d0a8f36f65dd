"""Applies what a request led to: writes the engine's decision and sends what it causes.

In the processor's transaction, for an :class:`~yizhan.daemon.desk.request.Outcome`: the
document number is allocated when the decision needs one, steps for people who are away go to
their delegates (第九條), the decision is written (``mailstore.documents``), the search index
learns what changed, the notices go out (``desk.notices``), each effect record is carried out
by the module that owns it (``desk.modules.EFFECTS``), and the sender gets the engine's answer.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import replace

from yizhan.daemon.desk.modules import EFFECTS
from yizhan.daemon.desk.notices import send_notices
from yizhan.daemon.desk.request import Outcome, Request
from yizhan.mailstore.delegations import active_delegations
from yizhan.mailstore.documents import allocate_number, apply_decision, load_state
from yizhan.routing import workflow
from yizhan.routing.delegation import route_to_delegates
from yizhan.routing.numbering import format_number
from yizhan.routing.reminders import first_reminder_at

__all__ = ["apply_outcome"]

log = logging.getLogger("yizhan.desk.decisions")


def apply_outcome(request: Request, outcome: Outcome) -> None:
    """Apply ``outcome`` for ``request`` (see the module docstring)."""
    session, now, desk = request.session, request.now, request.desk
    document, decision = outcome.document, outcome.decision
    if decision.needs_number is not None:
        year = now.astimezone(request.ctx.config.tzinfo).year
        seq = allocate_number(session, decision.needs_number, year)
        decision = workflow.assign_number(decision, format_number(decision.needs_number, year, seq))
    decision = route_to_delegates(decision, active_delegations(session), now)

    def first_reminder(opened_at: dt.datetime, due: dt.datetime) -> dt.datetime | None:
        return first_reminder_at(opened_at, due, desk.calendar)

    opened = apply_decision(
        session,
        document,
        decision,
        actor=outcome.actor,
        on_behalf_of=outcome.on_behalf_of,
        now=now,
        first_reminder=first_reminder,
    )
    if decision.title is not None or decision.number is not None or "body" in decision.fields:
        # What a search reads changed: opened, revised or numbered.
        desk.finder.index(session, document)
    state = load_state(session, document)
    send_notices(request, document, state, decision, opened, sealed_by=outcome.sealed_by)
    for n, effect in enumerate(decision.effects):
        key = f"{request.key}:fx:{n}"
        log.info("%s: %s for doc %s", key, type(effect).__name__, document.id)
        more = EFFECTS[type(effect)].apply_effect(
            request, document, effect, key=key, actor=outcome.actor
        )
        for m, further in enumerate(more or ()):
            # Told to the people concerned, not answered: the sender gets this decision's answer.
            apply_outcome(replace(request, key=f"{key}:{m}", mail_from=""), further)
    request.reply(decision.reply, document=document)
