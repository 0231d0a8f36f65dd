"""End-to-end: a receiving clerk checks before signing, and may refuse receipt (第二十一條).

A clerk answers REJECT (退回) with the reason at a receive step: that unit's copy goes back to
whoever distributed it, who corrects it and sends it again (DONE), or sends it to the right
unit instead (DONE: unit); the document closes only when every receiving unit has signed.
"""

from __future__ import annotations

from email.message import EmailMessage

from tests.daemon.test_flows import Daemon, one, reply, show_document, text

pytest_plugins = ["tests.daemon.test_flows"]


def asked(d: Daemon, account: str) -> EmailMessage:
    """The next mail asking ``account`` to act; confirmations before it are passed over."""
    while True:
        for mail in d.inbox(account):
            if str(mail.get("Reply-To", "")).startswith("r+"):
                return mail


def letter_to_finance_and_quarantine(d: Daemon) -> tuple[EmailMessage, EmailMessage]:
    """A department letter from 檢驗監管處 approved by its head; the two clerks' copies."""
    d.send(
        "songjia",
        "hanjian@oa.example",
        "關於借用檢測設備的函",
        "主送：財務處、衛生檢疫處\n\n請支持，借用兩周。",
    )
    one(d, "songjia")
    reply(d, "liangguoqiang", asked(d, "liangguoqiang"), "同意")
    one(d, "liangguoqiang")
    return asked(d, "caoyaqin"), asked(d, "xuna")


def test_refused_copy_goes_back_is_redirected_and_the_letter_closes_after_all_sign(
    daemon: Daemon,
) -> None:
    # 財務處's clerk signs; 衛生檢疫處's clerk refuses (wrong unit); the author, who sent the
    # letter, redirects it to 丹東分局, whose clerk signs; only then does the letter close.
    finance, quarantine = letter_to_finance_and_quarantine(daemon)
    doc_id = finance["X-Yizhan-Doc"]

    # Without a reason the refusal is itself refused, and changes nothing.
    reply(daemon, "xuna", quarantine, "退回")
    answer = text(one(daemon, "xuna"))
    assert "理由" in answer and "REJECT: reason" in answer
    assert [
        s["state"] for s in show_document(daemon, doc_id)["steps"] if s["name"] == "receive"
    ] == [
        "waiting",
        "waiting",
    ]

    reply(daemon, "xuna", quarantine, "退回：非本單位業務，應送丹東分局")
    assert "已退回" in text(one(daemon, "xuna"))
    back = asked(daemon, "songjia")
    assert back["X-Yizhan-Action"] == "handle"
    assert back["X-Yizhan-State"] == "sent"  # the letter is still out, not returned
    assert "非本單位業務" in text(back) and "办结" in text(back)

    reply(daemon, "caoyaqin", finance, "簽收")
    done = text(one(daemon, "caoyaqin"))
    assert "尚有1人未辦理" in done  # the refused copy still keeps it open
    shown = show_document(daemon, doc_id)
    assert shown["state"] == "sent"

    # A command other than DONE is answered with what to send instead.
    reply(daemon, "songjia", back, "同意")
    assert "辦結：單位名稱" in text(one(daemon, "songjia"))

    reply(daemon, "songjia", back, "辦結：丹東分局")
    assert "改送" in text(one(daemon, "songjia"))
    copy = asked(daemon, "panting")
    assert copy["X-Yizhan-Action"] == "receive"
    assert "借用兩周" in text(copy)
    reply(daemon, "panting", copy, "簽收")
    one(daemon, "panting")
    daemon.until("songjia", "closed")
    shown = show_document(daemon, doc_id)
    assert shown["state"] == "closed"
    assert "dandong" in shown["fields"]["to_units"]
    assert "quarantine" not in shown["fields"]["to_units"]


def test_refused_copy_sent_again_to_the_same_unit(daemon: Daemon) -> None:
    # A missing attachment: the author sends the copy again to the same unit, whose clerk
    # is asked anew and signs; the letter then closes.
    finance, quarantine = letter_to_finance_and_quarantine(daemon)
    reply(daemon, "caoyaqin", finance, "簽收")
    one(daemon, "caoyaqin")
    reply(daemon, "xuna", quarantine, "REJECT: the attachment is missing")
    one(daemon, "xuna")
    back = asked(daemon, "songjia")
    assert "the attachment is missing" in text(back)
    reply(daemon, "songjia", back, "辦結：已補附件")
    assert "重新分發" in text(one(daemon, "songjia"))
    again = asked(daemon, "xuna")
    assert again["X-Yizhan-Action"] == "receive"
    # The refused copy's old request is void: replying to it changes nothing.
    reply(daemon, "xuna", quarantine, "簽收")
    assert "已" in text(one(daemon, "xuna"))
    reply(daemon, "xuna", again, "簽收")
    one(daemon, "xuna")
    daemon.until("songjia", "closed")
