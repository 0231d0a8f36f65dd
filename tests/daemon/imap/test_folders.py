"""Which folder a message Yizhan sends belongs in (DESIGN.md, "Folders of every person")."""

from __future__ import annotations

from yizhan.daemon.imap.folders import BULLETINS, INBOX, TODO, Placement, placement
from yizhan.routing.tokens import make_token

SECRET = "folder-test-secret-0123456789"


def head(**fields: str) -> bytes:
    lines = [f"{name.replace('_', '-')}: {value}" for name, value in fields.items()]
    return ("\r\n".join(["From: cmd@oa.example", *lines]) + "\r\n\r\nbody\r\n").encode()


def test_a_request_to_act_goes_to_todo_with_its_step() -> None:
    # X-Yizhan-Action approve with a genuine r+TOKEN Reply-To: 待辦, and the step it names.
    token = make_token(SECRET, document_id=12, step_id=345, account="lijun")
    data = head(X_Yizhan_Action="approve", Reply_To=f"r+{token}@oa.example", X_Yizhan_Doc="12")
    assert placement(data, secret=SECRET, domain="oa.example") == Placement(
        folder=TODO, step_id=345, document_id=12
    )


def test_a_forged_or_foreign_token_does_not_make_a_request() -> None:
    # The step is what the token proves, never what a header claims.
    token = make_token("another-secret-0123456789", document_id=1, step_id=2, account="lijun")
    forged = head(X_Yizhan_Action="approve", Reply_To=f"r+{token}@oa.example")
    assert placement(forged, secret=SECRET, domain="oa.example").folder == INBOX
    token = make_token(SECRET, document_id=1, step_id=2, account="lijun")
    elsewhere = head(X_Yizhan_Action="approve", Reply_To=f"r+{token}@elsewhere.example")
    assert placement(elsewhere, secret=SECRET, domain="oa.example").folder == INBOX


def test_information_only_goes_to_the_inbox() -> None:
    token = make_token(SECRET, document_id=1, step_id=2, account="lijun")
    data = head(X_Yizhan_Action="none", Reply_To=f"r+{token}@oa.example", X_Yizhan_Doc="1")
    assert placement(data, secret=SECRET, domain="oa.example") == Placement(
        folder=INBOX, document_id=1
    )


def test_a_published_bulletin_goes_to_bulletins() -> None:
    # A bulletin carries List-Id; its expiry notice to the author does not.
    published = head(X_Yizhan_Kind="gonggao", List_Id="公告板 <gonggao.oa.example>")
    assert placement(published, secret=SECRET, domain="oa.example").folder == BULLETINS
    notice = head(X_Yizhan_Kind="gonggao", X_Yizhan_Action="none")
    assert placement(notice, secret=SECRET, domain="oa.example").folder == INBOX
