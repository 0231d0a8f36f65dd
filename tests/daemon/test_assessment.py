"""End-to-end: the monthly assessment (mine rules 二 考核) from the audit trail.

A month's late steps, an impersonation, a virus and a problem report left unhandled, made over
SMTP; on the first working day of the next month the office (its head and clerk) gets the
report once, each line with the ids that prove it, and `yizhan report assessment --json` gives
the same data.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import smtplib
import subprocess
import sys
from email.utils import parsedate_to_datetime
from typing import Any

import pytest

from tests.daemon.conftest import Files
from tests.daemon.test_flows import Daemon, one, reply, scan_with, text
from tests.daemon.test_supervision import deliver
from yizhan.daemon.jobs.assessment import run_assessment
from yizhan.routing.calendar import WorkCalendar

pytest_plugins = ["tests.daemon.test_flows"]

AUTHOR, HEAD, OUTSIDER, IT_HEAD = "xiewenbin", "liangguoqiang", "hanxue", "wuhaifeng"
OFFICE = ("chenzhigang", "wangfang")


def report_cli(d: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    """`yizhan report …`, run as a program against the daemon's database."""
    config = d.ctx.config
    path = config.data_dir / "yizhan.toml"
    path.write_text(
        f'[yizhan]\ndata_dir = "{config.data_dir}"\nsecret = "{config.secret}"\n'
        f'[database]\nurl = "{config.database_url}"\n',
        encoding="utf-8",
    )
    return subprocess.run(
        [sys.executable, "-m", "yizhan", "report", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "YIZHAN_CONFIG": str(path)},
        timeout=60,
        check=False,
    )


def first_working_day_after(d: Daemon, day: dt.date) -> dt.datetime:
    """09:30 on the first working day of the month after ``day``'s."""
    calendar = WorkCalendar(tz=d.ctx.config.tzinfo)
    first = (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    while not calendar.is_working_day(first):
        first += dt.timedelta(days=1)
    return dt.datetime.combine(first, dt.time(9, 30), tzinfo=d.ctx.config.tzinfo)


def test_the_office_gets_the_monthly_assessment_and_the_cli_gives_its_data(
    daemon: Daemon, clamd_socket: str, content_files: type[Files]
) -> None:
    # 梁國強 leaves a report waiting past its deadline; 韓雪 tries to approve it in his name
    # and uploads a virus; her problem report to IT is not handled in time either.
    scan_with(daemon, clamd_socket)
    tz = daemon.ctx.config.tzinfo
    daemon.send(AUTHOR, "qianbao@oa.example", "關於購置檢測設備的請示", "擬購置設備一台。")
    one(daemon, AUTHOR)
    ask = one(daemon, HEAD)
    report_doc = int(ask["X-Yizhan-Doc"])
    reply(daemon, OUTSIDER, ask, "同意")
    assert "未受理" in text(one(daemon, OUTSIDER))
    one(daemon, IT_HEAD)  # the impersonation report
    with pytest.raises(smtplib.SMTPDataError):
        daemon.send(
            OUTSIDER, "qianbao@oa.example", "資料", "見附件。", files={"a.txt": content_files.eicar}
        )
    daemon.send(OUTSIDER, "baoxiu@oa.example", "電腦無法開機", "按電源鍵無反應。")
    daemon.inbox(OUTSIDER, expect=2)  # why the virus was refused, and the report's receipt
    # 信息化處 hears of the virus, and is asked to handle the problem.
    (problem,) = [m for m in daemon.inbox(IT_HEAD, expect=2) if m["X-Yizhan-Kind"] == "baoxiu"]
    problem_doc = int(problem["X-Yizhan-Doc"])

    due = max(
        parsedate_to_datetime(str(m["X-Yizhan-Deadline"])).astimezone(tz).date()
        for m in (ask, problem)
    )
    month = f"{due:%Y-%m}"
    when = first_working_day_after(daemon, due)
    assert run_assessment(daemon.ctx, when - dt.timedelta(hours=1)) == 0  # not before 09:00
    assert run_assessment(daemon.ctx, when) == len(OFFICE)
    assert run_assessment(daemon.ctx, when + dt.timedelta(hours=3)) == 0  # once a month
    deliver(daemon)
    for account in OFFICE:
        mail = one(daemon, account)
        body = text(mail)
        assert month in str(mail["Subject"])
        for expected in ("梁國強", "吳海峰", f"#{report_doc}", f"#{problem_doc}", "hanxue"):
            assert expected in body, expected

    result = report_cli(daemon, "assessment", "--month", month, "--json", "--now", when.isoformat())
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    assert data["month"] == month
    people = {line["account"]: line for line in data["late_steps_by_person"]}
    assert people[HEAD]["documents"] == [report_doc]
    assert people[IT_HEAD]["documents"] == [problem_doc]
    units = {line["unit"]: line["count"] for line in data["late_steps_by_unit"]}
    assert units["inspection"] == 1 and units["it"] == 1
    assert [line["document"] for line in data["late_problem_reports"]] == [problem_doc]
    (impersonation,) = data["impersonation_refused"]
    assert impersonation["account"] == OUTSIDER and impersonation["in_the_name_of"] == HEAD
    assert isinstance(impersonation["audit"], int)
    (virus,) = data["virus_uploads"]
    assert virus["sender"] == OUTSIDER and isinstance(virus["audit"], int)
    assert data["accounts_late"] == [] and data["published_without_review"] == []

    # The month before holds none of it; a month that is not one is refused plainly.
    earlier = report_cli(daemon, "assessment", "--month", "2020-01", "--json")
    assert earlier.returncode == 0 and json.loads(earlier.stdout)["late_steps_by_person"] == []
    bad = report_cli(daemon, "assessment", "--month", "2026-13", "--json")
    assert bad.returncode == 1 and "YYYY-MM" in bad.stderr
