"""收文 at shouwen@: incoming documents (第二十一條).

A document received from outside is registered with a number, the office proposes how to
handle it (擬辦), a leader instructs (批示) naming the handling units, and each reports DONE.
The flow is data (``routing.rules``). Only a unit's clerk (文書) or the office registers an
incoming document (第二十一條: 收文由辦公室或各單位綜合人員登記).
"""

from __future__ import annotations

import datetime as dt

from yizhan.daemon.desk.modules.base import DocumentModule, Prepared
from yizhan.daemon.desk.request import Request
from yizhan.routing.drafts import Draft

__all__ = ["Shouwen"]


class Shouwen(DocumentModule):
    """See the module docstring."""

    name = "shouwen"
    help = "收文 incoming document"

    def prepare(self, request: Request, draft: Draft, today: dt.date) -> Prepared | str:
        """Refuse a registration by someone who is neither a clerk nor in the office."""
        person = request.person
        if person is not None and (
            "clerk" in person.roles or request.directory.in_unit_of_kind(person.account, "office")
        ):
            return Prepared()
        return (
            "收文只能由辦公室或各單位綜合人員登記（第二十一條）。請把來文交給本單位綜合人員，"
            "由他發到 shouwen@。\n"
            "Incoming documents are registered by the office or a unit's clerk (art. 21); "
            "give it to your unit's clerk to send to shouwen@."
        )
