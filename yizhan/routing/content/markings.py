"""Refuses classified material: messages that carry a classification marking (密級標誌).

第十四條: 凡涉及國家秘密的文件、信息等資料一律不得在連接OA系統的計算機上處理、存儲、傳遞.
第二十二條: 涉密文件不可使用處(室)函. A marking is recognised by where and how it is written,
as GB/T 9704 sets it out and as people type it, never by the word alone: 秘密 in "保守工作秘密"
is an ordinary word, while "秘密★1年" at the head of a document, "【機密】" before a subject, a
line that reads "絕密" at the top of a body, "密級：秘密" anywhere, or a custom property 密級 =
秘密 are markings. The places checked: the subject, the head and text of the body, each
attachment's file name, document properties, head and text (archive members included).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from yizhan.routing.content.config import ContentRules, MarkingWords
from yizhan.routing.content.model import Attachment, Inspection, Verdict
from yizhan.routing.content.text import head_lines, normalise, quote, strip_reply_prefixes

__all__ = ["ClassifiedMarkings", "MarkingFinder", "finder"]

# Words that may stand before a marking on a header line (緊急程度 and the like).
_HEADER_WORDS: Final = r"(?:特急|加急|特提|平急|急件|緊急|紧急|重要|份號|份号)"
# Brackets a tag may stand in (after NFKC, full-width ones are ASCII).
_OPEN: Final = r"[\[【〔<〈(]"
_CLOSE: Final = r"[\]】〕>〉)]"
# A tag of a few characters in brackets, such as [特急] before a subject.
_TAG: Final = rf"{_OPEN}[^\]】〕>〉)]{{1,12}}{_CLOSE}"
# What may follow a marking that opens a subject or file name: a separator, or the end.
_AFTER: Final = r"(?=\s|[:\-—_|/·.★☆]|$)"
# What may precede a marking that closes a subject or file name.
_BEFORE: Final = r"(?<=[\s:\-—_|/·.])"
# The period of a marking: 1年, 6個月, 長期.
_PERIOD: Final = r"(?:\d+\s*(?:年|個月|个月|月|天|日)|長期|长期|永久)"
# Opening quotation marks: a marking inside quotes is being talked about, not applied.
_QUOTES: Final = "“‘「『\"'《〈"
# Values of a classification property that say "not classified".
_NEGATED: Final = re.compile(r"^\s*(?:非|不|無|无|未|免)")
_KEYWORD_SPLIT: Final = re.compile(r"[;,，、；\s]+")


@dataclass(frozen=True, kw_only=True)
class _Place:
    zh: str
    en: str


class MarkingFinder:
    """Finds classification markings in the places they are written; built once per word list."""

    def __init__(self, words: MarkingWords) -> None:
        def spaced(word: str) -> str:
            # Official heads often space the two characters out: "秘  密".
            return r"\s*".join(re.escape(c) for c in normalise(word))

        level = "(?:" + "|".join(spaced(w) for w in words.levels) + ")"
        mark = "(?:" + "|".join(spaced(w) for w in (*words.levels, *words.tags)) + ")"
        star = "[" + "".join(re.escape(s) for s in words.stars) + "]"
        self.head_lines = words.head_lines
        self.property_names = frozenset(normalise(n).casefold() for n in words.property_names)
        starred = rf"{level}\s*{star}\s*{_PERIOD}?"
        #: A level with its star (秘密★1年), wherever it stands.
        self.starred = re.compile(starred)
        #: A label and its value: 密級：秘密, 密级和保密期限：机密★6个月.
        self.label = re.compile(rf"密\s*[級级](?:\s*和\s*保密期限)?\s*:\s*{_OPEN}?\s*(?:{mark})")
        marked = rf"(?:{starred}|{mark})"
        #: A marking with nothing said about where it stands.
        self.marked = re.compile(marked)
        #: The whole field is the marking: "秘密", "[機密]", "絕密★長期".
        self.whole = re.compile(rf"^\s*{_OPEN}?\s*{marked}\s*{_CLOSE}?\s*$")
        #: A bracketed marking among the tags that open the field: "[特急]【秘密】關於…".
        self.leading_tag = re.compile(rf"^\s*(?:{_TAG}\s*)*{_OPEN}\s*{marked}\s*{_CLOSE}")
        #: A bracketed marking among the tags that close the field: "關於…（秘密）".
        self.trailing_tag = re.compile(rf"{_OPEN}\s*{marked}\s*{_CLOSE}\s*(?:{_TAG}\s*)*$")
        #: A marking that opens the field, then a separator: "秘密：關於…", "特急 機密 …".
        self.prefix = re.compile(rf"^\s*(?:{_TAG}\s*)*(?:{_HEADER_WORDS}\s+)?{marked}{_AFTER}")
        #: A marking on its own at the start of a line, then spaces: "秘密★1年    特急".
        self.line_prefix = re.compile(rf"^\s*(?:{_HEADER_WORDS}\s+)?{marked}(?=\s|$)")
        #: A marking that closes the field after a separator: "關於…_秘密".
        self.suffix = re.compile(rf"{_BEFORE}\s*{marked}\s*$")
        self.extra = tuple(re.compile(p) for p in words.patterns)
        # Every built-in pattern needs a level's or a tag's first character, or 密 (a label):
        # a text with none of them is passed over without running the patterns.
        self.key_chars = frozenset(
            {normalise(w)[0] for w in (*words.levels, *words.tags) if normalise(w)} | {"密"}
        )

    def may_mark(self, text: str) -> bool:
        """Whether ``text`` (normalised) could hold a built-in marking at all."""
        return any(c in text for c in self.key_chars)

    # -- places ------------------------------------------------------------------------------

    def in_title(self, text: str) -> str | None:
        """A marking in a subject, file name or title: whole, as a tag, prefix or suffix."""
        text = strip_reply_prefixes(normalise(text))
        if not self.may_mark(text):
            return self._extra(text)
        for pattern in (self.whole, self.leading_tag, self.trailing_tag, self.prefix, self.suffix):
            match = pattern.search(text)
            if match:
                return _shown(match.group())
        return self.anywhere(text)

    def in_head(self, lines: Iterable[str]) -> str | None:
        """A marking at the head of a body or document: a line that is, or opens with, one."""
        for line in lines:
            line = normalise(line)
            if not self.may_mark(line):
                continue
            for pattern in (self.whole, self.leading_tag, self.trailing_tag, self.line_prefix):
                match = pattern.search(line)
                if match:
                    return _shown(match.group())
        return None

    def anywhere(self, text: str) -> str | None:
        """A marking that counts wherever it stands: a starred level outside quotes, a label."""
        text = normalise(text)
        if not self.may_mark(text):
            return self._extra(text)
        for match in self.starred.finditer(text):
            before = text[: match.start()].rstrip(" \t")
            if not before or before[-1] not in _QUOTES:
                return _shown(match.group())
        found = self.label.search(text)
        return _shown(found.group()) if found else self._extra(text)

    def _extra(self, text: str) -> str | None:
        # The IT department's own patterns (``[content.markings] patterns``), run everywhere.
        for pattern in self.extra:
            found = pattern.search(text)
            if found:
                return _shown(found.group())
        return None

    def in_property(self, name: str, value: str) -> str | None:
        """A marking in one document property (a classification property, keywords, a title)."""
        key = normalise(name).casefold().strip()
        value = normalise(value)
        if not value.strip():
            return None
        if key in self.property_names:
            if _NEGATED.match(value):
                return None
            return self.in_title(value) or self._contains_mark(value)
        if key in ("keywords", "keyword", "關鍵詞", "关键词"):
            for token in _KEYWORD_SPLIT.split(value):
                if token and self.whole.match(token):
                    return _shown(token)
        return self.in_title(value)

    def in_text(self, text: str) -> str | None:
        """A marking in a body or document: at its head, or one that counts anywhere."""
        return self.in_head(head_lines(text, self.head_lines)) or self.anywhere(text)

    def _contains_mark(self, value: str) -> str | None:
        # A classification property holding a level anywhere ("機密（內部）") is a marking.
        found = self.marked.search(value)
        return _shown(found.group()) if found else None


@functools.cache
def finder(words: MarkingWords) -> MarkingFinder:
    """The finder for a word list, compiled once."""
    return MarkingFinder(words)


class ClassifiedMarkings:
    """Classified markings anywhere they are written (第十四條, 第二十二條). See ``ContentRule``."""

    name = "classified"
    description = "messages that carry a classification marking (密級標誌) are refused"
    article = "第十四條"

    def check(self, inspection: Inspection, rules: ContentRules) -> Verdict | None:
        """See ``ContentRule.check``."""
        find = finder(rules.markings)
        for place, marking in self._places(inspection, find):
            if marking is None:
                continue
            letter = "hanjian" in inspection.modules
            articles = "第十四條、第二十二條" if letter else "第十四條"
            zh_letter = "，處（室）函更不得用於涉密文件（第二十二條）" if letter else ""
            en_letter = "; department letters may never carry classified documents (art. 22)"
            return Verdict(
                rule=self.name,
                code=550,
                status="5.7.1",
                article=articles,
                reason_zh=(
                    f"未受理：{place.zh}帶有密級標誌「{quote(marking, 30)}」。涉及國家秘密的文件、"
                    f"信息一律不得在連接OA系統的計算機上處理、存儲、傳遞（第十四條）{zh_letter}。"
                    "請經保密渠道線下傳遞；如屬誤標，請去掉標誌後重發。"
                ),
                reason_en=(
                    f"Refused: {place.en} carries the classification marking "
                    f"'{quote(marking, 30)}'. Classified material may not be processed, stored "
                    "or sent on any computer connected to the OA system (art. 14)"
                    f"{en_letter if letter else ''}. Use the offline channel for classified "
                    "material; if the marking is a mistake, remove it and send again."
                ),
            )
        return None

    def _places(
        self, inspection: Inspection, find: MarkingFinder
    ) -> Iterable[tuple[_Place, str | None]]:
        # Lazily, in the order a reader meets them: the first marking found is reported.
        yield _Place(zh="郵件主題", en="the subject"), find.in_title(inspection.subject)
        yield _Place(zh="郵件正文", en="the body of the message"), find.in_text(inspection.body)
        for attachment in inspection.attachments:
            yield from self._attachment_places(attachment, find)

    def _attachment_places(
        self, attachment: Attachment, find: MarkingFinder
    ) -> Iterable[tuple[_Place, str | None]]:
        shown = quote(attachment.path or attachment.name or "(no name)")
        stem = attachment.name.rsplit("/", 1)[-1]
        if "." in stem:
            stem = stem.rsplit(".", 1)[0]
        yield (
            _Place(zh=f"附件「{shown}」的文件名", en=f"the file name of attachment '{shown}'"),
            (find.in_title(stem) if stem else None),
        )
        yield (
            _Place(zh=f"附件「{shown}」的文檔屬性", en=f"the document properties of '{shown}'"),
            _first_property(attachment.properties, find),
        )
        yield (
            _Place(zh=f"附件「{shown}」的內容", en=f"the text of attachment '{shown}'"),
            (find.in_text(attachment.text) if attachment.text else None),
        )


def _first_property(properties: Mapping[str, str], find: MarkingFinder) -> str | None:
    for name, value in properties.items():
        marking = find.in_property(name, value)
        if marking:
            return f"{name}: {marking}"
    return None


def _shown(text: str) -> str:
    return " ".join(text.split())
