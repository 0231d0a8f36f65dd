"""Decisions made without an incoming mail: the admin page's office buttons, a suspension or a
revocation by IT (``yizhan user``), applied and told exactly as the mail commands are.

A standing :class:`~yizhan.daemon.desk.request.Request` stands in for the mail: it names the
acting account and a key that keeps each mail queued once; it has no sender address, so it is
never answered by mail (the page or the verb shows the answer instead).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import replace
from email.message import EmailMessage

from sqlalchemy.orm import Session

from yizhan.daemon.desk.commands import BY_VERB
from yizhan.daemon.desk.decisions import apply_outcome
from yizhan.daemon.desk.handover import handover_outcomes
from yizhan.daemon.desk.parts import Desk
from yizhan.daemon.desk.request import Outcome, Request, Sender
from yizhan.mailstore.directory import load_directory
from yizhan.routing.commands import Command, Verb
from yizhan.routing.directory import Directory
from yizhan.routing.mailpolicy import MAIL

__all__ = ["hand_over_moves", "hand_over_work", "run_command", "standing_request"]


def standing_request(
    desk: Desk, session: Session, *, account: str, key: str, now: dt.datetime
) -> Request:
    """A request by ``account`` with no mail behind it (see the module docstring)."""
    return Request(
        desk=desk,
        session=session,
        key=key,
        inbound_id=0,
        message_id=None,
        recipient=f"cmd@{desk.domain}",
        mail_from="",
        path="",
        msg=EmailMessage(policy=MAIL),
        sender=Sender(account=account, address=f"{account}@{desk.domain}"),
        directory=load_directory(session),
        now=now,
    )


def run_command(request: Request, verb: Verb, argument: str) -> tuple[bool, str]:
    """Run the cmd@ command ``verb`` with ``argument`` as ``request``'s account would by mail;
    whether it was carried out, and the answer the mail would have given."""
    answer = BY_VERB[verb].process(request, Command(verb, argument, ""))
    if isinstance(answer, Outcome):
        apply_outcome(request, answer)
        return True, answer.decision.reply
    return False, answer or ""


def hand_over_work(
    request: Request,
    *,
    account: str,
    unit: str,
    why: str,
    named: str | None = None,
) -> int:
    """Give ``account``'s waiting steps to their successor (``desk.handover``), each told;
    ``unit`` is the one they leave. Returns how many steps moved."""
    outcomes = handover_outcomes(
        request.session,
        request.directory,
        request.desk.rules,
        account=account,
        unit=unit,
        why=why,
        actor=request.account or "yizhan",
        now=request.now,
        named=named,
    )
    apply_all(request, outcomes)
    return len(outcomes)


def hand_over_moves(request: Request, before: Directory) -> int:
    """After an organisation import: the waiting steps of each person whose unit changed from
    ``before`` go to the head of the unit they left (第十條). Returns how many moved."""
    moved = 0
    for account, was in sorted(before.people.items()):
        now = request.directory.people.get(account)
        if now is not None and now.unit != was.unit:
            moved += hand_over_work(request, account=account, unit=was.unit, why="moved")
    return moved


def apply_all(request: Request, outcomes: Sequence[Outcome]) -> None:
    """Apply each outcome under its own key, unanswered (the caller tells the result)."""
    for n, outcome in enumerate(outcomes):
        apply_outcome(replace(request, key=f"{request.key}:{n}", mail_from=""), outcome)
