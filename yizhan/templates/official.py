"""Lays out a sealed document as the elements of an official document (公文), GB/T 9704-2012.

:func:`official_document` turns the engine's :class:`~yizhan.routing.documents.DocumentState`
into an :class:`OfficialDocument`: the standard's elements in the standard's order, with their
text already written out (dates, separators, labels), so that the HTML page and the PDF say
exactly the same thing. Nothing here renders or reads anything; the renderers are
``official_html`` and ``official_pdf``.

Labels are in Traditional script, like the organisation's own names and the regulations: one
document goes to every recipient unchanged (it is signed once), so it has one script.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Final

from yizhan.routing.directory import Directory, UnitInfo
from yizhan.routing.documents import DocumentState, TrailEntry
from yizhan.signing.keyring import SealInfo

__all__ = [
    "ELEMENTS",
    "UPWARD_TYPES",
    "OfficialDocument",
    "SealMark",
    "chinese_date",
    "official_document",
    "qualified_name",
]

#: The elements of GB/T 9704-2012 in their order: (field of :class:`OfficialDocument`, name).
#: 版頭 (份號 … 簽發人), 主體 (標題 … 附件), 版記 (抄送機關, 印發機關和印發日期).
ELEMENTS: Final = (
    ("copy_number", "份號"),
    ("classification", "密級和保密期限"),
    ("urgency", "緊急程度"),
    ("organ_mark", "發文機關標誌"),
    ("number", "發文字號"),
    ("signer", "簽發人"),
    ("title", "標題"),
    ("main_recipients", "主送機關"),
    ("body", "正文"),
    ("attachment_note", "附件說明"),
    ("organ_signature", "發文機關署名"),
    ("date", "成文日期"),
    ("seal", "印章"),
    ("note", "附註"),
    ("attachments", "附件"),
    ("cc", "抄送機關"),
    ("printer", "印發機關"),
    ("printed_on", "印發日期"),
)

#: Document types (文種) that go up to a higher authority (上行文); only they show 簽發人
#: (GB/T 9704-2012 7.2.6), in either script.
UPWARD_TYPES: Final = frozenset({"請示", "报告", "報告", "请示"})

#: The trail step whose approval is the sign-off (簽發); its date is the 成文日期.
SIGNOFF_STEP: Final = "signoff"

# Appended to the organ's name in the 發文機關標誌 of the 文件 format (GB/T 9704-2012 7.2.4).
_MARK_SUFFIX: Final = "文件"


@dataclass(frozen=True, kw_only=True)
class SealMark:
    """The 印章 as shown on the document: the seal's name and its key's fingerprint.

    The visible mark is only a picture; what proves the seal is the OpenPGP signature of the
    key with this fingerprint, so the fingerprint is printed beside the mark for a reader to
    compare with ``yizhan seal export``.
    """

    unit_name: str
    fingerprint: str

    @property
    def grouped_fingerprint(self) -> str:
        """The fingerprint in groups of four, as gpg prints it: ``ABCD 1234 …``."""
        fpr = self.fingerprint.replace(" ", "").upper()
        return " ".join(fpr[i : i + 4] for i in range(0, len(fpr), 4))

    @property
    def text(self) -> str:
        """The line printed near the signature: 電子印章：<name> 指紋 <fingerprint>."""
        return f"電子印章：{self.unit_name} 指紋 {self.grouped_fingerprint}"


@dataclass(frozen=True, kw_only=True)
class OfficialDocument:
    """A sealed document as the elements of GB/T 9704-2012, in their order (:data:`ELEMENTS`).

    ``copy_number`` (份號) is always None: a copy number tells paper copies apart, and the
    sealed distribution is one signed message, identical for every recipient, so there is no
    copy to number; the document id is in the X-Yizhan-Doc header instead. ``classification``
    (密級和保密期限) is always None: classified material never enters Yizhan (第十四條).

    ``main_recipients`` are the 主送 units grouped by kind (organs of one kind are separated by
    、, groups by ，); ``body`` is the text's paragraphs; ``attachment_note`` the attachments'
    names without their file extensions, ``attachments`` their file names; ``signer`` is the
    name of the leader who signed off, for an upward document (上行文) only.
    """

    copy_number: str | None = None
    classification: str | None = None
    urgency: str | None
    organ_mark: str
    number: str | None
    signer: str | None
    title: str
    main_recipients: tuple[tuple[str, ...], ...]
    body: tuple[str, ...]
    attachment_note: tuple[str, ...]
    organ_signature: str
    date: dt.date
    seal: SealMark | None
    note: str | None
    attachments: tuple[str, ...]
    cc: tuple[str, ...]
    printer: str
    printed_on: dt.date

    # -- text of the elements, shared by the HTML and PDF renderers ------------------------------

    @property
    def signer_text(self) -> str:
        """簽發人：<name>, or empty when there is no 簽發人."""
        return f"簽發人：{self.signer}" if self.signer else ""

    @property
    def main_recipients_text(self) -> str:
        """The 主送機關 line, ending with a full-width colon (GB/T 9704-2012 7.3.2)."""
        if not self.main_recipients:
            return ""
        return "，".join("、".join(group) for group in self.main_recipients) + "："

    @property
    def attachment_note_items(self) -> tuple[str, ...]:
        """The 附件說明 entries: the name alone for one attachment, else numbered 1．2．….

        The renderers put 附件： before the first; names take no final punctuation (7.3.4).
        """
        if len(self.attachment_note) == 1:
            return self.attachment_note
        return tuple(f"{n}．{name}" for n, name in enumerate(self.attachment_note, 1))

    @property
    def date_text(self) -> str:
        """The 成文日期 in Arabic numerals: 2026年11月25日."""
        return chinese_date(self.date)

    @property
    def note_text(self) -> str:
        """The 附註 in round brackets, or empty."""
        return f"（{self.note}）" if self.note else ""

    @property
    def attachment_pages(self) -> tuple[tuple[str, str, str], ...]:
        """Each 附件's heading, title and where to find it: (附件1, 名稱, （見…「名稱.docx」）).

        The heading is 附件 alone when there is one attachment (GB/T 9704-2012 8). The files
        themselves travel as the mail's attachments, so the page says which file it is.
        """
        pages = tuple(zip(self.attachment_note, self.attachments, strict=True))
        headings = ["附件"] if len(pages) == 1 else [f"附件{n}" for n in range(1, len(pages) + 1)]
        return tuple(
            (heading, title, f"（見本郵件所附文件「{name}」）")
            for heading, (title, name) in zip(headings, pages, strict=True)
        )

    @property
    def cc_text(self) -> str:
        """The 抄送機關 line: commas between organs and a full stop after the last (7.4.2)."""
        return f"抄送：{'，'.join(self.cc)}。" if self.cc else ""

    @property
    def printed_text(self) -> str:
        """The 印發日期 as printed in the 版記: 2026年11月25日印發."""
        return f"{chinese_date(self.printed_on)}印發"


def chinese_date(day: dt.date) -> str:
    """A date as GB/T 9704-2012 7.3.5.1 writes it: Arabic numerals, full year, no padding.

    ``chinese_date(date(2026, 1, 5))`` is 2026年1月5日.
    """
    return f"{day.year}年{day.month}月{day.day}日"


def official_document(
    state: DocumentState,
    directory: Directory,
    seal: SealInfo | None,
    *,
    issuing_unit: str,
    issued_at: dt.datetime,
    tz: dt.tzinfo,
) -> OfficialDocument:
    """The official document of ``state`` as issued by ``issuing_unit`` at ``issued_at``.

    ``issuing_unit`` is a unit id (the sealing unit: usually the bureau); its full name, with
    the names of the units above it, is the organ (發文機關). ``seal`` is the seal key that
    signs the distribution, None for an unsealed preview. The 成文日期 is the day the leader
    signed off (7.3.5.1), else the day of issue; the 印發日期 is the day of issue; the 印發機關
    is the office (第六條), else the organ. Raises ValueError for an unknown ``issuing_unit``.
    """
    if issuing_unit not in directory.units:
        raise ValueError(f"issuing unit {issuing_unit!r} is not a unit")
    fields = state.fields
    organ = qualified_name(directory, issuing_unit)
    offices = directory.units_of_kind("office")
    signoff = _signoff(state)
    to_units = list(fields.get("to_units", ()))
    cc_units = list(fields.get("cc_units", ()))
    attachments = tuple(name for name in fields.get("attachments", ()) if name)
    return OfficialDocument(
        urgency=state.urgency,
        organ_mark=organ + _MARK_SUFFIX,
        number=state.number,
        signer=_signer(state, directory, signoff),
        title=state.title,
        main_recipients=_grouped_names(directory, to_units),
        body=_paragraphs(str(fields.get("body") or "")),
        attachment_note=tuple(_attachment_title(name) for name in attachments),
        organ_signature=organ,
        date=(signoff.at if signoff else issued_at).astimezone(tz).date(),
        seal=SealMark(unit_name=seal.unit_name, fingerprint=seal.fingerprint) if seal else None,
        note=_scope_note(directory, fields, to_units + cc_units),
        attachments=attachments,
        cc=tuple(_unit_name(directory, u) for u in cc_units),
        printer=qualified_name(directory, offices[0].id) if offices else organ,
        printed_on=issued_at.astimezone(tz).date(),
    )


def qualified_name(directory: Directory, unit_id: str) -> str:
    """A unit's full name: its name after the names of the units above it.

    The office of 遼寧出入境檢驗檢疫局 is 遼寧出入境檢驗檢疫局辦公室: an organ signs with its
    full name (GB/T 9704-2012 7.2.4). A name that already starts with its parent's is kept.
    """
    unit = directory.units[unit_id]
    name = unit.name
    seen = {unit.id}
    parent = directory.units.get(unit.parent or "")
    while parent is not None and parent.id not in seen:
        seen.add(parent.id)
        if not name.startswith(parent.name):
            name = parent.name + name
        parent = directory.units.get(parent.parent or "")
    return name


# -- building the elements --------------------------------------------------------------------


def _signoff(state: DocumentState) -> TrailEntry | None:
    """The last sign-off approval in the trail, or None (a document sent back and signed again
    counts from its last signature)."""
    found = [e for e in state.trail if e.step == SIGNOFF_STEP and e.action == "approve"]
    return found[-1] if found else None


def _signer(state: DocumentState, directory: Directory, signoff: TrailEntry | None) -> str | None:
    """The 簽發人 of an upward document: the person who actually signed, delegate or not."""
    if signoff is None or state.fields.get("doc_type") not in UPWARD_TYPES:
        return None
    person = directory.people.get(signoff.actor)
    return person.name if person else signoff.actor


def _unit_name(directory: Directory, unit_id: str) -> str:
    unit = directory.units.get(unit_id)
    return unit.name if unit else unit_id


def _grouped_names(directory: Directory, unit_ids: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    """Names of ``unit_ids`` in their order, consecutive units of one kind grouped together."""
    groups: list[tuple[str | None, list[str]]] = []
    for unit_id in unit_ids:
        unit: UnitInfo | None = directory.units.get(unit_id)
        kind = unit.kind if unit else None
        name = unit.name if unit else unit_id
        if groups and groups[-1][0] == kind:
            groups[-1][1].append(name)
        else:
            groups.append((kind, [name]))
    return tuple(tuple(names) for _, names in groups)


def _paragraphs(body: str) -> tuple[str, ...]:
    """The text's paragraphs: one per non-empty line, without the indent people type.

    The renderers indent every paragraph by two characters (7.3.3), so an indent typed with
    spaces or full-width spaces would be doubled.
    """
    return tuple(line.strip(" \t\u3000") for line in body.splitlines() if line.strip(" \t\u3000"))


def _attachment_title(file_name: str) -> str:
    """An attachment's name for the 附件說明: its file name without the extension."""
    path = PurePosixPath(file_name.replace("\\", "/"))
    return path.stem if path.suffix and path.stem else path.name


def _scope_note(
    directory: Directory, fields: Mapping[str, Any], addressed: Iterable[str]
) -> str | None:
    """The 附註 naming the units in scope that are neither 主送 nor 抄送 (此件發至 …).

    GB/T 9704-2012 7.3.6: the 附註 says how far a document is passed on (印發傳達範圍).
    """
    named = set(addressed)
    others = [u for u in fields.get("scope_units", ()) if u not in named]
    if not others:
        return None
    return "此件發至" + "、".join(_unit_name(directory, u) for u in others)
