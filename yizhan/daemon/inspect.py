"""Reads a message's attachments for the content rules: their types, text, properties and archives.

The rules in ``routing.content`` see only what this module extracts (an
:class:`~yizhan.routing.content.model.Attachment` per file and archive member). Everything
here is blocking and runs in a worker thread; every read is bounded, because the input is
whatever a sender chose to attach:

- a file's type comes from its bytes (magic numbers; for a zip, the members it holds), never
  from its name alone;
- Office Open XML (.docx, .xlsx, .pptx), OpenDocument (.odt …) and OFD are zips of XML, read
  with :mod:`zipfile` and :mod:`xml.etree` (XML with a DTD is refused unread, so no entity
  tricks); PDFs with pypdf; Word/Excel 97 files by their UTF-16 text runs; text in UTF-8,
  GB 18030 (GBK) or Big5, whichever the bytes are;
- zips are walked member by member, nested zips too, counting declared sizes first, so that a
  zip bomb is measured from its directory and never expanded.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import html.parser
import io
import logging
import quopri
import re
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses
from typing import IO, Any, Final
from xml.etree import ElementTree

import pypdf
import pypdf.errors

from yizhan.daemon.headers import plain_header_section, plain_mailbox
from yizhan.routing.content.config import ArchiveLimits, ContentRules
from yizhan.routing.content.kinds import extension
from yizhan.routing.content.model import ArchiveFacts, Attachment

__all__ = [
    "ReadMessage",
    "decode_header_text",
    "decode_text",
    "read_file",
    "read_message",
    "sniff",
]

log = logging.getLogger("yizhan.content")

#: Characters of text kept per attachment; markings sit at the head, and a bound keeps a huge
#: spreadsheet from filling memory.
MAX_TEXT: Final = 1_000_000
#: MIME parts (and mails inside mails) nested deeper than this are not read.
MAX_NESTING: Final = 30
#: PDF pages whose text is read.
MAX_PDF_PAGES: Final = 50
#: The largest XML part of a document that is read (streamed: time, not memory, is the cost).
MAX_PART: Final = 256 * 1024 * 1024
#: Bytes of a file looked at to name its type.
SNIFF_BYTES: Final = 8192

# Charset labels as mail clients write them, and the codec that reads what they really send:
# "gb2312" mail is GBK in practice, and Big5 mail often uses HKSCS characters.
_CHARSETS: Final = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "euc-cn": "gb18030",
    "gb18030": "gb18030",
    "big5": "big5hkscs",
    "big5-hkscs": "big5hkscs",
    "cp950": "big5hkscs",
    "x-x-big5": "big5hkscs",
}
_ENCODED_WORD: Final = re.compile(
    r"=\?(?P<charset>[^?*]+)(?:\*[^?]*)?\?(?P<enc>[bBqQ])\?(?P<text>[^?]*)\?="
)
_BETWEEN_WORDS: Final = re.compile(r"(\?=)\s+(=\?)")
_DTD: Final = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)
# Bytes at the start of an XML part searched for a DTD (it can only be in the prolog).
_PROLOG: Final = 64 * 1024
_PDF_ACTIVE: Final = re.compile(rb"/(?:JavaScript|JS|Launch)\b")
_SHEET_CODES: Final = re.compile(r'&(?:"[^"]*"|\d+|[A-Za-z&])')
_DIGITS: Final = re.compile(r"(\d+)")
# What file managers leave in the zips they make (macOS resource forks, Finder and Explorer
# thumbnails): counted and scanned with the archive, not judged as files someone attached.
_JUNK: Final = re.compile(r"(?:^|/)(?:__MACOSX/|\.DS_Store$|Thumbs\.db$|ehthumbs\.db$)", re.I)

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

_OLE2: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_MAGIC: Final[tuple[tuple[int, bytes, str], ...]] = (
    (0, b"{\\rtf", "rtf"),
    (0, b"MZ", "pe"),
    (0, b"\x7fELF", "elf"),
    (0, b"\xfe\xed\xfa\xce", "macho"),
    (0, b"\xfe\xed\xfa\xcf", "macho"),
    (0, b"\xce\xfa\xed\xfe", "macho"),
    (0, b"\xcf\xfa\xed\xfe", "macho"),
    (0, b"\xca\xfe\xba\xbe", "class"),
    (0, b"L\x00\x00\x00\x01\x14\x02\x00", "lnk"),
    (0, b"#!", "script"),
    (0, b"\x89PNG\r\n\x1a\n", "png"),
    (0, b"\xff\xd8\xff", "jpeg"),
    (0, b"GIF87a", "gif"),
    (0, b"GIF89a", "gif"),
    (0, b"BM", "bmp"),
    (0, b"II*\x00", "tiff"),
    (0, b"MM\x00*", "tiff"),
    (0, b"7z\xbc\xaf\x27\x1c", "7z"),
    (0, b"Rar!\x1a\x07", "rar"),
    (0, b"\x1f\x8b", "gzip"),
    (0, b"BZh", "bzip2"),
    (0, b"\xfd7zXZ\x00", "xz"),
    (0, b"MSCF", "cab"),
    (0, b"\x78\x9f\x3e\x22", "tnef"),
    (0, b"ID3", "mp3"),
    (0, b"\xff\xfb", "mp3"),
    (257, b"ustar", "tar"),
)
_RIFF: Final = {b"WEBP": "webp", b"WAVE": "wav", b"AVI ": "avi"}
# OLE2 stream names (UTF-16LE) that tell a compound document's application.
_OLE_KINDS: Final = (
    ("WordDocument".encode("utf-16-le"), "doc"),
    ("Workbook".encode("utf-16-le"), "xls"),
    ("Book".encode("utf-16-le"), "xls"),
    ("PowerPoint Document".encode("utf-16-le"), "ppt"),
)
_OLE_MACROS: Final = ("_VBA_PROJECT".encode("utf-16-le"), "Macros".encode("utf-16-le"))
_OLE_ENCRYPTED: Final = "EncryptedPackage".encode("utf-16-le")
_OLE_EXTENSIONS: Final = {
    "docx": "docx",
    "docm": "docx",
    "xlsx": "xlsx",
    "xlsm": "xlsx",
    "pptx": "pptx",
    "pptm": "pptx",
}
# Runs of UTF-16LE text in an OLE2 file: CJK, punctuation and printable ASCII.
_UTF16_RUN: Final = re.compile(
    "[\u4e00-\u9fff\u3000-\u303f\uff00-\uffef\u2000-\u206f\u2605\u2606 -~]{2,}"
)

# compat32 keeps headers as the raw strings they are; the default policy's header objects
# cost most of the time of reading a message, on the gateway's hot path.
_PARSER: Final = BytesParser(_class=EmailMessage, policy=policy.compat32)
# The end of the header block: the first empty line.
_HEAD_END: Final = re.compile(rb"\n\r?\n")
# Parts of signed mail that are protocol, not content.
_PROTOCOL_PARTS: Final = frozenset(
    {
        "application/pgp-signature",
        "application/pkcs7-signature",
        "application/x-pkcs7-signature",
    }
)


# What a mail carries that is not one of its files: signatures, and a key sent to register.
_NOT_FILES: Final = _PROTOCOL_PARTS | {"application/pgp-keys"}


def attached_files(msg: EmailMessage) -> list[EmailMessage]:
    """The files a mail carries: its named leaf parts, inside signed or mixed multiparts too,
    but not the signature of a signed mail nor a public key (``iter_attachments`` would give
    a PGP/MIME mail's signature and its whole signed part)."""
    return [
        part
        for part in msg.walk()
        if isinstance(part, EmailMessage)
        and not part.is_multipart()
        and part.get_filename()
        and part.get_content_type() not in _NOT_FILES
    ]


@dataclass(frozen=True, kw_only=True)
class ReadMessage:
    """What the content rules need of a message, and the attachment bytes to scan."""

    subject: str
    body: str
    from_address: str
    #: Attachments, each followed by its archive members (depth first).
    attachments: tuple[Attachment, ...]
    #: (index into ``attachments``, bytes) of every file attached to the message itself; the
    #: scanner unpacks archives on its own.
    payloads: tuple[tuple[int, bytes], ...]
    forwarded_messages: int
    size: int


def read_message(raw: bytes, rules: ContentRules) -> ReadMessage:
    """Read a raw message; never raises for a malformed one (what cannot be read says so)."""
    msg = _parse(raw)
    reader = _MessageReader(rules)
    reader.walk(msg, depth=0)
    plain = "\n".join(reader.plain)
    body = plain if plain.strip() else "\n".join(reader.html)
    return ReadMessage(
        subject=decode_header_text(_raw_header(msg, "Subject")),
        body=body[:MAX_TEXT],
        from_address=_first_address(decode_header_text(_raw_header(msg, "From"))),
        attachments=tuple(reader.attachments),
        payloads=tuple(reader.payloads),
        forwarded_messages=reader.forwarded,
        size=len(raw),
    )


def _parse(raw: bytes) -> EmailMessage:
    """The message, its body read line by line only when it has parts.

    The parser walks every line of a body; a single-part body is taken whole instead, as the
    parser would have joined it, when the header block parses cleanly on its own (read by
    ``daemon.headers`` when it is plain, as most are).
    """
    plain = plain_header_section(raw)
    if plain is not None:
        fields, body_start = plain
        single = EmailMessage(policy=policy.compat32)
        for name, value in fields:
            single.set_raw(name, value)
        if single.get_content_maintype() not in ("multipart", "message"):
            single.set_payload(raw[body_start:].decode("ascii", "surrogateescape"))
            return single
    end = _HEAD_END.search(raw)
    if end is not None:
        msg = _PARSER.parsebytes(raw[: end.start() + 1])
        if (
            isinstance(msg, EmailMessage)
            and not msg.defects
            and not msg.get_payload()
            and msg.get_content_maintype() not in ("multipart", "message")
        ):
            msg.set_payload(raw[end.end() :].decode("ascii", "surrogateescape"))
            return msg
    whole = _PARSER.parsebytes(raw)
    assert isinstance(whole, EmailMessage)
    return whole


class _MessageReader:
    """Walks the MIME tree: text bodies, attachments, and mails inside the mail."""

    def __init__(self, rules: ContentRules) -> None:
        self.rules = rules
        self.plain: list[str] = []
        self.html: list[str] = []
        self.attachments: list[Attachment] = []
        self.payloads: list[tuple[int, bytes]] = []
        self.forwarded = 0

    def walk(self, part: Message, *, depth: int) -> None:
        ctype = part.get_content_type()
        if depth > MAX_NESTING:
            # Parts inside parts inside parts: a real client never nests this deep.
            self.attachments.append(
                Attachment(
                    name=ctype,
                    path=ctype,
                    declared_type=ctype,
                    sniffed="unknown",
                    unreadable=f"MIME parts nested more than {MAX_NESTING} deep",
                )
            )
            return
        if ctype in ("message/rfc822", "message/global") and part.is_multipart():
            self._message(part, depth=depth)
            return
        if ctype in _PROTOCOL_PARTS:
            # The signature of a signed message (RFC 3156, RFC 8551) is not an attachment.
            return
        if ctype == "multipart/encrypted":
            self.attachments.append(
                Attachment(
                    name="encrypted message",
                    path="encrypted message",
                    declared_type=ctype,
                    sniffed="unknown",
                    encrypted=True,
                )
            )
            return
        if ctype in ("message/partial", "message/external-body"):
            # A fragment or a pointer: what it carries cannot be checked here.
            self.attachments.append(
                Attachment(
                    name=ctype,
                    path=ctype,
                    declared_type=ctype,
                    sniffed="unknown",
                    unreadable=f"{ctype} parts cannot be checked",
                )
            )
            return
        if part.is_multipart():
            payload = part.get_payload()
            if isinstance(payload, list):
                for sub in payload:
                    if isinstance(sub, Message):
                        self.walk(sub, depth=depth + 1)
            return
        try:
            name = _filename(part)
            disposition = part.get_content_disposition()
            charset = part.get_content_charset()
        except Exception as exc:
            # Headers broken past what the parser forgives: the part is kept, unreadable.
            log.info("a %s part has unusable headers: %r", ctype, exc)
            name, disposition, charset = "", "attachment", None
        data = _payload(part)
        if ctype in ("text/plain", "text/html") and not name and disposition != "attachment":
            text = decode_text(data, charset)
            (self.plain if ctype == "text/plain" else self.html).append(
                text if ctype == "text/plain" else html_text(text)
            )
            return
        self._attach(name, data, ctype)

    def _message(self, part: Message, *, depth: int) -> None:
        # A forwarded or attached mail: counted, listed under its subject, and walked, so that
        # its attachments are checked like any other.
        self.forwarded += 1
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        if not isinstance(inner, Message):
            return
        try:
            data = inner.as_bytes(policy=policy.compat32)
        except (UnicodeError, LookupError, ValueError):
            data = str(inner).encode("utf-8", "surrogateescape")
        subject = decode_header_text(_raw_header(inner, "Subject"))
        name = f"{subject or 'message'}.eml"
        index = len(self.attachments)
        self.attachments.append(
            Attachment(
                name=name,
                path=name,
                declared_type="message/rfc822",
                sniffed="message",
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
            )
        )
        self.payloads.append((index, data))
        inner_reader = _MessageReader(self.rules)
        inner_reader.walk(inner, depth=depth + 1)
        # The forwarded mail's text is read as the text of its .eml "attachment".
        text = "\n".join(inner_reader.plain) or "\n".join(inner_reader.html)
        self.attachments[index] = dataclasses.replace(
            self.attachments[index],
            text=text[:MAX_TEXT],
            properties={"subject": subject} if subject else {},
        )
        self.forwarded += inner_reader.forwarded
        offset = len(self.attachments)
        self.attachments.extend(inner_reader.attachments)
        self.payloads.extend((offset + i, b) for i, b in inner_reader.payloads)

    def _attach(self, name: str, data: bytes, declared: str) -> None:
        index = len(self.attachments)
        self.attachments.extend(read_file(name, data, self.rules, declared_type=declared))
        self.payloads.append((index, data))


# --- One file -------------------------------------------------------------------------------------


def read_file(
    name: str,
    data: bytes,
    rules: ContentRules,
    *,
    declared_type: str = "",
) -> list[Attachment]:
    """A file as the rules see it: one attachment, then its members if it is an archive."""
    tree = _Tree(limits=rules.archives)
    return list(_read(name, name, data, tree, depth=0, declared_type=declared_type))


@dataclass(kw_only=True)
class _Tree:
    """The running count over one archive tree (an attachment and the archives inside it)."""

    limits: ArchiveLimits
    members: int = 0
    expanded: int = 0
    max_ratio: float = 0.0
    depth: int = 1
    encrypted: int = 0
    damaged: str | None = None
    #: Set once a limit is passed: nothing more is expanded.
    stopped: bool = False

    def halted(self) -> bool:
        """Whether a limit was passed (a method: nested walks change it behind a loop's back)."""
        return self.stopped

    def facts(self) -> ArchiveFacts:
        return ArchiveFacts(
            members=self.members,
            expanded=self.expanded,
            max_ratio=self.max_ratio,
            depth=self.depth,
            encrypted=self.encrypted,
            damaged=self.damaged,
        )


@dataclass(kw_only=True)
class _Read:
    """What reading a file's content found."""

    text: str = ""
    properties: dict[str, str] = field(default_factory=dict)
    macros: bool = False
    encrypted: bool = False
    unreadable: str | None = None


def _read(
    name: str,
    path: str,
    data: bytes,
    tree: _Tree,
    *,
    depth: int,
    declared_type: str = "",
) -> Iterator[Attachment]:
    zf = _open_zip(data)
    sniffed = sniff(data, name, zf=zf)
    if zf is not None and sniffed == "zip":
        members = list(_walk_zip(zf, path, tree, depth=depth))
        facts = tree.facts() if depth == 0 else None
        yield _attachment(name, path, data, depth, declared_type, sniffed, _Read(), facts)
        yield from members
        return
    try:
        found = _content(sniffed, data, zf, name)
    except _Unreadable as exc:
        found = _Read(unreadable=str(exc))
    except Exception as exc:
        # A library failing on a crafted file must not fail the message: the file is
        # reported unreadable, and the rules refuse it as such.
        log.info("reading %r (%s) failed: %r", path, sniffed, exc)
        found = _Read(unreadable=f"{sniffed} could not be parsed ({exc.__class__.__name__})")
    yield _attachment(name, path, data, depth, declared_type, sniffed, found, None)


def _attachment(
    name: str,
    path: str,
    data: bytes,
    depth: int,
    declared_type: str,
    sniffed: str,
    found: _Read,
    facts: ArchiveFacts | None,
) -> Attachment:
    return Attachment(
        name=name,
        path=path,
        depth=depth,
        declared_type=declared_type,
        sniffed=sniffed,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        text=found.text[:MAX_TEXT],
        properties=found.properties,
        macros=found.macros,
        encrypted=found.encrypted,
        unreadable=found.unreadable,
        archive=facts,
    )


class _Unreadable(Exception):
    """The content cannot be read; the message says why, in English."""


def _content(sniffed: str, data: bytes, zf: zipfile.ZipFile | None, name: str) -> _Read:
    if zf is not None and sniffed in ("docx", "xlsx", "pptx", "odt", "ods", "odp", "ofd"):
        return _read_package(sniffed, zf)
    if sniffed == "pdf":
        return _read_pdf(data)
    if sniffed in ("doc", "xls", "ppt", "ole2"):
        return _read_ole(data)
    if sniffed == "rtf":
        return _Read(text=rtf_text(data))
    if sniffed == "text":
        text = decode_text(data)
        if extension(name) in ("htm", "html"):
            text = html_text(text)
        return _Read(text=text)
    return _Read()


# --- Sniffing -------------------------------------------------------------------------------------


def sniff(data: bytes, name: str = "", *, zf: zipfile.ZipFile | None = None) -> str:
    """The type of a file from its bytes: a key of ``routing.content.kinds.TYPES``.

    A zip is told apart by its members (Office Open XML, OpenDocument, OFD, Java, Android);
    an OLE2 compound file by its stream names (Word, Excel, PowerPoint 97), or, when it is
    an encrypted Office Open XML file, by the extension it claims.
    """
    head = data[:SNIFF_BYTES]
    if not data:
        return "text"
    if b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return _zip_type(zf if zf is not None else _open_zip(data))
    if head.startswith(_OLE2):
        for marker, kind in _OLE_KINDS:
            if marker in data:
                return kind
        if _OLE_ENCRYPTED in data:
            return _OLE_EXTENSIONS.get(extension(name), "ole2")
        return "ole2"
    if head[:4] == b"RIFF" and head[8:12] in _RIFF:
        return _RIFF[head[8:12]]
    if head[4:8] == b"ftyp":
        return "mp4"
    for offset, magic, kind in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return kind
    if _looks_like_text(head):
        return "text"
    return "unknown"


def _zip_type(zf: zipfile.ZipFile | None) -> str:
    if zf is None:
        return "zip"
    names = set(zf.namelist())
    if "word/document.xml" in names:
        return "docx"
    if "xl/workbook.xml" in names:
        return "xlsx"
    if "ppt/presentation.xml" in names:
        return "pptx"
    if "OFD.xml" in names:
        return "ofd"
    if "mimetype" in names:
        try:
            mimetype = _member(zf, "mimetype", 200).decode("ascii", "replace").strip()
        except _Unreadable:
            mimetype = ""
        for suffix, kind in (
            ("opendocument.text", "odt"),
            ("opendocument.spreadsheet", "ods"),
            ("opendocument.presentation", "odp"),
        ):
            if mimetype.endswith(suffix) or mimetype.endswith(suffix + "-template"):
                return kind
    if "AndroidManifest.xml" in names and "classes.dex" in names:
        return "apk"
    if "META-INF/MANIFEST.MF" in names or any(n.endswith(".class") for n in names):
        return "jar"
    return "zip"


def _looks_like_text(head: bytes) -> bool:
    if head.startswith((b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf")):
        return True
    if b"\x00" in head:
        return False
    controls = sum(1 for b in head if b < 9 or 13 < b < 32)
    return controls <= len(head) // 100


# --- Zips -----------------------------------------------------------------------------------------


def _open_zip(data: bytes) -> zipfile.ZipFile | None:
    if not data.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return None
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        return None


def _walk_zip(zf: zipfile.ZipFile, path: str, tree: _Tree, *, depth: int) -> Iterator[Attachment]:
    """The members of one zip, nested zips walked too, within the tree's limits.

    The directory is measured first (declared sizes and ratios of every member); only if
    the tree stays within the limits are members read, one at a time.
    """
    limits = tree.limits
    tree.depth = max(tree.depth, depth + 1)
    infos = [i for i in zf.infolist() if not i.is_dir()]
    tree.members += len(infos)
    for info in infos:
        tree.expanded += info.file_size
        if info.file_size >= limits.ratio_floor:
            ratio = info.file_size / max(info.compress_size, 1)
            tree.max_ratio = max(tree.max_ratio, ratio)
        if info.flag_bits & 0x1:
            tree.encrypted += 1
    if (
        tree.members > limits.max_members
        or tree.expanded > limits.max_expanded
        or tree.max_ratio > limits.max_ratio
    ):
        tree.stopped = True
    for info in infos:
        # Reading a nested zip may pass a limit; then nothing more is expanded.
        if tree.halted():
            return
        name = _member_name(info)
        if _JUNK.search(name):
            continue
        member_path = f"{path}/{name}"
        if info.flag_bits & 0x1:
            yield Attachment(
                name=name, path=member_path, depth=depth + 1, size=info.file_size, encrypted=True
            )
            continue
        if info.file_size > limits.max_member:
            yield Attachment(
                name=name,
                path=member_path,
                depth=depth + 1,
                size=info.file_size,
                unreadable=f"larger than {limits.max_member} bytes, not read inside the archive",
            )
            continue
        try:
            data = _member(zf, info.filename, limits.max_member)
        except _Unreadable as exc:
            tree.damaged = tree.damaged or f"{name}: {exc}"
            continue
        inner = _open_zip(data)
        if (
            inner is not None
            and sniff(data, name, zf=inner) == "zip"
            and depth + 2 > limits.max_depth
        ):
            # One level too deep: counted, not expanded.
            tree.depth = max(tree.depth, depth + 2)
            tree.stopped = True
            return
        yield from _read(name, member_path, data, tree, depth=depth + 1)


def _member(zf: zipfile.ZipFile, name: str, cap: int) -> bytes:
    """One member's bytes, refusing to expand more than ``cap``."""
    try:
        info = zf.getinfo(name)
        if info.file_size > cap:
            raise _Unreadable(f"{name} is larger than {cap} bytes")
        with zf.open(info) as stream:
            data = stream.read(cap + 1)
    except _Unreadable:
        raise
    except KeyError as exc:
        raise _Unreadable(f"{name} is missing") from exc
    except RuntimeError as exc:
        raise _Unreadable("encrypted") from exc
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as exc:
        raise _Unreadable(f"damaged ({exc.__class__.__name__})") from exc
    if len(data) > cap:
        raise _Unreadable(f"{name} expands past {cap} bytes")
    return data


def _member_name(info: zipfile.ZipInfo) -> str:
    # Without the UTF-8 flag, zipfile reads names as CP437; Chinese Windows writes them in
    # GBK, so the bytes are taken back and read again.
    if info.flag_bits & 0x800:
        return info.filename
    try:
        raw = info.filename.encode("cp437")
    except UnicodeEncodeError:
        return info.filename
    return decode_text(raw)


# --- Documents ------------------------------------------------------------------------------------


def _read_package(kind: str, zf: zipfile.ZipFile) -> _Read:
    """Office Open XML, OpenDocument or OFD: text (page headers first) and properties."""
    names = zf.namelist()
    found = _Read()
    if kind in ("docx", "xlsx", "pptx"):
        parts = _ooxml_parts(kind, names)
        found.properties = _ooxml_properties(zf, names)
        content_types = (
            _member(zf, "[Content_Types].xml", 1 << 20) if "[Content_Types].xml" in names else b""
        )
        found.macros = any(n.lower().endswith("vbaproject.bin") for n in names) or (
            b"macroEnabled" in content_types
        )
    elif kind == "ofd":
        parts = sorted((n for n in names if n.lower().endswith("content.xml")), key=_natural)
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
        headers = sorted((n for n in names if re.match(r"word/header\d*\.xml$", n)), key=_natural)
        footers = sorted((n for n in names if re.match(r"word/footer\d*\.xml$", n)), key=_natural)
        return [*headers, "word/document.xml", *footers]
    if kind == "xlsx":
        sheets = sorted(
            (n for n in names if re.match(r"xl/worksheets/sheet\d*\.xml$", n)), key=_natural
        )
        shared = ["xl/sharedStrings.xml"] if "xl/sharedStrings.xml" in names else []
        # A sheet holds its page header (where a marking goes) and inline strings; the
        # shared strings hold the cell text.
        return [*sheets, *shared]
    return sorted((n for n in names if re.match(r"ppt/slides/slide\d+\.xml$", n)), key=_natural)


def _ooxml_properties(zf: zipfile.ZipFile, names: list[str]) -> dict[str, str]:
    properties: dict[str, str] = {}
    if "docProps/core.xml" in names:
        root = _parse_xml(_member(zf, "docProps/core.xml", 1 << 20))
        for child in root:
            text = "".join(child.itertext()).strip()
            if text:
                properties[_local(child.tag)] = text
    if "docProps/custom.xml" in names:
        root = _parse_xml(_member(zf, "docProps/custom.xml", 1 << 20))
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
    root = _parse_xml(_member(zf, "meta.xml", 1 << 20))
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
    root = _parse_xml(_member(zf, "OFD.xml", 1 << 20))
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


def _read_pdf(data: bytes) -> _Read:
    found = _Read(macros=bool(_PDF_ACTIVE.search(data)))
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


def _read_ole(data: bytes) -> _Read:
    """Word/Excel/PowerPoint 97 (and WPS): text by its UTF-16 runs, macros by stream name.

    Chinese text in these formats is stored as UTF-16; the runs between control bytes are,
    near enough, the paragraphs.
    """
    found = _Read(macros=any(m in data for m in _OLE_MACROS))
    if _OLE_ENCRYPTED in data:
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
    return max(_score(text, "gb18030"), _score(text, "big5hkscs"))


# --- XML ------------------------------------------------------------------------------------------


def _parse_xml(data: bytes) -> ElementTree.Element:
    # Office files never need a DTD; one that has one is refused unread (no entity expansion).
    if _DTD.search(data[:4096]) or _DTD.search(data):
        raise _Unreadable("XML with a DTD")
    try:
        return ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        raise _Unreadable(f"bad XML ({exc})") from exc


def _xml_lines(zf: zipfile.ZipFile, name: str, cap: int) -> Iterator[str]:
    """The text of each paragraph-like element of one part, in document order.

    Streamed from the zip with ``iterparse``, and each element cleared once read, so that a
    large spreadsheet does not become a large tree in memory.
    """
    try:
        info = zf.getinfo(name)
    except KeyError as exc:
        raise _Unreadable(f"{name} is missing") from exc
    if info.file_size > cap:
        raise _Unreadable(f"{name} is larger than {cap} bytes")
    try:
        with zf.open(info) as stream:
            head = stream.read(_PROLOG)
            # Office files never need a DTD; one that has one is refused unread.
            if _DTD.search(head):
                raise _Unreadable("XML with a DTD")
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
        raise _Unreadable(f"bad XML ({exc})") from exc
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as exc:
        raise _Unreadable(f"damaged ({exc.__class__.__name__})") from exc
    except RuntimeError as exc:
        raise _Unreadable("encrypted") from exc


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


def _natural(name: str) -> list[int | str]:
    # slide10.xml after slide9.xml.
    return [int(p) if p.isdigit() else p for p in _DIGITS.split(name)]


# --- Text and headers -----------------------------------------------------------------------------


def decode_text(data: bytes, declared: str | None = None) -> str:
    """Bytes as text: the declared charset if it fits, else UTF-8, GB 18030 or Big5.

    GB 18030 and Big5 share their byte ranges; when both read the bytes without error, the
    one whose characters are the more common of its own script wins (GB 2312 level-1 hanzi,
    Big5 frequent characters).
    """
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", "replace")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", "replace")
    if declared:
        codec = _CHARSETS.get(declared.lower(), declared.lower())
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    candidates = []
    for codec in ("gb18030", "big5hkscs"):
        try:
            candidates.append((_score(data.decode(codec), codec), codec))
        except UnicodeDecodeError:
            continue
    if not candidates:
        return data.decode("gb18030", "replace")
    codec = max(candidates)[1]
    return data.decode(codec)


def _score(text: str, codec: str) -> float:
    wide = [c for c in text if ord(c) > 0x7F]
    if not wide:
        return 1.0
    common = 0
    for char in wide:
        try:
            encoded = char.encode("gb2312" if codec == "gb18030" else "big5")
        except UnicodeEncodeError:
            continue
        lead = encoded[0]
        if codec == "gb18030":
            # GB 2312 symbols (A1-A3) and level-1 hanzi (B0-D7).
            common += 0xB0 <= lead <= 0xD7 or 0xA1 <= lead <= 0xA3
        else:
            # Big5 symbols (A1-A3) and frequent characters (A4-C6).
            common += 0xA1 <= lead <= 0xC6
    return common / len(wide)


def decode_header_text(value: str) -> str:
    """A header value as text: RFC 2047 words in any charset, and raw 8-bit GBK/Big5/UTF-8.

    Mail clients label GBK as "gb2312" and send 8-bit headers without encoding; both are read
    as what they are. Undecodable pieces become U+FFFD rather than an error.
    """
    if not value:
        return ""
    value = _BETWEEN_WORDS.sub(r"\1\2", value)
    pieces: list[str] = []
    position = 0
    for match in _ENCODED_WORD.finditer(value):
        pieces.append(_raw_text(value[position : match.start()]))
        pieces.append(_encoded_word(match))
        position = match.end()
    pieces.append(_raw_text(value[position:]))
    return " ".join("".join(pieces).split())


def _encoded_word(match: re.Match[str]) -> str:
    text = match["text"]
    try:
        if match["enc"].lower() == "b":
            data = base64.b64decode(text + "=" * (-len(text) % 4))
        else:
            data = quopri.decodestring(
                text.replace("_", " ").encode("ascii", "replace"), header=True
            )
    except (binascii.Error, ValueError):
        return match.group()
    return decode_text(data, match["charset"])


def _raw_text(text: str) -> str:
    # 8-bit header bytes reach here as lone surrogates (surrogateescape); read them again.
    if any("\udc80" <= c <= "\udcff" for c in text):
        return decode_text(text.encode("utf-8", "surrogateescape"))
    return text


def _raw_header(msg: Message, name: str) -> str:
    for key, value in msg.raw_items():
        if key.lower() == name.lower():
            return str(value)
    return ""


def _first_address(value: str) -> str:
    plain = plain_mailbox(value)
    if plain is not None:
        return plain
    for _name, address in getaddresses([value]):
        if address:
            return address
    return ""


def _filename(part: Message) -> str:
    try:
        name = part.get_filename() or ""
    except (ValueError, LookupError, UnicodeError):
        name = ""
    if "=?" in name:
        name = decode_header_text(name)
    return _raw_text(name).strip()


def _payload(part: Message) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except (ValueError, LookupError, UnicodeError):
        payload = None
    if isinstance(payload, bytes):
        return payload
    raw = part.get_payload()
    return raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""


class _HtmlText(html.parser.HTMLParser):
    """Collects the text of an HTML document, a line per block."""

    BLOCKS: Final = frozenset(
        {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "title", "table"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_text(markup: str) -> str:
    """The text of an HTML body or file, a line per block element."""
    parser = _HtmlText()
    try:
        parser.feed(markup)
        parser.close()
    except (AssertionError, ValueError):
        pass
    return "\n".join(" ".join(line.split()) for line in "".join(parser.parts).splitlines())


_RTF_TOKEN: Final = re.compile(
    rb"\\u(-?\d+)\s?\??|\\'([0-9a-fA-F]{2})|\\(par|line|row|cell|tab)\b ?"
    rb"|\\[a-zA-Z]+-?\d* ?|\\.|[{}]|[^\\{}]+"
)
# Destinations whose text is not the document's: fonts, colours, styles, pictures, "\\*" ones.
_RTF_SKIPPED: Final = (b"\\*", b"\\fonttbl", b"\\colortbl", b"\\stylesheet", b"\\info", b"\\pict")
_RTF_CODEPAGE: Final = re.compile(rb"\\ansicpg(\d+)")


def rtf_text(data: bytes) -> str:
    """The text of an RTF document (\\uN and \\'hh escapes in its code page), roughly."""
    match = _RTF_CODEPAGE.search(data[:4096])
    codec = {"936": "gb18030", "950": "big5hkscs", "65001": "utf-8"}.get(
        match.group(1).decode() if match else "", "cp1252"
    )
    out: list[str] = []
    pending = bytearray()
    skip_depth = 0
    depth = 0

    def flush() -> None:
        if pending:
            out.append(pending.decode(codec, "replace"))
            pending.clear()

    for token in _RTF_TOKEN.finditer(data[: 32 << 20]):
        whole = token.group()
        if whole == b"{":
            depth += 1
            continue
        if whole == b"}":
            if skip_depth and depth <= skip_depth:
                skip_depth = 0
            depth -= 1
            continue
        if whole.startswith(_RTF_SKIPPED):
            skip_depth = skip_depth or depth
            continue
        if skip_depth:
            continue
        if token.group(1) is not None:
            flush()
            out.append(chr(int(token.group(1)) % 65536))
        elif token.group(2) is not None:
            pending.append(int(token.group(2), 16))
        elif token.group(3) is not None:
            flush()
            out.append("\n" if token.group(3) in (b"par", b"line", b"row") else " ")
        elif whole.startswith(b"\\"):
            continue
        else:
            flush()
            out.append(whole.decode(codec, "replace").replace("\r", "").replace("\n", ""))
    flush()
    return "".join(out)
