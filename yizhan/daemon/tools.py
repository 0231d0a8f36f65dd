"""Answers the tools commands at cmd@: IT publishes and removes files, staff list and fetch them.

常用工具下載: the IT department publishes installers, templates and manuals with a description;
``TOOLS`` lists them and ``GET name`` returns one as an attachment, to staff only, only to
their own mailbox and only inside the organisation (第十七條), within ``[tools] max_download``.
Publishing is the IT department's alone; a refusal says why (第十一條; mine rules 一(八):
programs reach staff only this way). The desk calls :meth:`ToolDesk.answer` inside the
processor's transaction and sends what it returns.
"""

from __future__ import annotations

import datetime as dt
import mimetypes
from dataclasses import dataclass
from email.message import EmailMessage

from sqlalchemy.orm import Session

from yizhan.daemon.context import Context
from yizhan.daemon.extract.files import sniff
from yizhan.daemon.extract.message import attached_files
from yizhan.daemon.screening.notices import it_people
from yizhan.mailstore import audit
from yizhan.mailstore import tools as store
from yizhan.routing.content.kinds import TYPES, extension
from yizhan.routing.content.text import size_text
from yizhan.routing.directory import Directory, PersonInfo
from yizhan.routing.tools import (
    ToolAction,
    ToolInfo,
    ToolRequest,
    close_names,
    listing,
    name_problem,
)

__all__ = ["MailFile", "ToolAnswer", "ToolDesk", "content_type_of", "publish_file"]

# Parts of a signed or key-carrying mail that are not the file being published.


@dataclass(frozen=True, kw_only=True)
class MailFile:
    """A file to attach to an answer."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, kw_only=True)
class ToolAnswer:
    """What to answer a tools command with, and where to send it."""

    text: str
    to: str
    attachment: MailFile | None = None


def content_type_of(data: bytes, filename: str) -> str:
    """The MIME type of what ``data`` is, by its magic bytes; the name only where they say
    nothing more precise (an OLE2 file that is an .msi)."""
    sniffed = sniff(data, filename)
    found = TYPES.get(sniffed)
    guessed = None
    if found is not None and found.extensions and sniffed not in ("ole2", "tnef", "unknown"):
        guessed = mimetypes.guess_type(f"file.{found.extensions[0]}", strict=False)[0]
    if guessed is None and extension(filename):
        guessed = mimetypes.guess_type(f"file.{extension(filename)}", strict=False)[0]
    return guessed or "application/octet-stream"


def publish_file(
    session: Session,
    *,
    name: str,
    description: str,
    filename: str,
    data: bytes,
    actor: str,
    now: dt.datetime,
) -> ToolInfo | str:
    """Publish a file as a tool (by mail or at the console); a str says why it cannot be."""
    problem = name_problem(name)
    if problem is not None:
        return problem
    if not data:
        return f"文件「{filename}」是空的。The file {filename!r} is empty."
    if not description.strip():
        return (
            "請在正文寫工具的說明（用途、適用系統、安裝方法）。\n"
            "Write what the tool is for in the body: purpose, systems, how to install."
        )
    return store.publish(
        session,
        name=name,
        description=description.strip(),
        filename=filename or name,
        content_type=content_type_of(data, filename),
        data=data,
        actor=actor,
        now=now,
    )


class ToolDesk:
    """The tools commands for the desk; one instance per daemon."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.domain = ctx.config.domain

    def answer(
        self,
        session: Session,
        request: ToolRequest,
        *,
        account: str,
        address: str,
        msg: EmailMessage,
        directory: Directory,
        now: dt.datetime,
    ) -> ToolAnswer:
        """Carry out ``request`` from the authenticated ``account`` and say how it went."""
        person = directory.people.get(account)
        if person is None or person.state != "active":
            return ToolAnswer(
                text="工具只提供給在冊職工。Tools are for staff in the directory only.",
                to=address,
            )
        # Only to the person's own mailbox: the From address when it is theirs, else their email.
        owner = directory.person_by_address(address, self.domain)
        to = (
            address
            if owner is not None and owner.account == account
            else person.mailbox(self.domain)
        )
        if request.action is ToolAction.LIST:
            return ToolAnswer(text=self._listing(session, request.name), to=to)
        if request.action is ToolAction.GET:
            return self._get(session, request.name, person, to, directory, now)
        if not directory.in_unit_of_kind(person.account, "it"):
            audit.record(
                session,
                at=now,
                actor=account,
                action="refused.tool",
                target=request.name,
                detail={"action": request.action.value},
            )
            unit = directory.units.get(person.unit)
            return ToolAnswer(
                text=f"未受理：只有信息化處可以發布或下架工具，您屬於{unit.name if unit else '-'}。"
                "工作需要的軟件請聯繫信息化處發布。\n"
                "Refused: only the IT department publishes or removes tools. Ask the IT "
                "department to publish the software you need for work.",
                to=to,
            )
        if request.action is ToolAction.ADD:
            return ToolAnswer(text=self._add(session, request, msg, account, now), to=to)
        return ToolAnswer(text=self._remove(session, request.name, account, now), to=to)

    # -- the actions --------------------------------------------------------------------------

    def _get(
        self,
        session: Session,
        name: str,
        person: PersonInfo,
        to: str,
        directory: Directory,
        now: dt.datetime,
    ) -> ToolAnswer:
        if not name:
            text = (
                "請寫要下載的工具名稱，例如：下載 vpn-client\n"
                "Name the tool to download, e.g.: GET vpn-client\n\n"
            )
            return ToolAnswer(text=text + self._listing(session), to=to)
        found = store.fetch(session, name)
        if found is None:
            near = close_names(name, [t.name for t in store.published(session)])
            hint = (
                f"相近的工具 Similar: {'、'.join(near)}\n"
                if near
                else f"發送「工具」到 cmd@{self.domain} 查看全部工具。Send TOOLS for the list.\n"
            )
            return ToolAnswer(
                text=f"沒有名為「{name[:64]}」的工具。No tool is named {name[:64]!r}.\n" + hint,
                to=to,
            )
        tool, data = found
        # 第十七條: the bureau's software and manuals are never given outside. Mail to
        # account@<OA domain> ends in the person's own mailbox, so that is the one that counts.
        mailbox = person.email or to
        if self.ctx.outside_organisation(session, [mailbox]):
            return ToolAnswer(
                text=f"未發送：您的郵箱 {mailbox} 不在本單位的郵件域內，工具不得發往外單位郵箱"
                "（第十七條）。請聯繫信息化處更正您的郵箱。\n"
                f"Not sent: your mailbox {mailbox} is outside the organisation, and the bureau's "
                "software and manuals never leave it (art. 17). Ask the IT department to "
                "correct your mailbox.",
                to=to,
            )
        limit = self.ctx.config.tools.max_download
        if tool.size > limit:
            it = "、".join(p.name for p in it_people(directory))
            return ToolAnswer(
                text=f"工具 {tool.name} 有 {size_text(tool.size)}，超過郵件下載上限 "
                f"{size_text(limit)}，請向信息化處（{it or '-'}）索取。\n"
                f"The tool {tool.name} is {size_text(tool.size)}, over the {size_text(limit)} "
                "that can be sent by mail: ask the IT department for it.",
                to=to,
            )
        audit.record(
            session,
            at=now,
            actor=person.account,
            action="tool.get",
            target=tool.name,
            detail={"version": tool.version, "sha256": tool.sha256, "to": to},
        )
        return ToolAnswer(
            text=f"附件是工具 {tool.name}（第 {tool.version} 版，{size_text(tool.size)}）。\n"
            f"Attached is the tool {tool.name} (version {tool.version}, "
            f"{size_text(tool.size)}).\n\n{tool.description}\n\n"
            f"SHA-256: {tool.sha256}",
            to=to,
            attachment=MailFile(filename=tool.filename, content_type=tool.content_type, data=data),
        )

    def _add(
        self,
        session: Session,
        request: ToolRequest,
        msg: EmailMessage,
        account: str,
        now: dt.datetime,
    ) -> str:
        files = attached_files(msg)
        if len(files) != 1:
            return (
                f"請附上且只附上一個要發布的文件（這封郵件有 {len(files)} 個附件）。\n"
                f"Attach exactly one file to publish (this mail has {len(files)}).\n"
                "例 e.g.: 主題 Subject: 工具 發布 vpn-client；正文 body: 說明 description；"
                "附件 attachment: the file."
            )
        part = files[0]
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        result = publish_file(
            session,
            name=request.name,
            description=request.description,
            filename=part.get_filename() or request.name,
            data=data,
            actor=account,
            now=now,
        )
        if isinstance(result, str):
            return result
        replaced = f"，替換第 {result.version - 1} 版" if result.version > 1 else ""
        replaced_en = f", replacing version {result.version - 1}" if result.version > 1 else ""
        limit = self.ctx.config.tools.max_download
        warning = (
            f"\n注意：超過郵件下載上限 {size_text(limit)}，同事下載時會被告知向信息化處索取。\n"
            f"Note: over the {size_text(limit)} that GET sends; staff will be told to ask IT."
            if result.size > limit
            else ""
        )
        return (
            f"已發布工具 {result.name}（第 {result.version} 版{replaced}）："
            f"{result.filename}，{size_text(result.size)}，{result.content_type}。\n"
            f"Published the tool {result.name} (version {result.version}{replaced_en}): "
            f"{result.filename}, {size_text(result.size)}, {result.content_type}.\n"
            f"SHA-256: {result.sha256}\n"
            f"同事發送「下載 {result.name}」到 cmd@{self.domain} 即可取得。"
            f"Staff send GET {result.name} to cmd@{self.domain}.{warning}"
        )

    def _remove(self, session: Session, name: str, account: str, now: dt.datetime) -> str:
        problem = name_problem(name)
        if problem is not None:
            return problem
        removed = store.remove(session, name, actor=account, now=now)
        if removed is None:
            near = close_names(name, [t.name for t in store.published(session)])
            hint = f"\n相近的工具 Similar: {'、'.join(near)}" if near else ""
            return f"沒有已發布的工具「{name}」。No published tool is named {name!r}.{hint}"
        return (
            f"已下架工具 {removed.name}（第 {removed.version} 版）。\n"
            f"The tool {removed.name} (version {removed.version}) is taken down."
        )

    # -- helpers ------------------------------------------------------------------------------

    def _listing(self, session: Session, wanted: str = "") -> str:
        return listing(
            store.published(session), domain=self.domain, tz=self.ctx.config.tzinfo, wanted=wanted
        )
