"""信息宣傳 at xinxi@: news items for publication (第二條; mine rules 一(六)).

A unit's item goes to its head, then to the office, which may edit it (``routing.publicity``);
once approved it goes, as the office left it, to everyone who subscribed with ``SET xinxi
on``. 統計 年份 / STATUS year counts each unit's published items.
"""

from __future__ import annotations

import datetime as dt

from yizhan.daemon.desk.files import document_files
from yizhan.daemon.desk.modules.base import DocumentModule
from yizhan.daemon.desk.request import Outcome, Request
from yizhan.mailstore import publicity as publicity_store
from yizhan.mailstore.models import Document
from yizhan.routing import publicity
from yizhan.routing.effects import Effect, PublishNews

__all__ = ["Xinxi"]


class Xinxi(DocumentModule):
    """See the module docstring."""

    name = "xinxi"
    help = "信息宣傳 news for publication；統計 年份 / STATUS year 各單位發布數"
    effects = (PublishNews,)

    def command(self, request: Request) -> Outcome | bool:
        """統計 [year] / STATUS [year]: each unit's published items in the year."""
        count = publicity.parse_count_request(request.command)
        if count is None:
            return False
        tz = request.ctx.config.tzinfo
        year = count.year or request.now.astimezone(tz).year
        year_end = dt.datetime(year + 1, 1, 1, tzinfo=tz)
        counts = publicity.yearly_counts(
            publicity_store.published_items(request.session, before=year_end), year, tz
        )
        request.reply(publicity.count_report(counts, year, request.directory))
        return True

    def apply_effect(
        self, request: Request, document: Document, effect: Effect, *, key: str, actor: str
    ) -> None:
        """Send the item, as the office approved (and maybe edited) it, to every subscriber."""
        if not isinstance(effect, PublishNews):
            super().apply_effect(request, document, effect, key=key, actor=actor)
            return
        session, directory, mailer = request.session, request.directory, request.mailer
        people = [
            directory.people[a]
            for a in publicity_store.subscribers(session)
            if a in directory.people and directory.people[a].state == "active"
        ]
        document.fields = {
            **document.fields,
            "published_at": request.now.isoformat(),
            "recipients": [p.account for p in people],
        }
        headers = mailer.news_headers(document)
        author = directory.people.get(document.author)
        unit = directory.units.get(document.unit_id)
        attachments = document_files(session, request.ctx.raw, document)
        local = request.now.astimezone(request.ctx.config.tzinfo)
        for person in people:
            mailer.send(
                session,
                source=f"{key}:news:{person.account}",
                to=person,
                template="news.txt",
                sender=mailer.sender("xinxi", "信息宣傳"),
                headers=headers,
                document_id=document.id,
                attachments=attachments,
                variables={
                    "title": document.title,
                    "body": effect.body,
                    "author": author.name if author else document.author,
                    "unit": unit.name if unit else document.unit_id,
                    "date": f"{local:%Y-%m-%d}",
                    "id": document.id,
                    "domain": request.desk.domain,
                },
            )
