"""The figures the admin page's front page shows: documents opened on each local day."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import insert

from yizhan.daemon.context import Context
from yizhan.mailstore.models import Document
from yizhan.mailstore.overview import documents_per_day

BEIJING = ZoneInfo("Asia/Shanghai")


def test_documents_are_counted_on_the_local_day_they_were_opened(bureau: Context) -> None:
    local = [
        dt.datetime(2026, 11, 30, 23, 59),  # the day before the chart
        dt.datetime(2026, 12, 1, 0, 0),
        dt.datetime(2026, 12, 1, 7, 59),  # 23:59 UTC the day before, still 1 Dec here
        dt.datetime(2026, 12, 1, 23, 59),
        dt.datetime(2026, 12, 3, 12, 0),
        dt.datetime(2026, 12, 4, 0, 0),  # the day after the chart
    ]
    rows = [
        {
            "id": n,
            "kind": "qianbao",
            "title": f"請示{n}",
            "state": "closed",
            "author": "xiewenbin",
            "unit_id": "inspection",
            "version": 1,
            "fields": {},
            "created_at": at.replace(tzinfo=BEIJING).astimezone(dt.UTC),
            "updated_at": at.replace(tzinfo=BEIJING).astimezone(dt.UTC),
        }
        for n, at in enumerate(local, start=1)
    ]
    with bureau.sessions.begin() as session:
        session.execute(insert(Document), rows)
    since = dt.datetime(2026, 12, 1, tzinfo=BEIJING)
    with bureau.sessions() as session:
        counts = documents_per_day(session, since, BEIJING, 3)
    assert counts == [
        (dt.date(2026, 12, 1), 3),
        (dt.date(2026, 12, 2), 0),
        (dt.date(2026, 12, 3), 1),
    ]
