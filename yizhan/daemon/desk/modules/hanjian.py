"""處室函 at hanjian@: a unit's letters to other units (第二十二條).

The unit's head approves, then the addressed units' clerks receive it. Classified material and
forwarded documents may not travel as a letter: the flow's content rules refuse them
(``routing.rules``); the module adds nothing else.
"""

from __future__ import annotations

from yizhan.daemon.desk.modules.base import DocumentModule

__all__ = ["Hanjian"]


class Hanjian(DocumentModule):
    """See the module docstring."""

    name = "hanjian"
    help = "處室函 department letter"
