"""End to end through a real Postfix and Dovecot (issue 13, part 8).

Postfix is the organisation's MTA (``conftest``): staff submit to its submission port with SMTP
AUTH through Dovecot's SASL (so Yizhan's account policy decides); Postfix routes the OA domain
to Yizhan; Yizhan files requests into people's folders over IMAP, relays the rest out through
Postfix, and Postfix delivers people's own mailboxes into Dovecot over LMTP. The drafts are
submitted by swaks and the folders read with imaplib: clients nobody here wrote.
"""

from __future__ import annotations

import imaplib
import smtplib
from collections.abc import Iterator
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.daemon.imap.conftest import Held, folder, login, wait_until
from tests.daemon.postfix.conftest import OA_DOMAIN, Site, postfix_site
from tests.daemon.test_flows import PASSWORD, files_of, scan_with
from yizhan.daemon.imap.folders import DONE, TODO
from yizhan.mailstore import accounts
from yizhan.mailstore.models import AuditEntry


@pytest.fixture(scope="module")
def site(system_key_home: Path) -> Iterator[Site]:
    with postfix_site(system_key_home, file_over_imap=True) as running:
        yield running


def reply_through_postfix(site: Site, account: str, ask: EmailMessage, text: str) -> None:
    """Answer a request as a mail client would: to its Reply-To, in its thread."""
    answer = EmailMessage()
    answer["From"] = f"{account}@bureau.example"
    answer["To"] = str(ask["Reply-To"] or ask["From"])
    answer["Subject"] = "Re: " + str(ask["Subject"])
    answer["In-Reply-To"] = str(ask["Message-ID"])
    answer["References"] = str(ask["Message-ID"])
    answer.set_content(f"{text}\n\n> (original below)\n")
    site.submit(account, answer)


def test_a_draft_submitted_to_postfix_reaches_todo_and_moves_to_done(site: Site) -> None:
    # 內部簽報 by a mail client set up for the organisation's Postfix: swaks submits with SMTP
    # AUTH; Postfix → Yizhan (transport map) → the unit head's 公文/待辦 over IMAP.
    author, head, leader = "xiewenbin", "liangguoqiang", "sunlimin"
    sent = site.swaks(
        "--auth", "PLAIN",
        "--auth-user", author,
        "--auth-password", PASSWORD,
        "--from", f"{author}@bureau.example",
        "--to", f"qianbao@{OA_DOMAIN}",
        "--header", "Subject: =?UTF-8?B?6Zec5pa86LO8572u6Zu76IWm55qE6KuL56S6?= PFX-E2E-1",
        "--body", "擬購置電腦五台。",
    )  # fmt: skip
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "235 2.7.0 Authentication successful" in sent.stdout

    def requests(account: str, name: str) -> list[Held]:
        return [m for m in folder(site.daemon, account, name) if "PFX-E2E-1" in m.mail["Subject"]]

    (ask,) = wait_until(lambda: requests(head, TODO), timeout=40, what="the head's request")
    assert ask.mail["X-Yizhan-Action"] == "approve"
    assert ask.mail["Subject"].startswith("關於購置電腦的請示") or "關於購置電腦的請示" in str(
        ask.mail["Subject"]
    )
    # Yizhan knew the author from the login Postfix checked, not from the From: header.
    (row,) = [r for r in site.inbound("PFX-E2E-1") if "qianbao@oa.example" in r.rcpt_tos]
    assert (row.sender_account, row.auth_method) == (author, "relay-auth")
    # The sealed login header was spent at the gateway: the stored message has none.
    assert b"X-Yizhan-Login" not in site.daemon.ctx.raw.read(row.path)

    reply_through_postfix(site, head, ask.mail, "同意")
    (done,) = wait_until(lambda: requests(head, DONE), timeout=40, what="the request in 已辦")
    assert done.mail["Message-ID"] == ask.mail["Message-ID"]
    assert "\\Seen" in done.flags
    assert requests(head, TODO) == []
    (next_ask,) = wait_until(lambda: requests(leader, TODO), timeout=40, what="the next request")
    assert next_ask.mail["X-Yizhan-Doc"] == ask.mail["X-Yizhan-Doc"]
    # One conversation in Thunderbird (the same root in References) and in Outlook (the same
    # Thread-Index and Thread-Topic), across people and steps.
    root = f"<yizhan-doc-{ask.mail['X-Yizhan-Doc']}@{OA_DOMAIN}>"
    for mail in (ask.mail, next_ask.mail):
        assert root in str(mail["References"]).split()
        assert mail["Thread-Index"] == ask.mail["Thread-Index"]
        assert str(mail["Thread-Topic"]).startswith("關於購置電腦的請示")


def test_utf8_names_survive_the_round_trip(site: Site, clamd_socket: str) -> None:
    # SMTPUTF8 (raw UTF-8 headers, RFC 6532) into Postfix, on to Yizhan, and out again: the
    # title, the author's name and an RFC 2231 file name arrive as written.
    scan_with(site.daemon, clamd_socket)
    author, head = "hanxue", "liangguoqiang"
    draft = EmailMessage(policy=policy.SMTPUTF8)
    draft["From"] = Address("韓雪", addr_spec=f"{author}@bureau.example")
    draft["To"] = f"qianbao@{OA_DOMAIN}"
    draft["Subject"] = "關於採購檔案櫃的請示 PFX-UTF8"
    draft.set_content("擬採購檔案櫃兩組，清單附後。")
    listing = "檔案櫃 2 組\n".encode()
    draft.add_attachment(
        listing,
        maintype="text",
        subtype="plain",
        filename="採購清單（第一批）.txt",
    )
    with smtplib.SMTP("127.0.0.1", site.postfix.ports.submission, timeout=30) as client:
        client.login(author, PASSWORD)
        assert client.has_extn("smtputf8")
        client.send_message(draft)
    # Postfix passed it on to Yizhan as it came: raw UTF-8, not re-encoded.
    (row,) = wait_until(lambda: site.inbound("PFX-UTF8"), what="the draft at Yizhan")
    assert "Subject: 關於採購檔案櫃的請示 PFX-UTF8".encode() in site.daemon.ctx.raw.read(row.path)

    def asked() -> list[Held]:
        return [m for m in folder(site.daemon, head, TODO) if "PFX-UTF8" in m.mail["Subject"]]

    (ask,) = wait_until(asked, timeout=40, what="the request")
    assert "關於採購檔案櫃的請示" in str(ask.mail["Subject"])
    files = {name: data.replace(b"\r\n", b"\n") for name, data in files_of(ask.mail)}
    assert files.get("採購清單（第一批）.txt") == listing
    texts = [p.get_content() for p in ask.mail.walk() if p.get_content_type() == "text/plain"]
    assert any("韓雪" in text for text in texts)


def test_mail_for_a_persons_own_mailbox_goes_through_postfix_into_dovecot(site: Site) -> None:
    # Yizhan relays out through Postfix; Postfix delivers bureau.example into Dovecot (LMTP).
    # A notice Yizhan sends to someone's own address outside the OA domain travels that way:
    # here, a message sent straight to Postfix by an outside sender to a person's mailbox.
    sent = site.swaks(
        "--from", "partner@elsewhere.example",
        "--to", "lijun@bureau.example",
        "--header", "Subject: PFX-LMTP-1",
        "--body", "hello",
        port=site.postfix.ports.mx,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stdout + sent.stderr
    (held,) = wait_until(
        lambda: [
            m for m in folder(site.daemon, "lijun", "INBOX") if m.mail["Subject"] == "PFX-LMTP-1"
        ],
        what="the message in lijun's INBOX",
    )
    assert held.mail["Return-Path"] == "<partner@elsewhere.example>"
    assert "lmtp" in site.postfix.wait_log("status=sent (250 2.0.0 <lijun@bureau.example>")
    # A colleague's mail submitted with SASL: the sealed login is Yizhan's alone, stripped
    # from every other delivery.
    sent = site.swaks(
        "--auth", "PLAIN", "--auth-user", "zhaojianguo", "--auth-password", PASSWORD,
        "--from", "zhaojianguo@bureau.example",
        "--to", "lijun@bureau.example",
        "--header", "Subject: PFX-LMTP-2",
    )  # fmt: skip
    assert sent.returncode == 0, sent.stdout
    (held,) = wait_until(
        lambda: [
            m for m in folder(site.daemon, "lijun", "INBOX") if m.mail["Subject"] == "PFX-LMTP-2"
        ],
        what="the colleague's message",
    )
    assert held.mail["X-Yizhan-Login"] is None


def test_a_spoofed_sender_without_auth_is_refused(site: Site) -> None:
    # Nobody may use a staff address as the sender without logging in as its owner: not on the
    # port the world uses, not on the submission port.
    spoof = ("--from", "sunlimin@bureau.example", "--to", f"qianbao@{OA_DOMAIN}")
    at_mx = site.swaks(*spoof, "--header", "Subject: PFX-SPOOF-1", port=site.postfix.ports.mx)
    assert at_mx.returncode != 0
    assert "553 5.7.1 <sunlimin@bureau.example>: Sender address rejected: not logged in" in (
        at_mx.stdout
    )
    at_submission = site.swaks(*spoof, "--header", "Subject: PFX-SPOOF-2")
    assert at_submission.returncode != 0
    assert "554 5.7.1" in at_submission.stdout or "530" in at_submission.stdout
    # Logged in as someone else, the address is still not theirs.
    as_other = site.swaks(
        "--auth", "PLAIN", "--auth-user", "lijun", "--auth-password", PASSWORD, *spoof,
        "--header", "Subject: PFX-SPOOF-3",
    )  # fmt: skip
    assert as_other.returncode != 0
    assert (
        "553 5.7.1 <sunlimin@bureau.example>: Sender address rejected: not owned by user lijun"
        in (as_other.stdout)
    )
    # A forged login header from outside names no one: the message reaches Yizhan as
    # unauthenticated mail.
    forged = site.swaks(
        "--from", "partner@elsewhere.example",
        "--to", f"qianbao@{OA_DOMAIN}",
        "--header", "Subject: PFX-SPOOF-4",
        "--add-header", "X-Yizhan-Login: sunlimin; queue-id=ABCDEF; mac=00",
        port=site.postfix.ports.mx,
    )  # fmt: skip
    assert forged.returncode == 0, forged.stdout
    (row,) = wait_until(lambda: site.inbound("PFX-SPOOF-4"), what="the forged message")
    assert (row.sender_account, row.auth_method) == (None, "none")
    assert not site.inbound("PFX-SPOOF-1") and not site.inbound("PFX-SPOOF-3")


def test_five_wrong_imap_passwords_lock_submission_through_postfix_too(site: Site) -> None:
    # One account, one policy: Postfix's SASL asks Dovecot, which asks Yizhan.
    for _ in range(5):
        with pytest.raises(imaplib.IMAP4.error):
            login(site.daemon, "pengliang", "not-the-password")
    # The lock is the guesser's address with that account (issue 17): here the same loopback
    # address then tries Postfix's submission port with the right password.
    with site.daemon.ctx.sessions() as session:
        locks = session.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "account.locked", AuditEntry.target == "pengliang"
            )
        ).all()
    assert [lock.detail["client"] for lock in locks] == ["127.0.0.1"]
    refused = site.swaks(
        "--auth", "PLAIN", "--auth-user", "pengliang", "--auth-password", PASSWORD,
        "--from", "pengliang@bureau.example", "--to", f"qianbao@{OA_DOMAIN}",
    )  # fmt: skip
    assert refused.returncode != 0
    assert "535 5.7.8" in refused.stdout


def test_a_suspended_account_can_neither_read_nor_send(site: Site) -> None:
    login(site.daemon, "dupeng").logout()
    with site.daemon.ctx.sessions.begin() as session:
        accounts.set_state(
            session, "dupeng", "suspended", actor="test", now=site.daemon.ctx.clock()
        )
    with pytest.raises(imaplib.IMAP4.error, match="suspended"):
        login(site.daemon, "dupeng")
    with (
        smtplib.SMTP("127.0.0.1", site.postfix.ports.submission, timeout=30) as client,
        pytest.raises(smtplib.SMTPAuthenticationError),
    ):
        client.login("dupeng", PASSWORD)
