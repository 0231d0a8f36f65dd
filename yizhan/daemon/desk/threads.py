"""Each document is one conversation in people's mail clients (issue 13, part 7).

Every mail about a document names the document's thread root in ``References`` (RFC 5322
section 3.6.4), so that Thunderbird, Apple Mail and phone clients gather the requests, notices
and answers of one document under one thread even though no mail is the root itself. Outlook
threads by ``Thread-Index`` (its conversation index: a 22-byte header whose last 16 bytes are
the conversation's GUID, base64) and ``Thread-Topic``; every mail of a document carries the
same index header, made from the document's id, and its title as the topic. An answer to a
person's own message stays in reply to that message and adds the root to its references.
Pure functions: the domain and document id in, headers out.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping

__all__ = ["document_thread", "join_threads", "thread_root"]


def thread_root(document_id: int, domain: str) -> str:
    """The Message-ID every mail about the document refers to."""
    return f"<yizhan-doc-{document_id}@{domain}>"


def document_thread(document_id: int, domain: str, title: str | None) -> dict[str, str]:
    """The threading headers of a mail about a document."""
    digest = hashlib.sha256(f"yizhan-doc/{domain}/{document_id}".encode()).digest()
    # Byte 0 is reserved (1); bytes 1-5 stand for the conversation's start time in Outlook's
    # own indexes, here a constant of the document; bytes 6-21 are the conversation GUID.
    index = b"\x01" + digest[:5] + digest[5:21]
    root = thread_root(document_id, domain)
    headers = {
        "References": root,
        "In-Reply-To": root,
        "Thread-Index": base64.b64encode(index).decode("ascii"),
    }
    if title:
        headers["Thread-Topic"] = " ".join(title.split())
    return headers


def join_threads(document: Mapping[str, str], answer: Mapping[str, str]) -> dict[str, str]:
    """A document's headers with those of an answer to a person's message: in reply to their
    message, referring to the document's root and to what their message referred to."""
    joined = {**document, **answer}
    if "In-Reply-To" in answer and "References" in document:
        references = document["References"].split() + answer.get("References", "").split()
        joined["References"] = " ".join(dict.fromkeys(references))
    return joined
