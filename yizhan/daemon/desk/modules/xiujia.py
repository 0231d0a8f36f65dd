"""休假管理 at xiujia@: leave requests, and HR's leave book (第六條, 第九條).

A request names its 類型 and 起止; annual leave is counted in working days against the
entitlement by years of service (``routing.leave``). Once approved it is written into HR's
book, HR hears of it, and the person is asked to name a delegate unless one covers the leave
(第九條). 查詢 / STATUS gives the balance (anyone their own, HR anyone's); 設置 / SET corrects
the book (HR only, 第六條: HR runs this module).
"""

from __future__ import annotations

import datetime as dt

from yizhan.daemon.desk.modules.base import DocumentModule, Prepared
from yizhan.daemon.desk.request import Outcome, Request
from yizhan.mailstore import audit
from yizhan.mailstore import leave as leave_store
from yizhan.mailstore.delegations import covering
from yizhan.mailstore.models import Document
from yizhan.routing import leave
from yizhan.routing.commands import Verb
from yizhan.routing.drafts import Draft
from yizhan.routing.duties import hr_officers
from yizhan.routing.effects import Effect, RecordLeave

__all__ = ["Xiujia"]


class Xiujia(DocumentModule):
    """See the module docstring."""

    name = "xiujia"
    help = "休假 leave；查詢 / STATUS 假期餘額 balance"
    effects = (RecordLeave,)

    def command(self, request: Request) -> Outcome | bool:
        """查詢 / STATUS [account]: the leave balance; 設置 / SET: HR's correction."""
        assert request.account is not None
        command = request.command
        if command.verb not in (Verb.STATUS, Verb.SET):
            return False
        session, directory, account = request.session, request.directory, request.account
        hr = directory.in_unit_of_kind(account, "hr")
        if command.verb is Verb.SET:
            if not hr:
                _refused(request, "set", command.argument)
                text = "休假記錄由人事處更正（第六條）。\nOnly HR corrects leave records (art. 6)."
            else:
                today = request.now.astimezone(request.ctx.config.tzinfo).date()
                correction = leave.parse_hr_set(command.argument, today)
                text = (
                    correction
                    if isinstance(correction, str)
                    else leave_store.correct(session, correction, actor=account, now=request.now)
                )
            request.reply(text)
            return True
        asked = command.argument.strip().lower() or account
        if asked != account and not hr:
            _refused(request, "status", asked)
            text = "只有人事處可以查看他人的休假。\nOnly HR may see another's leave."
        elif asked not in directory.people:
            text = f"沒有帳號 {asked}。\nNo account {asked}."
        else:
            year = request.now.astimezone(request.ctx.config.tzinfo).year
            text = leave.balance(
                leave_store.leave_records(session, asked),
                leave_store.service_start(session, asked),
                year,
            ).text()
        request.reply(text)
        return True

    def prepare(self, request: Request, draft: Draft, today: dt.date) -> Prepared | str:
        """The leave's type, period and days, checked against the balance."""
        assert request.account is not None
        checked = leave.check_request(
            type_text=draft.leave_type,
            period_text=draft.period,
            records=leave_store.leave_records(request.session, request.account),
            service_start=leave_store.service_start(request.session, request.account),
            calendar=request.desk.calendar,
            today=today,
        )
        if isinstance(checked, str):
            return checked
        return Prepared(
            fields={
                "leave_type": checked.leave_type,
                "leave_start": checked.start.isoformat(),
                "leave_end": checked.end.isoformat(),
                "leave_days": checked.days,
                # The condition of the xiujia flow's bureau-leader step.
                "long_leave": checked.long,
            }
        )

    def apply_effect(
        self, request: Request, document: Document, effect: Effect, *, key: str, actor: str
    ) -> None:
        """Write an approved leave into HR's book, tell HR (第六條) and prompt the person to
        name a delegate unless one covers the leave (第九條)."""
        if not isinstance(effect, RecordLeave):
            super().apply_effect(request, document, effect, key=key, actor=actor)
            return
        session, directory, mailer = request.session, request.directory, request.mailer
        row = leave_store.record_leave(
            session, effect, document_id=document.id, actor=actor, now=request.now
        )
        person = directory.people[effect.account]
        unit = directory.units.get(person.unit)
        labels = leave.LEAVE_TYPES.get(effect.leave_type, (effect.leave_type,) * 3)
        headers = mailer.document_headers(document)
        for n, officer in enumerate(hr_officers(directory)):
            mailer.send(
                session,
                source=f"{key}:hr:{n}",
                to=officer,
                template="leave_recorded.txt",
                headers=headers,
                document_id=document.id,
                variables={
                    "name": person.name,
                    "account": person.account,
                    "unit": unit.name if unit else person.unit,
                    "type": labels[2] if officer.language == "en" else labels[0],
                    "start": effect.start.isoformat(),
                    "end": effect.end.isoformat(),
                    "days": effect.days,
                    "record": row.id,
                    "doc": document.id,
                },
            )
        tz = request.ctx.config.tzinfo
        if covering(
            session, effect.account, dt.datetime.combine(effect.end, dt.time(0), tzinfo=tz)
        ):
            return
        mailer.send(
            session,
            source=f"{key}:delegate",
            to=person,
            template="leave_delegation.txt",
            headers=headers,
            document_id=document.id,
            variables={"start": effect.start.isoformat(), "end": effect.end.isoformat()},
        )


def _refused(request: Request, what: str, argument: str) -> None:
    """Record an HR command from someone outside HR (第六條): answered, and on the trail."""
    audit.record(
        request.session,
        at=request.now,
        actor=request.account or request.mail_from or "unknown",
        action="leave.hr_refused",
        target=argument.split()[0][:64] if argument.split() else None,
        detail={"command": what, "argument": argument[:200], "inbound": request.inbound_id},
    )
