"""A bureau with real work in it, made over SMTP: the data the upgrade and backup tests carry.

Mail to a person, an internal report (內部簽報) approved by the unit head and waiting on a bureau
leader, and a notice: documents, steps, inbound and outbound messages, audit rows and Maildirs.
"""

from __future__ import annotations

from tests.daemon.test_flows import Daemon, reply


def make_work(daemon: Daemon, n: int = 1) -> None:
    """Do ``n`` rounds of ordinary work through the running daemon, waiting for each answer."""
    for i in range(n):
        daemon.send("wangfang", "lijun@oa.example", f"會議材料 {i}", "請查收。")
        daemon.inbox("lijun")
        daemon.send("xiewenbin", "qianbao@oa.example", f"關於購置設備的請示 {i}", "擬購置一台。")
        daemon.inbox("xiewenbin")
        (ask,) = daemon.inbox("liangguoqiang")
        reply(daemon, "liangguoqiang", ask, "同意")
        daemon.inbox("liangguoqiang")
