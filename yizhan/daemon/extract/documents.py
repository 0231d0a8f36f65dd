"""Reads the text and properties of office documents: Office Open XML, OpenDocument and OFD (zips of
XML, refused unread when they declare a DTD), PDF (pypdf) and Word/Excel 97 (UTF-16 runs)."""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Final
from xml.etree import ElementTree

from yizhan.daemon.extract.text import text_score

#: Characters of text kept per attachment; markings sit at the head, and a bound keeps a huge
#: spreadsheet from filling memory.
MAX_TEXT: Final = 1_000_000

#: PDF pages whose text is read.
MAX_PDF_PAGES: Final = 50

#: The largest XML part of a document that is read (streamed: time, not memory, is the cost).
MAX_PART: Final = 256 * 1024 * 1024

_DTD: Final = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)

# Bytes at the start of an XML part searched for a DTD (it can only be in the prolog).
_PROLOG: Final = 64 * 1024

_PDF_ACTIVE: Final = re.compile(rb"/(?:JavaScript|JS|Launch)\b")

_SHEET_CODES: Final = re.compile(r'&(?:"[^"]*"|\d+|[A-Za-z&])')

_DIGITS: Final = re.compile(r"(\d+)")

# Elements whose text is one line: paragraphs (w:p, a:p, text:p, text:h), shared strings and
# inline strings (si, is), OFD text (TextCode) and spreadsheet page headers.
_LINES: Final = frozenset(
    {
        "p",
        "h",
        "si",
        "is",
        "TextCode",
        "oddHeader",
        "evenHeader",
        "firstHeader",
        "oddFooter",
        "evenFooter",
        "firstFooter",
    }
)

OLE_MACROS: Final = ("_VBA_PROJECT".encode("utf-16-le"), "Macros".encode("utf-16-le"))

OLE_ENCRYPTED: Final = "EncryptedPackage".encode("utf-16-le")

# Runs of UTF-16LE text in an OLE2 file: CJK, punctuation and printable ASCII.
_UTF16_RUN: Final = re.compile(
    "[\u4e00-\u9fff\u3000-\u303f\uff00-\uffef\u2000-\u206f\u2605\u2606 -~]{2,}"
)


@dataclass(kw_only=True)
class FileText:
    """What reading a file's content found."""

    text: str = ""
    properties: dict[str, str] = field(default_factory=dict)
    macros: bool = False
    encrypted: bool = False
    unreadable: str | None = None


class Unreadable(Exception):
    """The content cannot be read; the message says why, in English."""


def read_member(zf: zipfile.ZipFile, name: str, cap: int) -> bytes:
    """One member's bytes, refusing to expand more than ``cap``."""
    try:
        info = zf.getinfo(name)
        if info.file_size > cap:
            raise Unreadable(f"{name} is larger than {cap} bytes")
        with zf.open(info) as stream:
            data = stream.read(cap + 1)
    except Unreadable:
        raise
    except KeyError as exc:
        raise Unreadable(f"{name} is missing") from exc
    except RuntimeError as exc:
        raise Unreadable("encrypted") from exc
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as exc:
        raise Unreadable(f"damaged ({exc.__class__.__name__})") from exc
    if len(data) > cap:
        raise Unreadable(f"{name} expands past {cap} bytes")
    return data


def read_package(kind: str, zf: zipfile.ZipFile) -> FileText:
    """Office Open XML, OpenDocument or OFD: text (page headers first) and properties."""
    names = zf.namelist()
    found = FileText()
    if kind in ("docx", "xlsx", "pptx"):
        parts = _ooxml_parts(kind, names)
        found.properties = _ooxml_properties(zf, names)
        content_types = (
            read_member(zf, "[Content_Types].xml", 1 << 20)
            if "[Content_Types].xml" in names
            else b""
        )
        found.macros = any(n.lower().endswith("vbaproject.bin") for n in names) or (
            b"macroEnabled" in content_types
        )
    elif kind == "ofd":
        parts = sorted((n for n in names if n.lower().endswith("content.xml")), key=natural_key)
        found.properties = _ofd_properties(zf, names)
    else:
        parts = [n for n in ("styles.xml", "content.xml") if n in names]
        found.properties = _odf_properties(zf, names)
        found.macros = any(
            (n.startswith("Basic/") and not n.endswith("script-lc.xml")) or n.startswith("Scripts/")
            for n in names
        )
    lines: list[str] = []
    budget = MAX_TEXT
    for line in (line for part in parts for line in _xml_lines(zf, part, MAX_PART)):
        lines.append(line)
        budget -= len(line) + 1
        if budget <= 0:
            break
    found.text = "\n".join(lines)
    return found


def _ooxml_parts(kind: str, names: list[str]) -> list[str]:
    if kind == "docx":
        headers = sorted(
            (n for n in names if re.match(r"word/header\d*\.xml$", n)), key=natural_key
        )
        footers = sorted(
            (n for n in names if re.match(r"word/footer\d*\.xml$", n)), key=natural_key
        )
        return [*headers, "word/document.xml", *footers]
    if kind == "xlsx":
        sheets = sorted(
            (n for n in names if re.match(r"xl/worksheets/sheet\d*\.xml$", n)), key=natural_key
        )
        shared = ["xl/sharedStrings.xml"] if "xl/sharedStrings.xml" in names else []
        # A sheet holds its page header (where a marking goes) and inline strings; the
        # shared strings hold the cell text.
        return [*sheets, *shared]
    return sorted((n for n in names if re.match(r"ppt/slides/slide\d+\.xml$", n)), key=natural_key)


def _ooxml_properties(zf: zipfile.ZipFile, names: list[str]) -> dict[str, str]:
    properties: dict[str, str] = {}
    if "docProps/core.xml" in names:
        root = _parse_xml(read_member(zf, "docProps/core.xml", 1 << 20))
        for child in root:
            text = "".join(child.itertext()).strip()
            if text:
                properties[_local(child.tag)] = text
    if "docProps/custom.xml" in names:
        root = _parse_xml(read_member(zf, "docProps/custom.xml", 1 << 20))
        for child in root:
            label = child.get("name")
            text = "".join(child.itertext()).strip()
            if label and text:
                properties[label] = text
    return properties


def _odf_properties(zf: zipfile.ZipFile, names: list[str]) -> dict[str, str]:
    properties: dict[str, str] = {}
    if "meta.xml" not in names:
        return properties
    root = _parse_xml(read_member(zf, "meta.xml", 1 << 20))
    for element in root.iter():
        tag = _local(element.tag)
        text = "".join(element.itertext()).strip()
        if not text or len(element):
            continue
        if tag == "user-defined":
            label = next((v for k, v in element.attrib.items() if _local(k) == "name"), "")
            if label:
                properties[label] = text
        elif tag == "keyword":
            properties["keywords"] = ";".join(filter(None, [properties.get("keywords"), text]))
        elif tag in ("title", "subject", "description"):
            properties[tag] = text
    return properties


def _ofd_properties(zf: zipfile.ZipFile, names: list[str]) -> dict[str, str]:
    properties: dict[str, str] = {}
    if "OFD.xml" not in names:
        return properties
    root = _parse_xml(read_member(zf, "OFD.xml", 1 << 20))
    for element in root.iter():
        tag = _local(element.tag)
        text = "".join(element.itertext()).strip()
        if not text or len(element):
            continue
        if tag == "CustomData":
            label = element.get("Name", "")
            if label:
                properties[label] = text
        elif tag in ("Title", "Subject", "Keyword", "Abstract"):
            properties[tag.lower()] = text
    return properties


def read_pdf(data: bytes) -> FileText:
    # Imported at the first PDF: pypdf's tables (glyph names, font metrics) take ~17 MiB of
    # every process that imports it, and the gateway and each processing worker import this
    # module whether or not a PDF ever comes (issue 16).
    import pypdf
    import pypdf.errors

    found = FileText(macros=bool(_PDF_ACTIVE.search(data)))
    try:
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        # An owner password alone (printing or copying restricted) opens with "".
        if reader.is_encrypted and not reader.decrypt(""):
            found.encrypted = True
            return found
        metadata: Mapping[str, Any] = reader.metadata or {}
        for key, value in metadata.items():
            text = str(value).strip()
            if text and not text.startswith("D:"):
                found.properties[str(key).lstrip("/").lower()] = text
        texts: list[str] = []
        size = 0
        for page in reader.pages[:MAX_PDF_PAGES]:
            text = page.extract_text() or ""
            texts.append(text)
            size += len(text)
            if size > MAX_TEXT:
                break
        found.text = "\n".join(texts)
    except (pypdf.errors.PyPdfError, ValueError, KeyError, TypeError, AttributeError) as exc:
        found.unreadable = f"the PDF could not be parsed ({exc.__class__.__name__})"
    return found


def read_ole(data: bytes) -> FileText:
    """Word/Excel/PowerPoint 97 (and WPS): text by its UTF-16 runs, macros by stream name.

    Chinese text in these formats is stored as UTF-16; the runs between control bytes are,
    near enough, the paragraphs.
    """
    found = FileText(macros=any(m in data for m in OLE_MACROS))
    if OLE_ENCRYPTED in data:
        found.encrypted = True
        return found
    # Streams start at sector boundaries, so text is at even offsets: decode from 0.
    decoded = data[: 32 << 20].decode("utf-16-le", "replace")
    lines = []
    for match in _UTF16_RUN.finditer(decoded):
        text = match.group().strip()
        if len(text) >= 2 and _common_share(text) >= 0.6:
            lines.append(text)
    found.text = "\n".join(lines)
    return found


def _common_share(text: str) -> float:
    # Binary data read as UTF-16 is full of rare ideographs; text is mostly common ones.
    wide = [c for c in text if not c.isascii()]
    if not wide:
        return 0.0
    return max(text_score(text, "gb18030"), text_score(text, "big5hkscs"))


def _parse_xml(data: bytes) -> ElementTree.Element:
    # Office files never need a DTD; one that has one is refused unread (no entity expansion).
    if _DTD.search(data[:4096]) or _DTD.search(data):
        raise Unreadable("XML with a DTD")
    try:
        return ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        raise Unreadable(f"bad XML ({exc})") from exc


def _xml_lines(zf: zipfile.ZipFile, name: str, cap: int) -> Iterator[str]:
    """The text of each paragraph-like element of one part, in document order.

    Streamed from the zip with ``iterparse``, and each element cleared once read, so that a
    large spreadsheet does not become a large tree in memory.
    """
    try:
        info = zf.getinfo(name)
    except KeyError as exc:
        raise Unreadable(f"{name} is missing") from exc
    if info.file_size > cap:
        raise Unreadable(f"{name} is larger than {cap} bytes")
    try:
        with zf.open(info) as stream:
            head = stream.read(_PROLOG)
            # Office files never need a DTD; one that has one is refused unread.
            if _DTD.search(head):
                raise Unreadable("XML with a DTD")
            inside = 0
            events = ElementTree.iterparse(_Joined(head, stream), events=("start", "end"))
            for event, element in events:
                tag = _local(element.tag)
                if event == "start":
                    inside += tag in _LINES
                    continue
                if tag in _LINES:
                    inside -= 1
                    if inside:
                        continue
                    text = "".join(element.itertext())
                    if tag.endswith(("Header", "Footer")):
                        text = _SHEET_CODES.sub(" ", text)
                    text = " ".join(text.split())
                    if text:
                        yield text
                if not inside:
                    element.clear()
    except ElementTree.ParseError as exc:
        raise Unreadable(f"bad XML ({exc})") from exc
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as exc:
        raise Unreadable(f"damaged ({exc.__class__.__name__})") from exc
    except RuntimeError as exc:
        raise Unreadable("encrypted") from exc


class _Joined(io.RawIOBase):
    """Bytes already read, then the rest of the stream they were read from."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        super().__init__()
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._head:
            size = min(len(view), len(self._head))
            view[:size] = self._head[:size]
            self._head = self._head[size:]
            return size
        data = self._rest.read(len(view))
        view[: len(data)] = data
        return len(data)


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def natural_key(name: str) -> list[int | str]:
    # slide10.xml after slide9.xml.
    return [int(p) if p.isdigit() else p for p in _DIGITS.split(name)]
