"""局發文 at fawen@: the bureau's outgoing documents (第二條, 第二十條).

The unit head reviews, the office checks the draft (核稿), a bureau leader signs off (簽發), the
document is numbered (遼檢辦〔2026〕62號), its seal custodian applies the seal with a signed
SEAL (第十八條) and every clerk in scope signs for receipt. The flow is data
(``routing.rules``); the module adds nothing to it.
"""

from __future__ import annotations

from yizhan.daemon.desk.modules.base import DocumentModule

__all__ = ["Fawen"]


class Fawen(DocumentModule):
    """See the module docstring."""

    name = "fawen"
    help = "局發文 outgoing document"
