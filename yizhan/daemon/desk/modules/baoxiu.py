"""報修 at baoxiu@ (alias support@): problems with the system reported to the IT department
(第十二條; mine rules 二(一)).

A report (its subject, its text and any screenshots) opens a document of the ``baoxiu`` flow:
a ``handle`` step for the IT department, due in one working day, reminded and escalated like
every step. IT answers DONE (辦結) with what was done, and that summary goes back to the
reporter. Everything else is the engine's (``routing.rules``: ``BAOXIU``).
"""

from __future__ import annotations

from yizhan.daemon.desk.modules.base import DocumentModule

__all__ = ["Baoxiu"]


class Baoxiu(DocumentModule):
    """See the module docstring."""

    name = "baoxiu"
    help = "報修 problem report to the IT department (第十二條)"
