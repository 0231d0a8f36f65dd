"""Tests for yizhan.daemon.context: what every mail Yizhan queues goes through."""

from __future__ import annotations

from email.message import EmailMessage

import pytest
from sqlalchemy import select

from yizhan.daemon.context import Context, MaterialWouldLeave
from yizhan.mailstore.models import OutboundMessage


def _mail(kind: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = "ziliao@oa.example"
    mail["Subject"] = "口岸查驗操作手冊"
    mail["X-Yizhan-Kind"] = kind
    mail.set_content("手冊全文")
    return mail


@pytest.mark.parametrize("kind", ["ziliao", "tool"])
@pytest.mark.parametrize("as_bytes", [False, True])
def test_material_is_never_queued_for_an_outside_address(
    bureau: Context, kind: str, as_bytes: bool
) -> None:
    # 第十七條: whichever module asks, a material or a manual goes to the bureau's own
    # mailboxes and never to a public mail service.
    mail = _mail(kind)
    message = mail.as_bytes() if as_bytes else mail
    with bureau.sessions.begin() as session:
        with pytest.raises(MaterialWouldLeave) as refused:
            bureau.queue(
                session,
                source="t:1",
                message=message,
                rcpts=["wangfang@bureau.example", "someone@qq.com"],
            )
        assert refused.value.addresses == ["someone@qq.com"]
        bureau.queue(session, source="t:2", message=message, rcpts=["wangfang@bureau.example"])
    with bureau.sessions() as session:
        assert session.scalars(select(OutboundMessage.source)).all() == ["t:2"]


def test_other_mail_may_go_outside(bureau: Context) -> None:
    # A DSN or an answer to an outside sender is not material: only material is held back.
    with bureau.sessions.begin() as session:
        bureau.queue(session, source="t:3", message=_mail("fawen"), rcpts=["someone@qq.com"])
    with bureau.sessions() as session:
        assert session.scalars(select(OutboundMessage.source)).all() == ["t:3"]
