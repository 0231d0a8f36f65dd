"""Hands a whole document to someone who may see it: to their own mailbox, never outside for
internal material (第十七條).

``GET #id`` at cmd@ and ``GET id`` at ziliao@ both end here once the asker is known to be
allowed (``routing.visibility``). The copy has the text, the trail and every attachment, and
goes to the mailbox the directory lists for the asker, not to the From of the request. Internal
material (a ziliao@ material, or a manual or technical document by its title or file names)
is refused for a mailbox outside the organisation; the refusal is audited and reported to the
IT department.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from yizhan.daemon.desk.files import document_files
from yizhan.daemon.desk.request import Request
from yizhan.daemon.desk.threads import join_threads
from yizhan.mailstore import audit
from yizhan.mailstore.documents import doc_target, load_state
from yizhan.mailstore.models import Document
from yizhan.routing import materials
from yizhan.routing.directory import PersonInfo
from yizhan.routing.duties import it_people
from yizhan.templates.presentation import trail_lines

__all__ = ["refuse_outside", "send_copy"]


def send_copy(request: Request, document: Document) -> None:
    """Send ``document`` whole to the asker's own mailbox (the caller checked they may see
    it); internal material never to one outside the organisation, which is refused."""
    person = request.person
    assert person is not None
    session, desk, directory = request.session, request.desk, request.directory
    material = desk.finder.is_material(session, document)
    if material:
        refusal = materials.outside_refusal(person, desk.domain, desk.finder.domains(directory))
        if refusal is not None:
            refuse_outside(request, person, refusal, document)
            return
    address = person.mailbox(desk.domain)
    state = load_state(session, document)
    headers = request.mailer.document_headers(state)
    if material:
        # So that an outbound filter knows it for material too (第十七條).
        headers["X-Yizhan-Kind"] = materials.KIND
    headers = join_threads(headers, request.answer_headers())
    files = document_files(session, request.ctx.raw, document)
    author = directory.people.get(document.author)
    is_library = document.kind == materials.KIND
    request.mailer.send(
        session,
        source=f"{request.key}:copy:{document.id}",
        to=address,
        template="document_copy.txt",
        language=person.language,
        sender=request.mailer.sender(desk.finder.local_part("ziliao") if is_library else "cmd"),
        headers=headers,
        document_id=document.id,
        attachments=files,
        material=material,
        now=request.now,
        variables={
            "doc": state,
            "author": author.name if author else document.author,
            "scope": materials.scope_text(document.fields, directory) if is_library else "",
            "body": str(document.fields.get("body", "")),
            "attachments": [f.get_filename() or "" for f in files],
            "missing": len(files) < len(document.fields.get("attachments", ())),
            "material": material,
            "trail": trail_lines(state, directory, request.ctx.config.tzinfo, person.language),
        },
    )
    audit.record(
        session,
        at=request.now,
        actor=person.account,
        action="document.copy",
        target=doc_target(document.id),
        detail={"to": address, "material": material},
    )


def record_refused(request: Request, document: Document, account: str) -> None:
    """Audit a GET of a document outside ``account``'s scope; the caller answers it as for a
    document that does not exist, so that asking gives no list of ids."""
    audit.record(
        request.session,
        at=request.now,
        actor=account,
        action="document.get_refused",
        target=str(document.id),
        detail={"inbound": request.inbound_id, "reason": "not in scope"},
    )


def refuse_outside(
    request: Request,
    person: PersonInfo,
    refusal: tuple[str, str],
    document: Document | None = None,
) -> None:
    """Refuse to send internal material to ``person``'s outside mailbox (第十七條): tell them
    why (at that mailbox, their own), keep it in the audit trail and tell the IT department."""
    session = request.session
    address = person.mailbox(request.desk.domain)
    audit.record(
        session,
        at=request.now,
        actor=person.account,
        action="refused.outside",
        target=doc_target(document.id) if document is not None else None,
        detail={"to": address, "inbound": request.inbound_id},
    )
    request.reply("\n\n".join(refusal), to=address)
    _tell_it(request, session, person, address, document)


def _tell_it(
    request: Request,
    session: Session,
    person: PersonInfo,
    address: str,
    document: Document | None,
) -> None:
    for it_person in it_people(request.directory):
        request.mailer.send(
            session,
            source=f"{request.key}:outside:{it_person.account}",
            to=it_person.mailbox(request.desk.domain),
            template="material_outside.txt",
            language=it_person.language,
            headers={"Auto-Submitted": "auto-generated"},
            now=request.now,
            variables={
                "name": person.name,
                "account": person.account,
                "address": address,
                "subject": request.subject or "(no subject)",
                "document": f"#{document.id} {document.title}" if document is not None else "-",
            },
        )
