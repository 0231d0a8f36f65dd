"""/documents: finding documents (the SEARCH index) and each one's page, for those who may see it.

Who may see a document is ``routing.visibility.may_view``: the people on it, a bulletin's
readers, a material's scope, and by duty the office, HR (leave) and a unit head (their unit).
A document that does not exist and one the person may not see answer the same 403.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from yizhan.admin.timeline import stages
from yizhan.admin.web import Site, Viewer, forbidden, guard
from yizhan.mailstore import search as index_store
from yizhan.mailstore.documents import load_state
from yizhan.mailstore.models import Document
from yizhan.mailstore.overview import (
    document_ids,
    documents_by_ids,
    names_of,
    recent_documents,
    steps_of,
)
from yizhan.routing import bulletins, materials
from yizhan.routing.commands import Verb
from yizhan.routing.directory import Directory
from yizhan.routing.documents import DocumentState
from yizhan.routing.duties import Duty
from yizhan.routing.objection import objection_waiting, on_document
from yizhan.routing.rules import CLOSED, OBJECTION_STEP, RETURNED
from yizhan.routing.search import Ranked, contains, query_terms, rank
from yizhan.routing.visibility import LEAVE_KIND, may_view
from yizhan.templates.official import official_document
from yizhan.templates.official_html import render_official_html

__all__ = ["PAGE_REPLIES", "document_page", "page_replies", "routes", "visible_document"]

#: The replies the page offers a person at their own waiting step, as the mail would take them
#: there: (kind or None for any, step name or None, step action or None) → the verbs, each sent
#: as that reply's mail (``admin.step_replies``); the desk decides them as it decides the mail.
PAGE_REPLIES: tuple[tuple[str | None, str | None, str | None, tuple[Verb, ...]], ...] = (
    # A receiving clerk signs for their copy, or sends it back with the reason (第二十一條).
    (None, None, "receive", (Verb.RECEIVED, Verb.REJECT)),
    # The leader in charge upholds an objection, or overrules it with the reason (第二十條).
    (None, OBJECTION_STEP, None, (Verb.APPROVE, Verb.REJECT)),
    # IT closes a problem report with what was done (第十二條).
    ("baoxiu", None, "handle", (Verb.DONE,)),
)

#: Hits a search lists, and candidates it looks at before saying there are more.
MAX_HITS = 50
MAX_CANDIDATES = 5000
#: Documents holding the rarest gram that a search looks at in one round; of the documents a
#: person may see (already known, newest first), more a round: each round asks the index once
#: a gram, and the first gram leaves few of them (postings_in).
BATCH = 250
POOL_BATCH = 1000
#: The official page keeps its own inline styles (made for mail clients); still no script.
OFFICIAL_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"
)


def routes(site: Site) -> list[Route]:
    """/documents, /documents/{id}, its official HTML and PDF."""

    async def listing(request: Request, viewer: Viewer) -> Response:
        query = request.query_params.get("q", "").strip()[:200]
        found, more = await site.db(lambda s: _find(site, s, viewer, query))
        return site.render(request, viewer, "documents.html", q=query, found=found, more=more)

    async def show(request: Request, viewer: Viewer) -> Response:
        return await document_page(site, request, viewer, request.path_params["id"])

    async def official(request: Request, viewer: Viewer) -> Response:
        fmt = str(request.path_params["fmt"])
        loaded = await site.db(lambda s: _visible_state(site, s, viewer, request.path_params["id"]))
        if loaded is None or fmt not in ("html", "pdf"):
            return forbidden()
        state, directory, document = loaded
        rendered = await run_in_threadpool(_official, site, state, directory, document, fmt)
        if rendered is None:
            return HTMLResponse(site.text(viewer, "No PDF: the CJK font is missing."), 503)
        if fmt == "pdf":
            return Response(
                rendered,
                media_type="application/pdf",
                headers={"Content-Disposition": f'inline; filename="{document.id}.pdf"'},
            )
        return HTMLResponse(rendered, headers={"Content-Security-Policy": OFFICIAL_CSP})

    return [
        Route("/documents", guard(site, listing), methods=["GET"]),
        Route("/documents/{id}", guard(site, show), methods=["GET"]),
        Route("/documents/{id}/official.{fmt}", guard(site, official), methods=["GET"]),
    ]


def page_replies(kind: str, step_name: str, action: str) -> tuple[Verb, ...]:
    """The replies the page offers at a step of ``kind`` (``PAGE_REPLIES``); () for none."""
    for want_kind, want_name, want_action, verbs in PAGE_REPLIES:
        if (
            want_kind in (None, kind)
            and want_name in (None, step_name)
            and want_action in (None, action)
        ):
            return verbs
    return ()


async def document_page(
    site: Site, request: Request, viewer: Viewer, raw_id: Any, **extra: Any
) -> Response:
    """A document's page for ``viewer`` (403 if they may not see it), with ``extra`` (a notice
    or an error)."""
    loaded = await site.db(lambda s: _load(site, s, viewer, raw_id))
    if loaded is None:
        return forbidden()
    return site.render(request, viewer, "document.html", **loaded, **extra)


def _listed(
    document: Document, viewer: Viewer, seen: set[int], directory: Directory | None
) -> bool:
    """Whether a list shows ``document`` to ``viewer``: ``may_view`` without loading its steps
    (``seen`` holds the documents the viewer is on)."""
    if document.kind == materials.KIND:
        return directory is not None and materials.in_scope(
            document.fields, document.author, viewer.account, directory, state=document.state
        )
    if document.id in seen:
        return True
    if Duty.OFFICE in viewer.duties and document.kind != LEAVE_KIND:
        return True
    if Duty.HR in viewer.duties and document.kind == LEAVE_KIND:
        return True
    if Duty.UNIT_HEAD in viewer.duties and document.unit_id == viewer.unit:
        return True
    return document.kind == "gonggao" and bulletins.may_read(
        document.state,
        document.fields,
        viewer.account,
        in_office=Duty.OFFICE in viewer.duties,
    )


def _find(site: Site, session: Session, viewer: Viewer, query: str) -> tuple[list[Document], bool]:
    seen = index_store.documents_seen_by(session, viewer.account)
    if not query:
        office = Duty.OFFICE in viewer.duties
        docs = recent_documents(
            session,
            every_kind_but=LEAVE_KIND if office else None,
            only_kind=LEAVE_KIND if Duty.HR in viewer.duties else None,
            unit=viewer.unit if Duty.UNIT_HEAD in viewer.duties else None,
            ids=seen,
            limit=MAX_HITS,
        )
        return docs, False
    terms = query_terms(query)
    grams = [g for t in terms for g in t.grams]
    if not grams:
        return [], False
    # Whoever does not see nearly everything (the office) is searched within what they may see.
    pool = None if Duty.OFFICE in viewer.duties else _pool(session, viewer, seen)
    gram = (index_store.rarest_gram(session, grams) if pool is None else None) or grams[0]
    # Newest first: the documents holding the rarest gram, a batch at a time, each batch ranked
    # by SEARCH's own rule (every term, in one field) on its postings alone.
    directory: Directory | None = None
    found: list[Document] = []
    before: int | None = None
    scanned = 0
    while scanned < MAX_CANDIDATES:
        if pool is None:
            ids = index_store.documents_with_gram(session, gram, before=before, limit=BATCH)
        else:
            ids = pool[scanned : scanned + POOL_BATCH]
        if not ids:
            return found, False
        scanned += len(ids)
        before = ids[-1]
        ranked = rank(terms, index_store.postings_in(session, terms, ids))
        ranked.sort(key=lambda r: -r.document_id)
        # A page's worth of hits at a time: their documents, then in one query the texts of
        # those listed whose terms the index alone cannot prove, not a query a hit.
        for at in range(0, len(ranked), MAX_HITS):
            hits = ranked[at : at + MAX_HITS]
            by_id = documents_by_ids(session, [r.document_id for r in hits])
            listed: list[tuple[Ranked, Document]] = []
            for hit in hits:
                document = by_id.get(hit.document_id)
                if document is None:
                    continue
                if document.kind == materials.KIND and directory is None:
                    directory = site.directory(session)
                if _listed(document, viewer, seen, directory):
                    listed.append((hit, document))
            texts = index_store.texts_of(session, [d.id for h, d in listed if h.unchecked])
            for hit, document in listed:
                if hit.unchecked:
                    held = texts.get(document.id, {}).values()
                    if not all(any(contains(t, term) for t in held) for term in hit.unchecked):
                        continue
                found.append(document)
                if len(found) >= MAX_HITS:
                    return found, True
    return found, True


def _pool(session: Session, viewer: Viewer, seen: set[int]) -> list[int]:
    """Every document a person without the office's duty might see, newest first: those they
    are on, their unit's (a head), leave (HR), and the bulletins and materials (whose readers
    their fields name)."""
    kinds = ["gonggao", materials.KIND] + ([LEAVE_KIND] if Duty.HR in viewer.duties else [])
    ids = set(seen) | set(document_ids(session, kinds=kinds))
    if Duty.UNIT_HEAD in viewer.duties:
        ids |= set(document_ids(session, unit=viewer.unit))
    return sorted(ids, reverse=True)


def visible_document(site: Site, session: Session, viewer: Viewer, raw_id: Any) -> Document | None:
    """The document ``raw_id`` if ``viewer`` may see it (``may_view``), else None."""
    found = _visible_state(site, session, viewer, raw_id)
    return found[2] if found is not None else None


def _visible_state(
    site: Site, session: Session, viewer: Viewer, raw_id: Any
) -> tuple[DocumentState, Directory, Document] | None:
    text = str(raw_id)
    if not text.isdigit() or len(text) > 18:
        return None
    document = session.get(Document, int(text))
    if document is None:
        return None
    state = load_state(session, document)
    directory = site.directory(session)
    if not may_view(state, viewer.account, directory, viewer.duties):
        return None
    return state, directory, document


def _load(site: Site, session: Session, viewer: Viewer, raw_id: Any) -> dict[str, Any] | None:
    found = _visible_state(site, session, viewer, raw_id)
    if found is None:
        return None
    state, directory, document = found
    steps = steps_of(session, document.id)
    accounts = (
        {state.author}
        | {e.actor for e in state.trail}
        | {e.on_behalf_of or "" for e in state.trail}
    )
    for s in steps:
        accounts |= {s.assignee, s.on_behalf_of or "", s.done_by or ""}
    names = names_of(session, accounts)
    now = site.now()
    flow = site.ctx.rules.flow(document.kind)
    signed_steps = set(site.ctx.config.signing.require_signature)
    return {
        "document": document,
        "state": state,
        "names": names,
        "unit_name": directory.units[document.unit_id].name
        if document.unit_id in directory.units
        else document.unit_id,
        "stages": stages(steps, flow, names, now),
        "signed_steps": signed_steps,
        "signed": [s for s in steps if s.name in signed_steps and s.state == "done"],
        "official": document.kind == "fawen" and document.number is not None,
        "body": str(document.fields.get("body", "")),
        "attachments": [str(a) for a in document.fields.get("attachments", ())],
        "now": now,
        "is_office": Duty.OFFICE in viewer.duties,
        "waiting": [
            (s.id, s.name, names.get(s.assignee, s.assignee)) for s in steps if s.state == "waiting"
        ],
        "mine": [
            (s, verbs)
            for s in steps
            if s.state == "waiting"
            and s.assignee == viewer.account
            and (verbs := page_replies(document.kind, s.name, s.action))
        ],
        # An objection is open to anyone on a document under way, one at a time (第二十條).
        "may_object": state.state not in (CLOSED, RETURNED)
        and any(s.state == "waiting" for s in steps)
        and objection_waiting(state) is None
        and on_document(state, viewer.account),
    }


def _official(
    site: Site, state: DocumentState, directory: Directory, document: Document, fmt: str
) -> bytes | str | None:
    bureau = directory.units_of_kind("bureau")
    unit = bureau[0].id if bureau else document.unit_id
    seal = site.ctx.keyring.seal(unit) if document.number else None
    official_doc = official_document(
        state,
        directory,
        seal,
        issuing_unit=unit,
        issued_at=document.updated_at or dt.datetime.now(dt.UTC),
        tz=site.tz,
    )
    if fmt == "html":
        return render_official_html(official_doc)
    # ReportLab is loaded by the first PDF asked for, not by the daemon at start (issue 16).
    from yizhan.templates.cjk_fonts import CJKFontMissing
    from yizhan.templates.official_pdf import render_official_pdf

    try:
        return render_official_pdf(official_doc)
    except CJKFontMissing:
        return None
