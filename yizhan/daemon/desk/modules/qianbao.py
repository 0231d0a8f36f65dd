"""內部簽報 at qianbao@: internal reports to the bureau's leaders (第二條).

The author's unit head reviews, the units in scope countersign (會簽), a bureau leader decides,
and the result goes back to the author. The flow is data (``routing.rules``); the module
adds nothing to it.
"""

from __future__ import annotations

from yizhan.daemon.desk.modules.base import DocumentModule

__all__ = ["Qianbao"]


class Qianbao(DocumentModule):
    """See the module docstring."""

    name = "qianbao"
    help = "內部簽報 internal report"
