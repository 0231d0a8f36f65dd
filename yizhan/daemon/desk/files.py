"""The files of a document: which stored mail holds them, and attaching them to Yizhan's mail.

A document's files are the attachments of the mail that opened it, or of the author's latest
revision that brought files of its own (``fields["inbound"]``; :func:`brings_files`). They are
read from the raw store when a mail about the document needs them, never copied into the
database: the person asked to approve, seal or receive a document gets its files with the
request, a bulletin's or a news item's readers get them with the item, and ``GET #id`` sends
them again.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Final

from sqlalchemy.orm import Session

from yizhan.daemon.extract.message import attached_files
from yizhan.mailstore.models import Document, Inbound
from yizhan.mailstore.rawstore import RawStore
from yizhan.routing.mailpolicy import MAIL

__all__ = ["attach_files", "brings_files", "document_files", "files_mail"]

log = logging.getLogger("yizhan.files")

# A picture the HTML body shows: src="cid:image001.png@01DA…".
_CID: Final = re.compile(r"cid:([^\s\"'<>)]+)", re.IGNORECASE)


def files_mail(session: Session, raw: RawStore, document: Document) -> bytes | None:
    """The stored mail that holds ``document``'s files, or None when it is not kept."""
    inbound_id = document.fields.get("inbound") or document.source_inbound
    row = session.get(Inbound, int(inbound_id)) if inbound_id else None
    if row is None:
        return None
    try:
        return raw.read(row.path)
    except OSError:
        # Restored from a backup without its raw store, say: the document keeps its text.
        log.warning("doc %s: its mail %s is not in the raw store", document.id, row.path)
        return None


def document_files(session: Session, raw: RawStore, document: Document) -> list[EmailMessage]:
    """The files attached to ``document`` (see the module docstring)."""
    data = files_mail(session, raw, document)
    if data is None:
        return []
    msg = BytesParser(policy=MAIL).parsebytes(data)
    assert isinstance(msg, EmailMessage)
    return attached_files(msg)


def brings_files(msg: EmailMessage) -> bool:
    """Whether a mail brings files of its own, not only the pictures its HTML shows.

    An Outlook or Foxmail reply carries the signature's logo as an inline part named in the
    HTML (``cid:``); a revision with nothing else must not replace the document's files.
    """
    shown = {
        cid.strip("<>").lower()
        for part in msg.walk()
        if part.get_content_type() == "text/html"
        for cid in _CID.findall(_text_of(part))
    }
    return any(
        part.get_content_disposition() == "attachment"
        or str(part.get("Content-ID", "")).strip().strip("<>").lower() not in shown
        for part in attached_files(msg)
    )


def _text_of(part: EmailMessage) -> str:
    try:
        return str(part.get_content())
    except (LookupError, ValueError):
        return ""


def attach_files(mail: EmailMessage, files: Sequence[EmailMessage]) -> None:
    """Attach ``files`` to ``mail``, each with its name, type and exact bytes."""
    for part in files:
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes) and not part.is_multipart():
            maintype, subtype = part.get_content_maintype(), part.get_content_subtype()
        else:
            # An attached message travels whole, as bytes.
            payload, maintype, subtype = part.as_bytes(), "application", "octet-stream"
        mail.add_attachment(
            payload, maintype=maintype, subtype=subtype, filename=part.get_filename()
        )
