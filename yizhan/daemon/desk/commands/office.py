"""What the office's commands at cmd@ share (第六條): who may give them, and the document named.

REASSIGN, CANCEL and EXTEND are the office's alone; anyone else is answered plainly and nothing
changes. The admin page's buttons call the same command classes (``admin/oversight.py``).
"""

from __future__ import annotations

from yizhan.daemon.desk.request import Outcome, Request
from yizhan.mailstore.documents import load_state
from yizhan.mailstore.models import Document
from yizhan.routing.documents import Decision, DocumentState
from yizhan.routing.oversight import Reference, is_office
from yizhan.routing.visibility import LEAVE_KIND

__all__ = ["decided", "not_office", "target"]


def not_office(request: Request, word: str) -> str | None:
    """The answer to someone outside the office, or None for the office."""
    account = request.account
    assert account is not None
    if is_office(request.directory, account):
        return None
    return (
        f"「{word}」只能由辦公室使用（第六條）。如文件辦理受阻，請聯繫辦公室。\n"
        f"Only the office may use {word} (art. 6). Ask the office if a document is stuck."
    )


def target(
    request: Request, ref: Reference | None, usage: str
) -> tuple[Document, DocumentState] | str:
    """The document ``ref`` names with its state, or the answer saying why there is none."""
    if ref is None:
        return f"看不懂命令。請這樣寫：{usage}"
    document = request.session.get(Document, ref.document_id)
    if document is None:
        return (
            f"找不到文件 #{ref.document_id}。請用 查詢 確認編號。\n"
            f"No document #{ref.document_id}; check the id with STATUS."
        )
    if document.kind == LEAVE_KIND:
        return (
            f"文件 #{document.id} 是休假申請，由人事處管理（第六條）。\n"
            f"Document #{document.id} is a leave request, run by HR (art. 6)."
        )
    return document, load_state(request.session, document)


def decided(request: Request, document: Document, decision: Decision) -> Outcome | str:
    """The outcome to apply, or the refusal's answer."""
    if not decision.accepted:
        return decision.reply
    assert request.account is not None
    return Outcome(document=document, decision=decision, actor=request.account)
