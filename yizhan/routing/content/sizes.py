"""Refuses attachments larger than the limit for their kind (documents, images, archives …).

第十一條: the mail function exists for work and the system must run steadily; the IT
department sets one limit per kind in ``[content.sizes]``. The whole message is limited
separately, at SMTP time, by ``smtp.max_message_size``.
"""

from __future__ import annotations

from yizhan.routing.content.config import ContentRules
from yizhan.routing.content.kinds import kind_of
from yizhan.routing.content.model import Inspection, Verdict
from yizhan.routing.content.text import quote, size_text

__all__ = ["SizeLimits"]

_KIND_NAMES = {
    "document": ("文檔", "documents"),
    "image": ("圖片", "images"),
    "archive": ("壓縮包", "archives"),
    "text": ("文本", "text files"),
    "media": ("音視頻", "sound and video"),
    "message": ("郵件", "attached mails"),
    "executable": ("程序", "programs"),
    "other": ("其他文件", "other files"),
}


class SizeLimits:
    """An attachment over its kind's size limit (第十一條). See ``ContentRule``."""

    name = "attachment_size"
    description = "attachments over the size limit of their kind are refused"
    article = "第十一條"

    def check(self, inspection: Inspection, rules: ContentRules) -> Verdict | None:
        """See ``ContentRule.check``."""
        for attachment in inspection.attachments:
            if attachment.depth:
                continue  # Members count towards their archive's limits instead.
            kind = kind_of(attachment.sniffed)
            limit = rules.sizes.get(kind)
            if limit is None or attachment.size <= limit:
                continue
            zh_kind, en_kind = _KIND_NAMES.get(kind, (kind, kind))
            name = quote(attachment.name or "(no name)")
            size, most = size_text(attachment.size), size_text(limit)
            return Verdict(
                rule=self.name,
                code=552,
                status="5.3.4",
                article=self.article,
                reason_zh=(
                    f"未受理：附件「{name}」大小為 {size}，超過{zh_kind}的上限 {most}（第十一條）。"
                    "請壓縮或拆分後重發，或通過共享目錄傳遞。"
                ),
                reason_en=(
                    f"Refused: attachment '{name}' is {size}, over the limit of {most} for "
                    f"{en_kind} (art. 11). Make it smaller or split it, or share it another way."
                ),
            )
        return None
