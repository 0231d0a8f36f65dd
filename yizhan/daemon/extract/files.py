"""Reads one attached file: its type from its bytes, its text and properties, and the members of
an archive, walked with declared sizes counted first so that a zip bomb is never expanded."""

from __future__ import annotations

import hashlib
import io
import logging
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from yizhan.daemon.extract.documents import (
    MAX_TEXT,
    OLE_ENCRYPTED,
    FileText,
    Unreadable,
    read_member,
    read_ole,
    read_package,
    read_pdf,
)
from yizhan.daemon.extract.text import decode_text, html_text, rtf_text
from yizhan.routing.content.config import ArchiveLimits, ContentRules
from yizhan.routing.content.kinds import extension
from yizhan.routing.content.model import ArchiveFacts, Attachment

log = logging.getLogger("yizhan.content")

#: Bytes of a file looked at to name its type.
SNIFF_BYTES: Final = 8192

# What file managers leave in the zips they make (macOS resource forks, Finder and Explorer
# thumbnails): counted and scanned with the archive, not judged as files someone attached.
_JUNK: Final = re.compile(r"(?:^|/)(?:__MACOSX/|\.DS_Store$|Thumbs\.db$|ehthumbs\.db$)", re.I)

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

_OLE_EXTENSIONS: Final = {
    "docx": "docx",
    "docm": "docx",
    "xlsx": "xlsx",
    "xlsm": "xlsx",
    "pptx": "pptx",
    "pptm": "pptx",
}


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
        yield _attachment(name, path, data, depth, declared_type, sniffed, FileText(), facts)
        yield from members
        return
    try:
        found = _content(sniffed, data, zf, name)
    except Unreadable as exc:
        found = FileText(unreadable=str(exc))
    except Exception as exc:
        # A library failing on a crafted file must not fail the message: the file is
        # reported unreadable, and the rules refuse it as such.
        log.info("reading %r (%s) failed: %r", path, sniffed, exc)
        found = FileText(unreadable=f"{sniffed} could not be parsed ({exc.__class__.__name__})")
    yield _attachment(name, path, data, depth, declared_type, sniffed, found, None)


def _attachment(
    name: str,
    path: str,
    data: bytes,
    depth: int,
    declared_type: str,
    sniffed: str,
    found: FileText,
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


def _content(sniffed: str, data: bytes, zf: zipfile.ZipFile | None, name: str) -> FileText:
    if zf is not None and sniffed in ("docx", "xlsx", "pptx", "odt", "ods", "odp", "ofd"):
        return read_package(sniffed, zf)
    if sniffed == "pdf":
        return read_pdf(data)
    if sniffed in ("doc", "xls", "ppt", "ole2"):
        return read_ole(data)
    if sniffed == "rtf":
        return FileText(text=rtf_text(data))
    if sniffed == "text":
        text = decode_text(data)
        if extension(name) in ("htm", "html"):
            text = html_text(text)
        return FileText(text=text)
    return FileText()


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
        if OLE_ENCRYPTED in data:
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
            mimetype = read_member(zf, "mimetype", 200).decode("ascii", "replace").strip()
        except Unreadable:
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
            data = read_member(zf, info.filename, limits.max_member)
        except Unreadable as exc:
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
