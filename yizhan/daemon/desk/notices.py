"""Sends the notices of an applied decision: each person asked to act, told, or given the
document, with its trail, its files and, after a SEAL, its sealed official form.

A notice that asks someone to act carries ``Reply-To: r+TOKEN@`` naming the document, the
step and the person. After the custodian's signed SEAL (第十八條) the distribution is signed by
the unit's seal key and the system key and carries the official form of GB/T 9704-2012 as
HTML and PDF, signed once and stored once for all its readers (issue 4).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Final

from yizhan import crashpoints
from yizhan.daemon.desk.files import document_files
from yizhan.daemon.desk.mailer import Distribution, MailFile
from yizhan.daemon.desk.request import Request
from yizhan.mailstore.models import Document, Step
from yizhan.routing.directory import Directory
from yizhan.routing.documents import Decision, DocumentState, Notice
from yizhan.routing.tokens import make_token
from yizhan.signing.keyring import SealInfo, SignerSpec
from yizhan.signing.pgpmime import Verification
from yizhan.templates.official import official_document
from yizhan.templates.official_html import render_official_html
from yizhan.templates.presentation import trail_lines

__all__ = ["send_notices"]

log = logging.getLogger("yizhan.desk.notices")

#: Notices that bring a document to someone who has not seen it, or ask them to act on it:
#: they carry the document's files (``desk.files``). Replies to the author and outcomes do not.
_WITH_FILES: Final = frozenset({"step_request", "distributed", "supervision"})

#: How each notice is labelled in its subject: (Chinese, English).
_LABELS: Final = {
    "step_request": ("請辦理", "Action requested"),
    "distributed": ("公文分發", "Document distributed"),
    "instruction": ("領導批示", "Instruction"),
    "rejected": ("已退回", "Returned"),
    "approved": ("已同意", "Approved"),
    "result": ("辦理結果", "Result"),
    "closed": ("已辦結", "Closed"),
    "comment": ("意見", "Comment"),
    "withdrawn": ("已撤回", "Withdrawn"),
    "published": ("已發布", "Published"),
    "reply": ("回覆", "Reply"),
    "supervision": ("督辦", "Supervision"),
    "progress": ("辦理進展", "Progress"),
    "part_done": ("請確認辦結", "Confirm completion"),
    "reassigned": ("已轉辦", "Reassigned"),
    "cancelled": ("已撤銷", "Cancelled"),
    "extended": ("期限已延長", "Deadline extended"),
    "receipt_refused": ("簽收退回", "Receipt refused"),
    "objection": ("異議待裁決", "Objection to decide"),
    "objection_upheld": ("異議已支持", "Objection upheld"),
    "objection_overruled": ("異議已駁回", "Objection overruled"),
}


@dataclass(frozen=True, kw_only=True)
class _Official:
    """The sealed document in its official form, made once per distribution."""

    html: str
    pdf: MailFile | None
    distribution: Distribution


def send_notices(
    request: Request,
    document: Document,
    state: DocumentState,
    decision: Decision,
    opened: Sequence[Step],
    *,
    sealed_by: Verification | None = None,
) -> None:
    """Send each of ``decision``'s notices about ``state``; ``opened`` are the steps it opened,
    in ``decision.open_steps`` order; ``sealed_by`` is the SEAL that applied the seal."""
    files: list[EmailMessage] = []
    if any(n.template in _WITH_FILES for n in decision.notices):
        files = document_files(request.session, request.ctx.raw, document)
    with _signers(request, sealed_by) as (signers, seal_unit):
        official = None
        if seal_unit is not None and any(n.template == "distributed" for n in decision.notices):
            official = _official_copy(request, state, seal_unit)
        for n, notice in enumerate(decision.notices):
            step = opened[notice.step_index] if notice.step_index is not None else None
            _send(
                request,
                n,
                state,
                notice,
                step,
                signers=signers,
                official=official if notice.template == "distributed" else None,
                files=files if notice.template in _WITH_FILES else (),
            )
        if official is not None and request.mailer.queue_distribution(
            request.session, official.distribution, now=request.now
        ):
            # The crash suite's "seal" point: the seal applied, the clerks' sealed copies
            # queued, the transaction not committed.
            crashpoints.reached("seal")


def _send(
    request: Request,
    n: int,
    state: DocumentState,
    notice: Notice,
    step: Step | None,
    *,
    signers: Sequence[SignerSpec],
    official: _Official | None,
    files: Sequence[EmailMessage],
) -> None:
    directory, config = request.directory, request.ctx.config
    person = directory.people.get(notice.to)
    if person is None:
        return
    language, on_behalf_of = person.language or config.language, notice.on_behalf_of
    if official is not None:
        # A sealed document is signed once for all its recipients (issue 4): its body may
        # not vary by reader, so it is in the bureau's language and names no delegate.
        language, on_behalf_of = config.language, None
    headers = request.mailer.document_headers(state, step, notice.action)
    if step is not None and notice.action != "none":
        token = make_token(
            config.secret, document_id=state.id or 0, step_id=step.id, account=person.account
        )
        headers["Reply-To"] = f"r+{token}@{config.domain}"
    deadline = (
        step.due_at.astimezone(config.tzinfo).strftime("%Y-%m-%d %H:%M")
        if step is not None and step.due_at
        else ""
    )
    zh, en = _LABELS.get(notice.template, (notice.template, notice.template))
    delegator = directory.people.get(on_behalf_of or "")
    attachments: list[EmailMessage | MailFile] = []
    if official is not None and official.pdf is not None:
        attachments.append(official.pdf)
    attachments.extend(files)
    variables = {
        "label": zh if language != "en" else en,
        "doc": state,
        "action": notice.action,
        "step": step,
        "on_behalf_of": delegator.name if delegator else None,
        "variables": notice.variables,
        "trail": trail_lines(state, directory, config.tzinfo, language),
        "deadline": deadline,
        "files": [f.get_filename() or "" for f in files],
    }
    source = f"{request.key}:doc:{state.id}:{n}"
    if official is None:
        request.mailer.send(
            request.session,
            source=source,
            to=person,
            template="document.txt",
            language=language,
            headers=headers,
            document_id=state.id,
            attachments=attachments,
            signers=signers,
            now=request.now,
            variables=variables,
        )
        return
    # Kept with the distribution and queued with the other readers' copies at once
    # (send_notices); the body is rendered and signed for the first reader only.
    request.mailer.distribute(
        request.session,
        source=source,
        to=person,
        template="document.txt",
        language=language,
        headers=headers,
        document_id=state.id,
        html=official.html,
        attachments=attachments,
        signers=signers,
        distribution=official.distribution,
        # What the body is made of besides the document: the same for every reader of one
        # kind of notice, so they all share one signed, stored body.
        body_key=(
            notice.template,
            notice.action,
            step.name if step else "",
            deadline,
            repr(notice.variables),
        ),
        now=request.now,
        variables=variables,
    )


def _official_copy(request: Request, state: DocumentState, seal_unit: str) -> _Official:
    """The sealed document in GB/T 9704 form, as HTML and PDF, made once per distribution."""
    config = request.ctx.config
    seal = request.ctx.keyring.seal(seal_unit)
    document = official_document(
        state,
        request.directory,
        seal,
        issuing_unit=seal_unit,
        issued_at=request.now,
        tz=config.tzinfo,
    )
    # ReportLab (and Pillow under it, ~11 MiB) is loaded by the first sealed document, not by
    # every processing worker at start (issue 16).
    from yizhan.templates.cjk_fonts import CJKFontMissing
    from yizhan.templates.official_pdf import render_official_pdf

    pdf = None
    try:
        pdf = MailFile(
            filename=f"{document.number or state.id}.pdf",
            content_type="application/pdf",
            data=render_official_pdf(document),
        )
    except CJKFontMissing as exc:
        # The HTML copy still carries the whole document; the admin is told in the log.
        log.error("doc %s: no PDF: %s", state.id, exc)
    return _Official(html=render_official_html(document), pdf=pdf, distribution=Distribution())


@contextlib.contextmanager
def _signers(
    request: Request, sealed_by: Verification | None
) -> Iterator[tuple[list[SignerSpec], str | None]]:
    """Who signs the mail of a decision: the system key, and the seal after a SEAL.

    The seal is the unit's whose custodian signed the SEAL, else the bureau's; its key is
    usable only inside this block (第十八條; docs/seals.md).
    """
    keyring = request.ctx.keyring
    system = keyring.system_signer()
    if sealed_by is None:
        yield [system], None
        return
    unit = _seal_unit(request.directory, keyring.list_seals(), sealed_by.account)
    with keyring.seal_signer(unit, authorised_by=sealed_by) as seal:
        yield [seal, system], unit


def _seal_unit(directory: Directory, seals: Sequence[SealInfo], custodian: str | None) -> str:
    units = [s.unit for s in seals if s.state == "active" and s.custodian == custodian]
    bureau = [u.id for u in directory.units_of_kind("bureau")]
    return (units or bureau)[0]
