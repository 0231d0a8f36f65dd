"""內部資料 at ziliao@ (第十七條): files materials, finds them, hands them out.

A mail with a title, a 範圍/Scope line and attachments is filed as a document of kind
``ziliao``: at once when the filer heads their unit, else after their unit head approves it
(mine rules 一(六); the ``ziliao`` flow of ``routing.rules``); SEARCH words, a list (目錄 /
LIST, or SEARCH alone) and GET id answer the people in
a material's scope (``routing.materials``). Everything this module sends goes to the asker's
own address (``PersonInfo.mailbox``), never to the From of the request; and nothing of the
library goes to a person whose mail is delivered outside the organisation: that is refused,
and reported to the IT department (第十七條).
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import select

from yizhan.daemon.desk.copies import record_refused, refuse_outside, send_copy
from yizhan.daemon.desk.request import Outcome, Request
from yizhan.daemon.desk.search import Found, Hit
from yizhan.daemon.extract.message import attached_files
from yizhan.mailstore.documents import apply_decision, create_document, document_by_id
from yizhan.mailstore.models import Document
from yizhan.routing import materials, workflow
from yizhan.routing.bulletins import parse_scope
from yizhan.routing.documents import Decision
from yizhan.routing.drafts import parse_draft
from yizhan.routing.effects import Effect
from yizhan.routing.materials import RequestKind

__all__ = ["MAX_LISTED", "Ziliao", "library_help"]

#: Materials listed by 目錄 / LIST, newest first.
MAX_LISTED: Final = 50


def library_help(domain: str) -> str:
    """What ziliao@ does, in Chinese and English."""
    return (
        f"內部資料庫 ziliao@{domain}（第十七條）\n"
        "歸檔：郵件主題寫資料名稱，正文第一行寫「範圍：單位、角色或人員」，空一行後寫說明，附上文件。\n"
        "搜索 詞語 — 查找您範圍內的資料；目錄 — 列出資料；下載 編號 — 取回資料及附件。\n"
        "內部資料只發到您在本單位的郵箱，嚴禁提供給外單位。\n\n"
        f"Internal materials at ziliao@{domain} (art. 17)\n"
        "File: the subject is the title, the body opens with 'Scope: units, roles or people', "
        "a blank line, a description; attach the files.\n"
        "SEARCH words — find materials in your scope; LIST — list them; GET id — fetch one "
        "with its files.\nMaterials go only to your mailbox in the organisation, never outside."
    )


class Ziliao:
    """The library of internal materials (see the module docstring); a ``Module``."""

    name = materials.KIND
    help = "內部資料 internal materials (範圍 + 附件)；搜索 / 目錄 / 下載 id"
    own_help = True
    effects: tuple[type[Effect], ...] = ()
    jobs: tuple[str, ...] = ()

    def receive(self, request: Request) -> Outcome | None:
        """File the mail, or answer its SEARCH, list, GET or HELP."""
        person = request.person
        assert person is not None
        desk = request.desk
        # Every answer goes to the person's own address (第十七條), whatever From says.
        own = person.mailbox(desk.domain)
        asked = materials.parse_request(
            request.command, has_attachments=bool(attached_files(request.msg))
        )
        if asked.kind is RequestKind.FILE:
            return self._file(request, own)
        if asked.kind is RequestKind.HELP or asked.problem:
            request.reply(asked.problem or library_help(desk.domain), to=own)
            return None
        refusal = materials.outside_refusal(
            person, desk.domain, desk.finder.domains(request.directory)
        )
        if refusal is not None:
            refuse_outside(request, person, refusal)
            return None
        if asked.kind is RequestKind.SEARCH:
            found = desk.finder.find(
                request.session,
                person.account,
                asked.words,
                request.directory,
                kinds=(materials.KIND,),
            )
            request.reply(desk.finder.results_text(found, asked.words, person), to=own)
        elif asked.kind is RequestKind.LIST:
            text = desk.finder.results_text(self._listing(request), "", person, listing=True)
            request.reply(text, to=own)
        else:
            assert asked.material_id is not None
            self._get(request, asked.material_id, own)
        return None

    def apply_effect(
        self, request: Request, document: Document, effect: Effect, *, key: str, actor: str
    ) -> None:
        """See ``Module``: a material is filed at once and has no effects."""
        raise TypeError(f"{self.name} carries out no {type(effect).__name__}")

    def _file(self, request: Request, own: str) -> Outcome | None:
        account = request.account
        assert account is not None
        domain = request.desk.domain
        draft = parse_draft(request.subject, request.body)
        if draft.problems:
            request.reply("\n".join(draft.problems), to=own)
            return None
        names = [p.get_filename() or "" for p in attached_files(request.msg)]
        decision = materials.file_material(
            title=draft.title,
            author=account,
            scope=parse_scope(draft.scope, request.directory),
            body=draft.body,
            attachments=names,
            now=request.now,
        )
        if not decision.accepted:
            request.reply(f"{decision.reply}\n\n{library_help(domain)}", to=own)
            return None
        author = request.directory.people[account]
        heads = [p for p in request.directory.members(author.unit, "unit_head") if p != author]
        if heads and "unit_head" not in author.roles:
            return self._to_review(request, draft.title, decision)
        document = create_document(
            request.session,
            kind=materials.KIND,
            title=draft.title,
            author=account,
            unit=author.unit,
            urgency=None,
            fields={"inbound": request.inbound_id},
            source_inbound=request.inbound_id,
            now=request.now,
        )
        apply_decision(
            request.session, document, decision, actor=account, on_behalf_of=None, now=request.now
        )
        request.desk.finder.index(request.session, document)
        scope = materials.scope_text(document.fields, request.directory)
        request.reply(
            f"已歸檔內部資料 #{document.id}「{document.title}」，附件 {len(names)} 個，"
            f"使用範圍：{scope}。範圍內人員可向 ziliao@{domain} "
            f"發送「下載 {document.id}」取回。\n"
            f'Filed internal material #{document.id} "{document.title}" with {len(names)} '
            f"file(s), for: {scope}. People in scope fetch it with GET {document.id} to "
            f"ziliao@{domain}.",
            to=own,
        )
        return None

    def _to_review(self, request: Request, title: str, filed: Decision) -> Outcome | None:
        """Open the material for its filer's unit head to review (mine rules 一(六)): nobody
        else finds it until approved; the head gets it with its files, the filer is told."""
        account = request.account
        assert account is not None
        desk = request.desk
        decision = workflow.open_document(
            kind=materials.KIND,
            title=title,
            author=account,
            urgency=None,
            to_units=(),
            scope_units=[str(u) for u in filed.fields.get("scope_units", ())],
            fields={**filed.fields, "inbound": request.inbound_id},
            directory=request.directory,
            rules=desk.rules,
            now=request.now,
            due=desk.calendar.due,
        )
        if not decision.accepted:
            request.reply(
                decision.reply, to=request.person.mailbox(desk.domain) if request.person else None
            )
            return None
        document = create_document(
            request.session,
            kind=materials.KIND,
            title=title,
            author=account,
            unit=request.directory.people[account].unit,
            urgency=None,
            fields={},
            source_inbound=request.inbound_id,
            now=request.now,
        )
        return Outcome(document=document, decision=decision, actor=account)

    def _listing(self, request: Request) -> Found:
        """The newest materials the asker may see."""
        person = request.person
        assert person is not None
        rows = request.session.scalars(
            select(Document).where(Document.kind == materials.KIND).order_by(Document.id.desc())
        )
        hits: list[Hit] = []
        for document in rows:
            if materials.in_scope(
                document.fields,
                document.author,
                person.account,
                request.directory,
                state=document.state,
            ):
                if len(hits) == MAX_LISTED:
                    return Found(hits=tuple(hits), more=True)
                hits.append(request.desk.finder.hit(document, {}, person))
        return Found(hits=tuple(hits), more=False)

    def _get(self, request: Request, material_id: int, own: str) -> None:
        account = request.account
        assert account is not None
        document = document_by_id(request.session, material_id)
        if document is None or document.kind != materials.KIND:
            request.reply(_no_material(material_id), to=own)
            return
        if not materials.in_scope(
            document.fields, document.author, account, request.directory, state=document.state
        ):
            record_refused(request, document, account)
            # The same words as for a material that does not exist: no list of ids by asking.
            request.reply(_no_material(material_id), to=own)
            return
        send_copy(request, document)


def _no_material(material_id: int) -> str:
    return (
        f"資料庫中沒有您可取回的資料 #{material_id}（沒有這個編號，或不在您的使用範圍內）。"
        "發送「目錄」可列出您可用的資料。\n"
        f"There is no material #{material_id} that you may use (none with that id, or not in "
        "your scope). Send LIST for the materials you may use."
    )
