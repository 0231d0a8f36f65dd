"""收文 at shouwen@: incoming documents (第二十一條).

A document received from outside is registered with a number, the office proposes how to
handle it (擬辦), a leader instructs (批示) naming the handling units, and each reports DONE.
The flow is data (``routing.rules``); the module adds nothing to it.
"""

from __future__ import annotations

from yizhan.daemon.desk.modules.base import DocumentModule

__all__ = ["Shouwen"]


class Shouwen(DocumentModule):
    """See the module docstring."""

    name = "shouwen"
    help = "收文 incoming document"
