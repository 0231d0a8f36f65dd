"""Tests for yizhan.daemon.context: what every mail Yizhan queues goes through."""

from __future__ import annotations

from email.message import EmailMessage

import pytest
from sqlalchemy import select

from yizhan.daemon.context import Context, MaterialWouldLeave
from yizhan.mailstore.models import OutboundMessage


def _mail() -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = "ziliao@oa.example"
    mail["Subject"] = "口岸查驗操作手冊"
    mail["X-Yizhan-Kind"] = "ziliao"
    mail.set_content("手冊全文")
    return mail


@pytest.mark.parametrize("as_bytes", [False, True])
def test_material_is_never_queued_for_an_outside_address(bureau: Context, as_bytes: bool) -> None:
    # 第十七條: whichever module asks, a material or a manual goes to the bureau's own
    # mailboxes and never to a public mail service.
    message = _mail().as_bytes() if as_bytes else _mail()
    with bureau.sessions.begin() as session:
        with pytest.raises(MaterialWouldLeave) as refused:
            bureau.queue(
                session,
                source="t:1",
                message=message,
                rcpts=["wangfang@bureau.example", "someone@qq.com"],
                material=True,
            )
        assert refused.value.addresses == ["someone@qq.com"]
        bureau.queue(
            session,
            source="t:2",
            message=message,
            rcpts=["wangfang@bureau.example"],
            material=True,
        )
    with bureau.sessions() as session:
        assert session.scalars(select(OutboundMessage.source)).all() == ["t:2"]


def test_a_header_alone_does_not_hold_mail_back(bureau: Context) -> None:
    # Mail that is only passed on (or an answer that names a material) may carry the kind
    # header; only what the caller says is material is held inside.
    with bureau.sessions.begin() as session:
        bureau.queue(session, source="t:3", message=_mail(), rcpts=["someone@qq.com"])
    with bureau.sessions() as session:
        assert session.scalars(select(OutboundMessage.source)).all() == ["t:3"]
