"""End-to-end: dissent goes to the leader (第二十條 ¶2), over SMTP on loopback.

Anyone on a document may reply OBJECT (異議) with the reason: the bureau leader in charge of
the drafting unit decides it while the document waits; APPROVE upholds it (back to the author
with the objection), REJECT overrules it (the document goes on). Refusals change nothing.
"""

from __future__ import annotations

from email.message import EmailMessage

from tests.daemon.test_flows import Daemon, one, reply, show_document, text

pytest_plugins = ["tests.daemon.test_flows"]

AUTHOR, HEAD, LEADER, OUTSIDER = "xiewenbin", "liangguoqiang", "sunlimin", "hanxue"


def report_at_signoff(d: Daemon) -> tuple[EmailMessage, EmailMessage]:
    """An internal report from 檢驗監管處, approved by its head, waiting for the sign-off of
    孫立民 (the leader in charge of the unit); the head's request and the leader's."""
    d.send(AUTHOR, "qianbao@oa.example", "關於購置檢測設備的請示", "擬購置設備一台，預算五十萬元。")
    one(d, AUTHOR)
    ask = one(d, HEAD)
    reply(d, HEAD, ask, "同意")
    one(d, HEAD)
    signoff = one(d, LEADER)
    assert signoff["X-Yizhan-Action"] == "approve"
    return ask, signoff


def steps(d: Daemon, doc_id: str) -> list[tuple[str, str]]:
    return [(s["name"], s["state"]) for s in show_document(d, doc_id)["steps"]]


def test_an_objection_overruled_lets_the_document_go_on(daemon: Daemon) -> None:
    # The unit head, who approved it, objects later; the leader in charge is asked to decide,
    # and until then the sign-off is refused; he overrules it, the head is told, and the
    # sign-off closes the report.
    ask, signoff = report_at_signoff(daemon)
    doc_id = ask["X-Yizhan-Doc"]

    # Someone not on the document, and an objection without a reason: refused, no change.
    reply(daemon, OUTSIDER, ask, "異議：不應購置")
    assert "起草人和經辦人" in text(one(daemon, OUTSIDER))
    reply(daemon, HEAD, ask, "OBJECT")
    assert "OBJECT: reason" in text(one(daemon, HEAD))
    assert ("objection", "waiting") not in steps(daemon, doc_id)

    reply(daemon, HEAD, ask, "异议：预算偏高，应先询价")
    assert "孫立民" in text(one(daemon, HEAD))
    decide = one(daemon, LEADER)
    assert decide["X-Yizhan-Action"] == "approve"
    assert decide["X-Yizhan-Step"] == "objection"
    assert "预算偏高" in text(decide)

    # The document waits for the decision: the sign-off is refused and nothing moves.
    reply(daemon, LEADER, signoff, "同意")
    assert "異議" in text(one(daemon, LEADER))
    assert ("signoff", "waiting") in steps(daemon, doc_id)

    # Overruling needs a reason too.
    reply(daemon, LEADER, decide, "退回")
    assert "REJECT: reason" in text(one(daemon, LEADER))
    reply(daemon, LEADER, decide, "退回：預算已經財務處審核")
    assert "駁回" in text(one(daemon, LEADER))
    told = one(daemon, HEAD)
    assert "預算已經財務處審核" in text(told)

    reply(daemon, LEADER, signoff, "同意")
    one(daemon, LEADER)
    daemon.until(AUTHOR, "closed")
    # Once closed, an objection is answered and changes nothing.
    reply(daemon, HEAD, ask, "異議：仍有意見")
    assert "已辦結" in text(one(daemon, HEAD))
    assert show_document(daemon, doc_id)["state"] == "closed"


def test_an_objection_upheld_sends_the_document_back_to_its_author(daemon: Daemon) -> None:
    # The leader upholds the objection: the waiting sign-off is withdrawn, the author gets the
    # document back with the objection to revise, and the objector is told.
    ask, signoff = report_at_signoff(daemon)
    doc_id = ask["X-Yizhan-Doc"]
    reply(daemon, HEAD, ask, "OBJECT: the budget has not been checked by finance")
    one(daemon, HEAD)
    got = daemon.inbox(LEADER)
    (decide,) = [m for m in got if m["X-Yizhan-Step"] == "objection"]
    reply(daemon, LEADER, decide, "同意，請先送財務處審核")
    mails = daemon.inbox(LEADER, expect=2)  # the confirmation and the withdrawn sign-off
    assert any("已支持" in text(m) for m in mails)
    returned = one(daemon, AUTHOR)
    assert returned["X-Yizhan-State"] == "returned"
    assert returned["X-Yizhan-Action"] == "handle"
    assert "the budget has not been checked by finance" in text(returned)
    assert "請先送財務處審核" in text(returned)
    assert "異議已支持" in str(one(daemon, HEAD)["Subject"])
    shown = show_document(daemon, doc_id)
    assert shown["state"] == "returned"
    assert ("signoff", "cancelled") in steps(daemon, doc_id)
    # The withdrawn sign-off request is void.
    reply(daemon, LEADER, signoff, "同意")
    assert "撤銷" in text(one(daemon, LEADER))
    assert show_document(daemon, doc_id)["state"] == "returned"
