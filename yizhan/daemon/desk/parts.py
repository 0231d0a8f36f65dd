"""The parts of the desk that every request's handler shares; built once per daemon."""

from __future__ import annotations

from yizhan.daemon.context import Context
from yizhan.daemon.desk.mailer import Mailer
from yizhan.daemon.desk.search import Finder
from yizhan.daemon.desk.tools import ToolDesk
from yizhan.routing.calendar import WorkCalendar
from yizhan.routing.rules import Rules

__all__ = ["Desk"]


class Desk:
    """The daemon's context, the mailer, the search index, the tools and the working calendar.

    Handlers reach them through their request (``request.desk``); ``yizhan search reindex``
    builds one for the index alone.
    """

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.calendar: WorkCalendar = ctx.config.work_calendar()
        self.mailer = Mailer(ctx)
        self.finder = Finder(ctx)
        self.tools = ToolDesk(ctx)

    @property
    def rules(self) -> Rules:
        """The workflow rules in force (``<data_dir>/rules.toml`` over the built-in ones)."""
        return self.ctx.rules

    @property
    def domain(self) -> str:
        """The OA domain."""
        return self.ctx.config.domain
