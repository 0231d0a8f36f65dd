"""Account care (第十六條; mine rules 一(七)): warnings before a password's maximum age, and the
weekly list of accounts nobody used, for the IT department."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from yizhan.daemon.context import Context
from yizhan.daemon.jobs.mail import local_time, queued_already, send_job_mail
from yizhan.daemon.jobs.slots import (
    daily_slot,
    run_slot,
    run_slot_in_batches,
    weekly_slot,
    work_calendar,
)
from yizhan.mailstore import audit
from yizhan.mailstore.directory import load_directory
from yizhan.mailstore.models import (
    Account,
    Person,
)
from yizhan.routing.calendar import WorkCalendar
from yizhan.routing.duties import it_people
from yizhan.routing.reminders import (
    password_days_left,
    password_warning,
)

PASSWORD_WARNINGS_AT: Final = dt.time(9, 0)

UNUSED_REPORT_AT: Final = dt.time(9, 0)


def run_password_warnings(
    ctx: Context, now: dt.datetime, calendar: WorkCalendar | None = None
) -> int:
    """Warn people whose password nears its maximum age (第十六條); once per threshold.

    Every account is looked at, by name, ``[jobs] batch`` a transaction.

    After the age is passed the login refuses the account until the password is changed
    (``mailstore.accounts.authenticate``); this job only tells people in time.
    """
    cal = calendar or work_calendar(ctx)
    slot = daily_slot(now, cal, PASSWORD_WARNINGS_AT, working_days_only=True)
    max_age = ctx.login_policy.max_age

    def keys(session: Session, after: str | None, limit: int) -> list[str]:
        query = select(Account.account).order_by(Account.account).limit(limit)
        if after is not None:
            query = query.where(Account.account > after)
        return list(session.scalars(query))

    def work(session: Session, slot: dt.datetime, accounts: Sequence[str]) -> int:
        directory = load_directory(session)
        queued = 0
        rows = session.scalars(
            select(Account)
            .where(
                Account.account.in_(accounts),
                Account.state == "active",
                Account.password_hash.is_not(None),
                Account.password_temporary.is_(False),
            )
            .order_by(Account.account)
        )
        for row in rows:
            days = password_warning(row.password_changed_at, now, max_age)
            person = directory.people.get(row.account)
            if days is None or person is None or row.password_changed_at is None:
                continue
            changed = row.password_changed_at
            source = f"password:{row.account}:{changed:%Y%m%d%H%M%S}:{days}"
            if queued_already(session, source):
                continue
            queued += send_job_mail(
                ctx,
                session,
                source=source,
                template="password_warning.txt",
                person=person,
                headers={},
                variables={
                    "account": row.account,
                    "days_left": password_days_left(changed, now, max_age),
                    "changed": local_time(changed, cal),
                    "expires": local_time(changed + max_age, cal),
                    "max_age": max_age.days,
                    "it": "、".join(p.name for p in it_people(directory)) or "-",
                },
            )
            audit.record(
                session,
                at=now,
                actor=audit.SYSTEM,
                action="account.password_warning",
                target=row.account,
                detail={"days_left": days},
            )
        return queued

    return run_slot_in_batches(ctx, "password_warnings", slot, now, keys=keys, work=work)


def run_unused_accounts(
    ctx: Context, now: dt.datetime, calendar: WorkCalendar | None = None
) -> int:
    """Weekly, tell the IT department which accounts nobody used for ``accounts.unused_days``
    (default 90) days."""
    cal = calendar or work_calendar(ctx)
    slot = weekly_slot(now, cal, UNUSED_REPORT_AT)

    def work(session: Session, slot: dt.datetime) -> int:
        unused_after = dt.timedelta(days=ctx.config.accounts.unused_days)
        since = now - unused_after
        last_used = func.coalesce(Account.last_login_at, Account.created_at)
        rows = session.execute(
            select(Account, Person)
            .join(Person, Person.account == Account.account)
            .where(Account.state == "active", last_used < since)
            .order_by(Account.account)
        ).all()
        if not rows:
            return 0
        directory = load_directory(session)
        listed = [
            {
                "account": account.account,
                "name": person.name,
                "unit": directory.units[person.unit_id].name
                if person.unit_id in directory.units
                else person.unit_id,
                "last": local_time(account.last_login_at, cal) if account.last_login_at else "-",
            }
            for account, person in rows
        ]
        queued = 0
        for it_person in it_people(directory):
            queued += send_job_mail(
                ctx,
                session,
                source=f"unused:{slot.isoformat()}:{it_person.account}",
                template="unused_accounts.txt",
                person=it_person,
                headers={},
                variables={"rows": listed, "days": unused_after.days},
            )
        audit.record(
            session,
            at=now,
            actor=audit.SYSTEM,
            action="report.unused_accounts",
            detail={"accounts": [r["account"] for r in listed]},
        )
        return queued

    return run_slot(ctx, "unused_accounts", slot, now, work)
