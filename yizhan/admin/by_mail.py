"""Acting on the page as by mail: what a module's command does, the page sends as that mail.

A page action that a mail command already does (withdrawing a bulletin at gonggao@, a reply to
one's step at r+TOKEN@, DELEGATE at cmd@, a problem report at baoxiu@ …) is written as the mail
the person would send and handed to the inbound queue under their account, as the gateway does
for a mail sent with SMTP AUTH. The desk then decides it with the same code, audits
it, tells everyone concerned and answers the person by mail, so the page and the mail cannot
drift apart. The page waits a few seconds for the answer and shows it.
"""

from __future__ import annotations

import asyncio
import mimetypes
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from sqlalchemy import select

from yizhan.admin.web import Site, Viewer
from yizhan.mailstore.inbound import AUTH_WEB, InboundWriter
from yizhan.mailstore.models import Inbound, OutboundMessage
from yizhan.routing.tokens import make_token

__all__ = ["Sent", "reply_as", "send_as"]

#: The line above a mail's footer, with or without its trailing space.
_FOOTER = re.compile(r"\r?\n-- ?\r?\n")
#: How long the page waits for the desk's answer before saying it will come by mail.
WAIT_SECONDS = 10.0


@dataclass(frozen=True)
class Sent:
    """The page's mail: its inbound row, and the desk's answer if it came in time."""

    inbound_id: int
    answer: str | None


async def send_as(
    site: Site,
    viewer: Viewer,
    to_local: str,
    text: str,
    *,
    body: str | None = None,
    files: Sequence[tuple[str, bytes]] = (),
    wait: float = WAIT_SECONDS,
) -> Sent:
    """Send ``text`` (as subject, and as body unless ``body`` is given) with ``files`` (name,
    bytes; typed by the name) from ``viewer`` to ``to_local@<domain>``. The processor screens
    it as it screens mail the gateway took (content rules, virus scan), since the page did not."""
    config = site.ctx.config
    mail = EmailMessage()
    mail["From"] = Address(viewer.name, viewer.account, config.domain)
    mail["To"] = f"{to_local}@{config.domain}"
    mail["Subject"] = text
    mail["Date"] = format_datetime(site.now())
    mail["Message-ID"] = make_msgid("admin", domain=config.domain)
    mail.set_content((text if body is None else body) + "\n")
    for name, data in files:
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        maintype, subtype = kind.split("/", 1)
        mail.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    writer = InboundWriter(site.ctx)
    try:
        inbound_id = await writer.store(
            data=bytes(mail),
            mail_from=f"{viewer.account}@{config.domain}",
            rcpt_tos=[f"{to_local}@{config.domain}"],
            sender_account=viewer.account,
            auth_method=AUTH_WEB,
            peer=f"admin:{viewer.account}",
        )
    finally:
        await writer.aclose()
    return Sent(inbound_id=inbound_id, answer=await _answer(site, inbound_id, wait))


async def reply_as(site: Site, viewer: Viewer, document_id: int, step_id: int, text: str) -> Sent:
    """Reply ``text`` from ``viewer`` to step ``step_id`` of ``document_id``, at the r+TOKEN@
    address a request for that step would give them (``routing.tokens``); the desk then checks
    who may act, as for any reply (``desk.replies``)."""
    token = make_token(
        site.ctx.config.secret, document_id=document_id, step_id=step_id, account=viewer.account
    )
    return await send_as(site, viewer, f"r+{token}", text)


async def _answer(site: Site, inbound_id: int, wait: float) -> str | None:
    """The text of the desk's answer to the page's mail, once the processor has taken it."""
    deadline = time.monotonic() + wait

    def look() -> tuple[str, str | None]:
        with site.ctx.sessions() as session:
            row = session.execute(
                select(Inbound.state, Inbound.sha256).where(Inbound.id == inbound_id)
            ).first()
            if row is None:
                return "accepted", None
            # The desk's answer, or the screening's when the content rules refused the mail
            # after all (a virus in a file: ``screening.notices``, keyed by the bytes' digest).
            sources = [f"in:{inbound_id}:0:reply", f"content:{row.sha256[:40]}:reply"]
            data = session.scalar(
                select(OutboundMessage.data).where(OutboundMessage.source.in_(sources)).limit(1)
            )
        return row.state, _plain_text(data) if data else None

    while True:
        state, text = await asyncio.to_thread(look)
        if state != "accepted" or time.monotonic() > deadline:
            return text
        await asyncio.sleep(0.1)


def _plain_text(data: bytes) -> str | None:
    """The plain text of an answer Yizhan queued (inside its PGP/MIME signature)."""
    mail = message_from_bytes(data, policy=policy.default)
    assert isinstance(mail, EmailMessage)
    body = mail.get_body(("plain",))
    if body is None:
        return None
    # The answer without the mail's footer under "-- " (signing drops the trailing space).
    return _FOOTER.split(str(body.get_content()), maxsplit=1)[0].strip()
