"""Refuses messages that contain words the IT department lists as unlawful content.

第十三條: 不得在OA系統上傳遞違背國家法律、法規的任何信息; mine rules 一(六): 嚴禁在辦公自動化上
發布違反國家法律法規的信息和內容. The list (``[content] forbidden_words``) is empty by default:
what is unlawful is for the bureau to say, not for the software.
"""

from __future__ import annotations

from yizhan.routing.content.config import ContentRules
from yizhan.routing.content.model import Inspection, Verdict
from yizhan.routing.content.text import normalise, quote

__all__ = ["ForbiddenWords"]


class ForbiddenWords:
    """A listed unlawful word (第十三條; mine rules 一(六)). See ``ContentRule``."""

    name = "forbidden_words"
    description = "messages containing a word on the IT department's list are refused"
    article = "第十三條；礦規定一（六）"

    def check(self, inspection: Inspection, rules: ContentRules) -> Verdict | None:
        """See ``ContentRule.check``."""
        if not rules.forbidden_words:
            return None
        texts = [inspection.subject, inspection.body]
        for attachment in inspection.attachments:
            texts.extend((attachment.name, attachment.text, *attachment.properties.values()))
        found = _first_word(texts, rules.forbidden_words)
        if found is None:
            return None
        word = quote(found, 20)
        return Verdict(
            rule=self.name,
            code=550,
            status="5.7.1",
            article=self.article,
            reason_zh=(
                f"未受理：郵件含有禁止傳遞的內容（「{word}」）。辦公系統只用於工作交流，"
                "不得傳遞違反法律法規的信息（第十一條、第十三條）。"
            ),
            reason_en=(
                f"Refused: the message contains forbidden content ('{word}'). OA mail is for "
                "work only and may not carry unlawful content (arts. 11 and 13)."
            ),
        )


def _first_word(texts: list[str], words: tuple[str, ...]) -> str | None:
    folded = [(w, normalise(w).casefold()) for w in words]
    for text in texts:
        flat = normalise(text).casefold()
        for word, key in folded:
            if key and key in flat:
                return word
    return None
