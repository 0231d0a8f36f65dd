"""Refuses a message that carries a forwarded document (for department letters, by the table).

第二十二條: 涉密文件及轉發文件不可使用處(室)函; a document is forwarded with a bureau document
(fawen@). Signs of a forwarded document: an attached mail (message/rfc822, .eml), a subject
that forwards ("Fwd:", "轉發：", "關於轉發…"), the separator a mail client puts above a forwarded
mail, or another document's number (發文字號, 遼檢辦〔2024〕62號) in the subject, in a file
name, or at the head of an attached document. A number cited in the letter's own text is a
reference, not a forwarded document, and passes.
"""

from __future__ import annotations

import functools
import re

from yizhan.routing.content.config import ContentRules, ForwardMarkers
from yizhan.routing.content.model import Inspection, Verdict
from yizhan.routing.content.text import head_lines, normalise, quote, strip_reply_prefixes

__all__ = ["ForwardedDocuments", "forward_evidence"]


@functools.cache
def _compiled(
    markers: ForwardMarkers,
) -> tuple[re.Pattern[str], tuple[re.Pattern[str], ...], re.Pattern[str]]:
    return (
        re.compile(markers.subject, re.IGNORECASE),
        tuple(re.compile(p, re.IGNORECASE) for p in markers.lines),
        re.compile(markers.number),
    )


def forward_evidence(inspection: Inspection, rules: ContentRules) -> tuple[str, str] | None:
    """What shows that the message forwards a document, in Chinese and English, or None."""
    subject_re, line_res, number_re = _compiled(rules.forwarded)
    if inspection.forwarded_messages or any(a.sniffed == "message" for a in inspection.attachments):
        return "附有轉發的郵件", "it carries a forwarded mail"
    subject = normalise(inspection.subject)
    if subject_re.search(subject):
        return "主題表明是轉發", "its subject says it forwards something"
    number = number_re.search(strip_reply_prefixes(subject))
    if number:
        shown = quote(number.group(), 30)
        return f"主題帶有其他公文的文號「{shown}」", f"its subject has document number '{shown}'"
    for line in normalise(inspection.body).splitlines():
        if any(r.search(line.strip()) for r in line_res):
            return "正文含有轉發郵件的分隔行", "its body holds a forwarded mail"
    head = rules.markings.head_lines
    for attachment in inspection.attachments:
        name = quote(attachment.path or attachment.name or "(no name)")
        for text in (attachment.name, *head_lines(attachment.text, head)):
            number = number_re.search(normalise(text))
            if number:
                shown = quote(number.group(), 30)
                return (
                    f"附件「{name}」是文號為「{shown}」的公文",
                    f"attachment '{name}' is document number '{shown}'",
                )
    return None


class ForwardedDocuments:
    """A forwarded document (第二十二條). See ``ContentRule``."""

    name = "forwarded_document"
    description = "department letters may not carry forwarded documents"
    article = "第二十二條"

    def check(self, inspection: Inspection, rules: ContentRules) -> Verdict | None:
        """See ``ContentRule.check``."""
        evidence = forward_evidence(inspection, rules)
        if evidence is None:
            return None
        return Verdict(
            rule=self.name,
            code=550,
            status="5.7.1",
            article=self.article,
            reason_zh=(
                f"未受理：這封處（室）函{evidence[0]}。轉發文件不可使用處（室）函（第二十二條），"
                "請以局發文（fawen@）轉發。"
            ),
            reason_en=(
                f"Refused: this department letter forwards a document ({evidence[1]}). A "
                "department letter may not forward documents (art. 22); forward it as a "
                "bureau document (fawen@) instead."
            ),
        )
