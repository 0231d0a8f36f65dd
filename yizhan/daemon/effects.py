"""Carries out the effect records of a decision (``routing.effects``) in the caller's transaction.

The engine names what must happen when a module's flow ends; this writes it to the store and
queues the mail it causes: a published bulletin to everyone in scope and its withdrawal
(第二十三條), a leave into HR's book with word to HR and a prompt to delegate (第六條, 第九條),
a change to the directory with word to IT and, when a clerk changes, to the office (第十條), a
news item to its subscribers (信息宣傳, 第二條).
Every mail is keyed by the inbound message, so processing it again queues nothing twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from yizhan.daemon.context import Context
from yizhan.daemon.files import attach_files, document_files
from yizhan.mailstore.changes import apply_change
from yizhan.mailstore.leave import record_leave
from yizhan.mailstore.models import DelegationRow, Document
from yizhan.mailstore.publicity import subscribers
from yizhan.routing.bulletins import audience
from yizhan.routing.changes import Change
from yizhan.routing.directory import Directory, PersonInfo
from yizhan.routing.effects import (
    ApplyDirectoryChange,
    Effect,
    PublishBulletin,
    PublishNews,
    RecordLeave,
    WithdrawBulletin,
)
from yizhan.routing.leave import LEAVE_TYPES
from yizhan.templates.render import render_mail

log = logging.getLogger("yizhan.effects")

_CHANGE_WORDS = {
    "add": "新增",
    "special": "專用帳號",
    "move": "調動",
    "remove": "撤銷",
    "role": "角色變更",
}


class Effects:
    """Applies effect records; one instance per daemon."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.domain = ctx.config.domain

    def apply(
        self,
        session: Session,
        *,
        key: str,
        document: Document,
        effect: Effect,
        actor: str,
        directory: Directory,
        now: dt.datetime,
    ) -> None:
        """Carry out ``effect`` for ``document``; ``key`` names the inbound message and effect."""
        log.info("%s: %s for doc %s", key, type(effect).__name__, document.id)
        if isinstance(effect, PublishBulletin):
            self._publish(session, key, document, effect, directory, now)
        elif isinstance(effect, WithdrawBulletin):
            self._withdraw(session, key, document, effect, directory, now)
        elif isinstance(effect, RecordLeave):
            self._record_leave(session, key, document, effect, actor, directory, now)
        elif isinstance(effect, ApplyDirectoryChange):
            self._change(session, key, document, effect, actor, directory, now)
        elif isinstance(effect, PublishNews):
            self._publish_news(session, key, document, effect, directory, now)

    # -- bulletins (第二十三條) -----------------------------------------------------------------

    def _bulletin_headers(self, document: Document, state: str) -> dict[str, str]:
        # List-Id lets mail filters sort bulletins into a folder; there is deliberately no
        # List-Unsubscribe: a bulletin in scope is part of the work (第二十三條).
        headers = {
            "List-Id": f"公告板 <gonggao.{self.domain}>",
            "X-Yizhan-Doc": str(document.id),
            "X-Yizhan-Kind": "gonggao",
            "X-Yizhan-State": state,
            "X-Yizhan-Step": "-",
            "X-Yizhan-Action": "none",
            "Precedence": "list",
        }
        expires = document.fields.get("expires")
        if expires:
            end = dt.datetime.combine(
                dt.date.fromisoformat(expires), dt.time(23, 59), tzinfo=self.ctx.config.tzinfo
            )
            headers["Expires"] = format_datetime(end)
        if document.fields.get("important"):
            headers["X-Yizhan-Importance"] = "high"
        return headers

    def _publish(
        self,
        session: Session,
        key: str,
        document: Document,
        effect: PublishBulletin,
        directory: Directory,
        now: dt.datetime,
    ) -> None:
        people = audience(directory, effect.units, effect.roles, effect.people)
        document.fields = {
            **document.fields,
            "published_at": now.isoformat(),
            "recipients": [p.account for p in people],
        }
        author = directory.people.get(document.author)
        unit = directory.units.get(document.unit_id)
        local = now.astimezone(self.ctx.config.tzinfo)
        attachments = document_files(session, self.ctx.raw, document)
        for person in people:
            self._send(
                session,
                f"{key}:bulletin:{person.account}",
                person,
                "bulletin.txt",
                self._bulletin_headers(document, "published"),
                document,
                sender=formataddr(("公告板", f"gonggao@{self.domain}")),
                attachments=attachments,
                title=document.title,
                body=document.fields.get("body", ""),
                important=bool(document.fields.get("important")),
                author=author.name if author else document.author,
                unit=unit.name if unit else document.unit_id,
                date=f"{local:%Y-%m-%d}",
                expires=effect.expires,
                id=document.id,
            )

    def _withdraw(
        self,
        session: Session,
        key: str,
        document: Document,
        effect: WithdrawBulletin,
        directory: Directory,
        now: dt.datetime,
    ) -> None:
        author = directory.people.get(document.author)
        for account in document.fields.get("recipients", []):
            person = directory.people.get(account)
            if person is None:
                continue
            self._send(
                session,
                f"{key}:withdrawn:{account}",
                person,
                "bulletin_withdrawn.txt",
                self._bulletin_headers(document, "withdrawn"),
                document,
                sender=formataddr(("公告板", f"gonggao@{self.domain}")),
                title=document.title,
                author=author.name if author else document.author,
                id=document.id,
                reason=effect.reason,
            )

    # -- leave (第六條, 第九條) -----------------------------------------------------------------

    def _record_leave(
        self,
        session: Session,
        key: str,
        document: Document,
        effect: RecordLeave,
        actor: str,
        directory: Directory,
        now: dt.datetime,
    ) -> None:
        row = record_leave(session, effect, document_id=document.id, actor=actor, now=now)
        person = directory.people[effect.account]
        unit = directory.units.get(person.unit)
        labels = LEAVE_TYPES.get(effect.leave_type, (effect.leave_type,) * 3)
        # 第六條: HR runs the leave module, so HR hears of every recorded leave.
        hr = [
            p
            for u in directory.units_of_kind("hr")
            for r in ("clerk", "unit_head")
            for p in directory.members(u.id, r)
        ]
        for n, officer in enumerate({p.account: p for p in hr}.values()):
            self._send(
                session,
                f"{key}:hr:{n}",
                officer,
                "leave_recorded.txt",
                {"X-Yizhan-Doc": str(document.id), "X-Yizhan-Kind": "xiujia"},
                document,
                name=person.name,
                account=person.account,
                unit=unit.name if unit else person.unit,
                type=labels[2] if officer.language == "en" else labels[0],
                start=effect.start.isoformat(),
                end=effect.end.isoformat(),
                days=effect.days,
                record=row.id,
                doc=document.id,
            )
        # 第九條: whoever leaves names a delegate first; prompt anyone without one.
        until = dt.datetime.combine(effect.end, dt.time(0, 0), tzinfo=self.ctx.config.tzinfo)
        covered = session.scalars(
            select(DelegationRow).where(
                DelegationRow.delegator == effect.account,
                DelegationRow.ended_at.is_(None),
                DelegationRow.until >= until,
            )
        ).first()
        if covered is None:
            self._send(
                session,
                f"{key}:delegate",
                person,
                "leave_delegation.txt",
                {"X-Yizhan-Doc": str(document.id), "X-Yizhan-Kind": "xiujia"},
                document,
                start=effect.start.isoformat(),
                end=effect.end.isoformat(),
            )

    # -- change requests (第十條; mine rules 一(二)–(三), 一(七)) --------------------------------

    def _change(
        self,
        session: Session,
        key: str,
        document: Document,
        effect: ApplyDirectoryChange,
        actor: str,
        directory: Directory,
        now: dt.datetime,
    ) -> None:
        change = Change.from_fields(effect.change)
        apply_change(session, change, document_id=document.id, actor=actor, now=now)
        clerk = bool(document.fields.get("clerk_change"))
        told = [
            p for u in directory.units_of_kind("it") for p in directory.members(u.id, "unit_head")
        ]
        if clerk:
            # 第十條: 綜合人員發生變動時 … 必須同時報局辦公室備案.
            told += [
                p
                for u in directory.units_of_kind("office")
                for r in ("unit_head", "clerk")
                for p in directory.members(u.id, r)
            ]
        requester = directory.people.get(document.author)
        unit = directory.units.get(change.unit)
        for n, person in enumerate({p.account: p for p in told}.values()):
            self._send(
                session,
                f"{key}:change:{n}",
                person,
                "directory_changed.txt",
                {"X-Yizhan-Doc": str(document.id), "X-Yizhan-Kind": "biangeng"},
                document,
                doc=document.id,
                requester=requester.name if requester else document.author,
                what=_CHANGE_WORDS.get(change.action, change.action),
                name=change.name,
                account=change.account,
                unit=unit.name if unit else change.unit,
                roles=", ".join(change.roles) or "-",
                created=change.action in ("add", "special"),
                responsible=change.responsible,
                clerk=clerk,
            )

    # -- news items (信息宣傳, 第二條; mine rules 一(六)) ------------------------------------

    def _publish_news(
        self,
        session: Session,
        key: str,
        document: Document,
        effect: PublishNews,
        directory: Directory,
        now: dt.datetime,
    ) -> None:
        """Send the item, as the office approved (and maybe edited) it, to every subscriber."""
        people = [
            directory.people[a]
            for a in subscribers(session)
            if a in directory.people and directory.people[a].state == "active"
        ]
        document.fields = {
            **document.fields,
            "published_at": now.isoformat(),
            "recipients": [p.account for p in people],
        }
        # Subscribers opt in, so unlike a bulletin the item says how to opt out (RFC 2369).
        headers = {
            "List-Id": f"信息宣傳 <xinxi.{self.domain}>",
            "List-Unsubscribe": f"<mailto:cmd@{self.domain}?subject=SET%20xinxi%20off>",
            "Precedence": "list",
            "X-Yizhan-Doc": str(document.id),
            "X-Yizhan-Kind": "xinxi",
            "X-Yizhan-State": "published",
            "X-Yizhan-Step": "-",
            "X-Yizhan-Action": "none",
            "X-Yizhan-Unit": document.unit_id,
        }
        author = directory.people.get(document.author)
        unit = directory.units.get(document.unit_id)
        attachments = document_files(session, self.ctx.raw, document)
        local = now.astimezone(self.ctx.config.tzinfo)
        for person in people:
            self._send(
                session,
                f"{key}:news:{person.account}",
                person,
                "news.txt",
                headers,
                document,
                sender=formataddr(("信息宣傳", f"xinxi@{self.domain}")),
                attachments=attachments,
                title=document.title,
                body=effect.body,
                author=author.name if author else document.author,
                unit=unit.name if unit else document.unit_id,
                date=f"{local:%Y-%m-%d}",
                id=document.id,
                domain=self.domain,
            )

    # -- mail ---------------------------------------------------------------------------------

    def _send(
        self,
        session: Session,
        source: str,
        person: PersonInfo,
        template: str,
        headers: dict[str, str],
        document: Document,
        *,
        sender: str | None = None,
        attachments: Sequence[EmailMessage] = (),
        **variables: Any,
    ) -> None:
        address = person.mailbox(self.domain)
        mail = render_mail(
            template,
            person.language,
            sender=sender or formataddr(("驛站", f"cmd@{self.domain}")),
            to=formataddr((person.name, address)),
            headers=headers,
            **variables,
        )
        attach_files(mail, attachments)
        self.ctx.queue(
            session,
            source=source,
            message=self.ctx.sign(mail),
            rcpts=[address],
            now=self.ctx.clock(),
            document_id=document.id,
        )
