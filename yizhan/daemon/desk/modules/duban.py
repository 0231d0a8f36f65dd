"""督查督辦 at duban@: the office's supervision tasks, each unit's part confirmed on its own
(第二條; run by the office, 第六條).

The office assigns a task with 主送 and 期限; each addressed unit reports 進展 / PROGRESS and
辦結 / DONE, and the office confirms or sends back each part. Who may assign, the parts and
the four commands on them are decided in ``routing.supervision``; this module reads the mail
for it. A weekly report goes to the office and the bureau leaders (a scheduled job).
"""

from __future__ import annotations

import datetime as dt

from yizhan.daemon.desk.modules.base import DocumentModule, Prepared
from yizhan.daemon.desk.request import Request
from yizhan.routing import supervision
from yizhan.routing.documents import Decision
from yizhan.routing.drafts import Draft

__all__ = ["Duban"]


class Duban(DocumentModule):
    """See the module docstring."""

    name = supervision.KIND
    help = (
        "督查督辦 supervision (辦公室交辦：主送、期限 / the office assigns: To-Units, "
        "Deadline)；進展 / PROGRESS，辦結 / DONE"
    )
    jobs = ("supervision_report",)

    def prepare(self, request: Request, draft: Draft, today: dt.date) -> Prepared | str:
        """Who may assign, to which units, by which day (the 期限 is every part's deadline)."""
        assert request.account is not None
        assignment = supervision.check_assignment(
            author=request.account,
            to_units=draft.to_units,
            cc_units=draft.cc_units,
            scope=draft.scope,
            deadline_text=draft.deadline,
            directory=request.directory,
            calendar=request.desk.calendar,
            today=today,
        )
        if isinstance(assignment, str):
            return assignment
        return Prepared(fields=assignment.fields(), due_at=assignment.due_at)

    def opened(self, request: Request, decision: Decision) -> Decision:
        """The task as assigned: a part for each unit, its head told."""
        return supervision.assigned(decision, request.directory, request.now)

    #: PROGRESS, DONE and the office's confirmation are the module's; the rest the engine's.
    engine = staticmethod(supervision.apply_command)
