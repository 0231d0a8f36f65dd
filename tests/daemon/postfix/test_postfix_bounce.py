"""Yizhan relaying people's mail out through Postfix into Dovecot, and Postfix's bounces coming
back (issue 13, parts 7 and 8).

Here Yizhan has a relay and no ``[imap] server``: people's mail goes to their own mailboxes
through the organisation's Postfix, which delivers it into Dovecot over LMTP. When a mailbox
is gone, Postfix's delivery report goes back to Yizhan's envelope sender (cmd@ at the OA
domain, routed to Yizhan by the transport map): it must reach the document's trail and the IT
department, not the void.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from tests.daemon.imap.conftest import Held, folder, wait_until
from tests.daemon.postfix.conftest import OA_DOMAIN, Site, postfix_site
from tests.daemon.test_flows import PASSWORD, scan_with
from yizhan.mailstore.models import AuditEntry, Delivery, Person


@pytest.fixture(scope="module")
def site(system_key_home: Path) -> Iterator[Site]:
    with postfix_site(system_key_home, file_over_imap=False) as running:
        yield running


def inbox(site: Site, account: str, marker: str) -> list[Held]:
    return [m for m in folder(site.daemon, account, "INBOX") if marker in str(m.mail["Subject"])]


def test_a_bounce_for_a_persons_mail_reaches_the_trail_and_the_it_department(
    site: Site, clamd_socket: str
) -> None:
    # Delivery reports carry the returned message: Yizhan's content rules scan them.
    scan_with(site.daemon, clamd_socket)
    author, head, it_head = "xiewenbin", "liangguoqiang", "wuhaifeng"
    # The unit head's mailbox moved to a domain that no longer has a mail system.
    with site.daemon.ctx.sessions.begin() as session:
        session.execute(
            update(Person)
            .where(Person.account == head)
            .values(email="liangguoqiang@retired.example")
        )
    sent = site.swaks(
        "--auth", "PLAIN", "--auth-user", author, "--auth-password", PASSWORD,
        "--from", f"{author}@bureau.example",
        "--to", f"qianbao@{OA_DOMAIN}",
        "--header", "Subject: =?UTF-8?B?6Zec5pa85L+u57mV6Ieq6KGM6LuK55qE6KuL56S6?= PFX-BOUNCE",
        "--body", "擬修繕自行車棚。",
    )  # fmt: skip
    assert sent.returncode == 0, sent.stdout
    # Postfix → Yizhan → Postfix → Dovecot: the author's confirmation is in their INBOX,
    # delivered over LMTP.
    (confirmation,) = wait_until(
        lambda: inbox(site, author, "PFX-BOUNCE"), timeout=40, what="the confirmation"
    )
    document = confirmation.mail["X-Yizhan-Doc"]
    assert document
    # The request for the head could not be delivered; Postfix's report came back to cmd@.
    (notice,) = wait_until(
        lambda: [m for m in folder(site.daemon, it_head, "INBOX") if "Undelivered" in str(
            m.mail["Subject"]
        )],
        timeout=25,
        what="the IT department's notice",
    )  # fmt: skip
    assert notice.mail["X-Yizhan-Doc"] == document
    texts = [p.get_content() for p in notice.mail.walk() if p.get_content_type() == "text/plain"]
    assert any("liangguoqiang@retired.example" in t and "5.1.2" in t for t in texts)
    # It joins the document's conversation.
    assert f"<yizhan-doc-{document}@{OA_DOMAIN}>" in str(notice.mail["References"])
    with site.daemon.ctx.sessions() as session:
        trail = session.scalars(
            select(AuditEntry).where(
                AuditEntry.target == f"doc:{document}", AuditEntry.action == "doc.undelivered"
            )
        ).all()
        (delivery,) = session.scalars(
            select(Delivery).where(Delivery.rcpt == "liangguoqiang@retired.example")
        ).all()
    (entry,) = trail
    assert entry.detail["rcpt"] == "liangguoqiang@retired.example"
    assert entry.detail["status"] == "5.1.2"
    assert "no mail system for this domain" in entry.detail["diagnostic"]
    # Postfix's own report (it accepted the mail and failed later), not one of Yizhan's.
    assert entry.detail["reported_by"] == "mta.bureau.example"
    assert delivery.state == "bounced"
