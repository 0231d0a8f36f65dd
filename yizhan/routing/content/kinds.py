"""The table of file types: what each type the sniffer names is, and which names and MIME types
make a file executable whatever its bytes say.

``daemon.extract`` names a type from a file's bytes (magic numbers, the members of a zip); the
rules look the type up here. The IT department allows types by these keys in the rules file
(``[content.types] allowed``) and sets size limits by kind (``[content.sizes]``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

__all__ = [
    "EXECUTABLE_EXTENSIONS",
    "EXECUTABLE_MIME_TYPES",
    "KINDS",
    "TYPES",
    "FileType",
    "extension",
    "kind_of",
]

#: The kinds of files, each with its own size limit.
KINDS: Final = (
    "document",
    "image",
    "archive",
    "text",
    "media",
    "message",
    "executable",
    "other",
)


@dataclass(frozen=True, kw_only=True)
class FileType:
    """One type: its kind, a label for people, the extensions it usually has."""

    kind: str
    label: str
    extensions: tuple[str, ...] = ()


def _t(kind: str, label: str, *extensions: str) -> FileType:
    return FileType(kind=kind, label=label, extensions=extensions)


#: Every type the sniffer can name.
TYPES: Final[Mapping[str, FileType]] = MappingProxyType(
    {
        # Documents.
        "pdf": _t("document", "PDF", "pdf"),
        "docx": _t("document", "Word (docx)", "docx", "docm", "dotx", "dotm"),
        "xlsx": _t("document", "Excel (xlsx)", "xlsx", "xlsm", "xltx", "xltm", "xlam"),
        "pptx": _t("document", "PowerPoint (pptx)", "pptx", "pptm", "ppsx", "ppsm", "potx"),
        "odt": _t("document", "OpenDocument text", "odt", "ott"),
        "ods": _t("document", "OpenDocument spreadsheet", "ods", "ots"),
        "odp": _t("document", "OpenDocument presentation", "odp", "otp"),
        "ofd": _t("document", "OFD (GB/T 33190)", "ofd"),
        "rtf": _t("document", "RTF", "rtf"),
        "doc": _t("document", "Word 97-2003 / WPS", "doc", "dot", "wps"),
        "xls": _t("document", "Excel 97-2003 / WPS", "xls", "xlt", "et"),
        "ppt": _t("document", "PowerPoint 97-2003 / WPS", "ppt", "pps", "pot", "dps"),
        # Images.
        "png": _t("image", "PNG", "png"),
        "jpeg": _t("image", "JPEG", "jpg", "jpeg"),
        "gif": _t("image", "GIF", "gif"),
        "bmp": _t("image", "BMP", "bmp"),
        "tiff": _t("image", "TIFF", "tif", "tiff"),
        "webp": _t("image", "WebP", "webp"),
        # Archives: only zip can be opened and checked inside.
        "zip": _t("archive", "ZIP", "zip"),
        "7z": _t("archive", "7-Zip", "7z"),
        "rar": _t("archive", "RAR", "rar"),
        "gzip": _t("archive", "gzip", "gz", "tgz"),
        "bzip2": _t("archive", "bzip2", "bz2"),
        "xz": _t("archive", "xz", "xz"),
        "tar": _t("archive", "tar", "tar"),
        "cab": _t("archive", "Windows cabinet", "cab"),
        # Text.
        "text": _t("text", "text", "txt", "csv", "log", "md", "xml", "json", "htm", "html"),
        # Sound and video.
        "mp3": _t("media", "MP3", "mp3"),
        "mp4": _t("media", "MP4", "mp4", "m4a", "mov"),
        "wav": _t("media", "WAV", "wav"),
        "avi": _t("media", "AVI", "avi"),
        # A mail inside the mail.
        "message": _t("message", "mail message", "eml"),
        # Programs.
        "pe": _t("executable", "Windows program", "exe", "dll", "scr", "sys", "com"),
        "elf": _t("executable", "Linux program", "so", "bin"),
        "macho": _t("executable", "macOS program", "dylib"),
        "script": _t("executable", "script", "sh", "py", "pl"),
        "jar": _t("executable", "Java archive", "jar"),
        "apk": _t("executable", "Android app", "apk"),
        "lnk": _t("executable", "Windows shortcut", "lnk"),
        "class": _t("executable", "Java class", "class"),
        # Anything else.
        "ole2": _t("other", "unknown compound document", "msi"),
        "tnef": _t("other", "Outlook winmail.dat (TNEF)", "dat"),
        "unknown": _t("other", "unknown type"),
    }
)

#: File name extensions that run code when opened, whatever the bytes look like: a .vbs is
#: text, and Windows runs it all the same.
EXECUTABLE_EXTENSIONS: Final = frozenset(
    {
        "exe", "dll", "com", "scr", "pif", "cpl", "sys", "msi", "msp", "mst", "bat", "cmd",
        "vbs", "vbe", "js", "jse", "wsf", "wsh", "ps1", "psm1", "psd1", "sh", "bash", "hta",
        "jar", "apk", "lnk", "reg", "inf", "chm", "msc", "gadget", "application", "scf",
        "iso", "img", "vhd", "vhdx", "py", "pl", "rb", "elf", "so", "dylib", "app", "class",
    }
)  # fmt: skip

#: Declared MIME types of programs.
EXECUTABLE_MIME_TYPES: Final = frozenset(
    {
        "application/x-msdownload",
        "application/x-msdos-program",
        "application/x-dosexec",
        "application/x-executable",
        "application/x-sharedlib",
        "application/x-sh",
        "application/x-bat",
        "application/x-msi",
        "application/x-ms-installer",
        "application/vnd.microsoft.portable-executable",
        "application/java-archive",
        "application/vnd.android.package-archive",
        "application/hta",
        "application/x-ms-shortcut",
        "application/x-python-code",
        "text/x-python",
        "text/x-shellscript",
        "application/javascript",
        "text/javascript",
        "text/vbscript",
    }
)


def extension(name: str) -> str:
    """The last extension of a file name, lower-case, without the dot ("" if none)."""
    stem, dot, ext = name.rpartition(".")
    return ext.strip().lower() if dot and stem and "/" not in ext else ""


def kind_of(sniffed: str) -> str:
    """The kind of a sniffed type ("other" for a type not in the table)."""
    info = TYPES.get(sniffed)
    return info.kind if info else "other"
