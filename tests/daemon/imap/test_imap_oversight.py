"""IMAP and the office's oversight (issue 15): a cancelled or reassigned request leaves the
person's 公文/待辦 for 公文/已辦, and the new person's request is filed in theirs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon.imap.conftest import Held, folder, imap_daemon, wait_until
from tests.daemon.test_flows import Daemon
from yizhan.daemon.imap.folders import DONE, TODO


@pytest.fixture(scope="module")
def daemon(system_key_home: Path) -> Iterator[Daemon]:
    with imap_daemon(system_key_home) as d:
        yield d


def held(daemon: Daemon, account: str, name: str, title: str) -> list[Held]:
    return [m for m in folder(daemon, account, name) if title in m.mail["Subject"]]


def test_reassigned_and_cancelled_requests_leave_todo(daemon: Daemon) -> None:
    author, head, clerk = "fenggang", "tangxiaodong", "xuna"
    title = "關於更換消毒設備的請示"
    daemon.send(author, "qianbao@oa.example", title, "設備老化。")
    (ask,) = wait_until(lambda: held(daemon, head, TODO, title), what="the head's request")
    doc_id = ask.mail["X-Yizhan-Doc"]

    daemon.send("wangfang", "cmd@oa.example", f"轉辦 #{doc_id} 許娜 唐處長出差", "")
    wait_until(lambda: held(daemon, head, DONE, title), what="the old request in 已辦")
    assert held(daemon, head, TODO, title) == []
    (new,) = wait_until(lambda: held(daemon, clerk, TODO, title), what="the clerk's request")
    assert new.mail["X-Yizhan-Doc"] == doc_id

    daemon.send("wangfang", "cmd@oa.example", f"撤銷 #{doc_id} 重複請示", "")
    (gone,) = wait_until(lambda: held(daemon, clerk, DONE, title), what="the request in 已辦")
    assert "\\Seen" in gone.flags
    assert held(daemon, clerk, TODO, title) == []
