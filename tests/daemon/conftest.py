"""Fixtures for the content checks: files of every kind the tests build, and the test clamd.

Nothing here is downloaded: documents are written with zipfile and reportlab, the virus is the
EICAR test string (assembled here so that no scanner flags this source), and clamd is the one
``scripts/clamd.sh`` starts with a signature database it writes (``make services``).
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

#: The EICAR anti-virus test file (68 bytes), in two halves.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
A = "http://schemas.openxmlformats.org/drawingml/2006/main"
S = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


@pytest.fixture
def clamd_socket() -> str:
    """The test clamd's socket; the test fails (not skips) when there is none."""
    path = os.environ.get("YIZHAN_TEST_CLAMD", "")
    if not path or not Path(path).exists():
        pytest.fail(
            "YIZHAN_TEST_CLAMD does not name a clamd socket: run `scripts/clamd.sh` "
            "(`make services`) and export YIZHAN_TEST_CLAMD=/tmp/yizhan-clamd/clamd.sock"
        )
    return path


class Files:
    """Builds the files the content tests attach."""

    eicar = EICAR

    @staticmethod
    def zip(members: Mapping[str, bytes], *, utf8_names: bool = True) -> bytes:
        """A zip of ``members`` (deflated); names in GBK without the UTF-8 flag if asked."""
        buffer = io.BytesIO()
        renames: dict[bytes, bytes] = {}
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            for n, (name, data) in enumerate(members.items()):
                if utf8_names or name.isascii():
                    zf.writestr(name, data)
                    continue
                # Chinese Windows writes GBK names without the UTF-8 flag; zipfile would not,
                # so an ASCII stand-in of the same length is written and swapped afterwards.
                raw = name.encode("gbk")
                stand_in = f"{n:0{len(raw)}d}".encode()
                renames[stand_in] = raw
                zf.writestr(stand_in.decode(), data)
        data = buffer.getvalue()
        for stand_in, raw in renames.items():
            data = data.replace(stand_in, raw)
        return data

    @staticmethod
    def nested_zip(depth: int, inner: Mapping[str, bytes]) -> bytes:
        """A zip ``depth`` levels deep: depth 1 is a zip of ``inner``."""
        data = Files.zip(inner)
        for level in range(1, depth):
            data = Files.zip({f"level{level}.zip": data})
        return data

    @staticmethod
    def zip_bomb(size: int = 300 * 1024 * 1024) -> bytes:
        """A zip holding one member of ``size`` zero bytes (about 1000:1)."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            info = zipfile.ZipInfo("zeros.bin")
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as out:
                block = bytes(1 << 20)
                for _ in range(size >> 20):
                    out.write(block)
        return buffer.getvalue()

    @staticmethod
    def encrypted_zip(name: str, data: bytes) -> bytes:
        """A zip whose member is flagged encrypted (ZipCrypto), as a password-protected one."""
        plain = Files.zip({name: data})
        # Set bit 0 of the general-purpose flags in the local and central headers.
        out = bytearray(plain)
        for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
            start = out.find(signature)
            while start != -1:
                flags = struct.unpack_from("<H", out, start + offset)[0] | 0x1
                struct.pack_into("<H", out, start + offset, flags)
                start = out.find(signature, start + 4)
        return bytes(out)

    @staticmethod
    def docx(
        paragraphs: Sequence[str],
        *,
        headers: Sequence[str] = (),
        core: Mapping[str, str] | None = None,
        custom: Mapping[str, str] | None = None,
        macros: bool = False,
    ) -> bytes:
        """A Word document: page header paragraphs, body paragraphs, core and custom properties."""

        def body(texts: Sequence[str]) -> str:
            return "".join(f"<w:p><w:r><w:t>{escape(t)}</w:t></w:r></w:p>" for t in texts)

        members = {
            "[Content_Types].xml": _content_types(
                "application/vnd.ms-word.document.macroEnabled.main+xml"
                if macros
                else "application/vnd.openxmlformats-officedocument.wordprocessingml."
                "document.main+xml"
            ),
            "word/document.xml": f'<w:document xmlns:w="{W}"><w:body>{body(paragraphs)}'
            "</w:body></w:document>".encode(),
        }
        if headers:
            members["word/header1.xml"] = f'<w:hdr xmlns:w="{W}">{body(headers)}</w:hdr>'.encode()
        members.update(_properties(core, custom))
        if macros:
            members["word/vbaProject.bin"] = b"\xd0\xcf\x11\xe0" + b"\x00" * 60
        return Files.zip(members)

    @staticmethod
    def xlsx(
        cells: Sequence[str],
        *,
        header: str = "",
        core: Mapping[str, str] | None = None,
        custom: Mapping[str, str] | None = None,
    ) -> bytes:
        """An Excel workbook: shared strings, an optional page header."""
        strings = "".join(f"<si><t>{escape(c)}</t></si>" for c in cells)
        head = (
            f"<headerFooter><oddHeader>&amp;C{escape(header)}</oddHeader></headerFooter>"
            if header
            else ""
        )
        members = {
            "[Content_Types].xml": _content_types("application/vnd.ms-excel"),
            "xl/workbook.xml": f'<workbook xmlns="{S}"/>'.encode(),
            "xl/sharedStrings.xml": f'<sst xmlns="{S}">{strings}</sst>'.encode(),
            "xl/worksheets/sheet1.xml": f'<worksheet xmlns="{S}"><sheetData/>{head}'
            "</worksheet>".encode(),
        }
        members.update(_properties(core, custom))
        return Files.zip(members)

    @staticmethod
    def pptx(slides: Sequence[Sequence[str]], *, core: Mapping[str, str] | None = None) -> bytes:
        """A PowerPoint presentation, one list of paragraphs per slide."""
        members = {
            "[Content_Types].xml": _content_types("application/vnd.ms-powerpoint"),
            "ppt/presentation.xml": b"<p:presentation xmlns:p='urn:p'/>",
        }
        for n, texts in enumerate(slides, start=1):
            paragraphs = "".join(f"<a:p><a:r><a:t>{escape(t)}</a:t></a:r></a:p>" for t in texts)
            members[f"ppt/slides/slide{n}.xml"] = (
                f"<p:sld xmlns:p='urn:p' xmlns:a='{A}'><p:txBody>{paragraphs}</p:txBody></p:sld>"
            ).encode()
        members.update(_properties(core, None))
        return Files.zip(members)

    @staticmethod
    def odt(
        paragraphs: Sequence[str],
        *,
        title: str = "",
        user_defined: Mapping[str, str] | None = None,
        macros: bool = False,
    ) -> bytes:
        """An OpenDocument text with meta.xml properties."""
        text_ns = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
        office = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
        meta_ns = "urn:oasis:names:tc:opendocument:xmlns:meta:1.0"
        dc = "http://purl.org/dc/elements/1.1/"
        body = "".join(f"<text:p>{escape(p)}</text:p>" for p in paragraphs)
        user = "".join(
            f'<meta:user-defined meta:name="{escape(k)}">{escape(v)}</meta:user-defined>'
            for k, v in (user_defined or {}).items()
        )
        members = {
            "mimetype": b"application/vnd.oasis.opendocument.text",
            "content.xml": f'<office:document-content xmlns:office="{office}" '
            f'xmlns:text="{text_ns}"><office:body><office:text>{body}</office:text>'
            "</office:body></office:document-content>".encode(),
            "meta.xml": f'<office:document-meta xmlns:office="{office}" xmlns:meta="{meta_ns}" '
            f'xmlns:dc="{dc}"><office:meta><dc:title>{escape(title)}</dc:title>{user}'
            "</office:meta></office:document-meta>".encode(),
        }
        if macros:
            members["Basic/Standard/Module1.xml"] = b"<script:module/>"
        return Files.zip(members)

    @staticmethod
    def pdf(
        lines: Sequence[str],
        *,
        title: str = "",
        subject: str = "",
        keywords: str = "",
        javascript: bool = False,
    ) -> bytes:
        """A PDF with Chinese text (a built-in CID font: no font files needed) and metadata."""
        from reportlab.pdfbase import pdfmetrics
        from reportlab.pdfbase.cidfonts import UnicodeCIDFont
        from reportlab.pdfgen import canvas

        pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
        buffer = io.BytesIO()
        page = canvas.Canvas(buffer)
        page.setFont("STSong-Light", 14)
        for n, line in enumerate(lines):
            page.drawString(72, 780 - 20 * n, line)
        page.setTitle(title)
        page.setSubject(subject)
        page.setKeywords(keywords)
        page.showPage()
        page.save()
        data = buffer.getvalue()
        if javascript:
            from pypdf import PdfReader, PdfWriter

            writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
            script = "app.alert('x');"
            try:
                from pypdf.actions import JavaScript  # pypdf 7

                writer.add_open_action(JavaScript(script))
            except ImportError:
                writer.add_js(script)
            out = io.BytesIO()
            writer.write(out)
            data = out.getvalue()
        return data

    @staticmethod
    def ole_doc(paragraphs: Sequence[str], *, macros: bool = False) -> bytes:
        """A stand-in Word 97 file: the OLE2 signature, its stream names and UTF-16 text."""
        parts = [b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", bytes(504)]
        parts.append("WordDocument".encode("utf-16-le") + bytes(8))
        if macros:
            parts.append("_VBA_PROJECT".encode("utf-16-le") + bytes(8))
        for text in paragraphs:
            parts.append(text.encode("utf-16-le") + b"\r\x00")
        data = b"".join(parts)
        return data + bytes(-len(data) % 512)

    @staticmethod
    def exe() -> bytes:
        """The start of a Windows program (an MZ header and a PE signature)."""
        header = bytearray(b"MZ" + bytes(126))
        struct.pack_into("<I", header, 0x3C, 0x80)
        return bytes(header) + b"PE\x00\x00" + bytes(200)

    @staticmethod
    def png() -> bytes:
        """A 1×1 PNG."""

        def chunk(kind: bytes, body: bytes) -> bytes:
            return (
                struct.pack(">I", len(body))
                + kind
                + body
                + struct.pack(">I", zlib.crc32(kind + body))
            )

        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\x00"))
            + chunk(b"IEND", b"")
        )


def _content_types(main: str) -> bytes:
    return (
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        f'<Override PartName="/main" ContentType="{main}"/></Types>'
    ).encode()


def _properties(
    core: Mapping[str, str] | None, custom: Mapping[str, str] | None
) -> Iterator[tuple[str, bytes]]:
    if core:
        fields = "".join(f"<dc:{k}>{escape(v)}</dc:{k}>" for k, v in core.items())
        yield (
            "docProps/core.xml",
            '<cp:coreProperties xmlns:cp="urn:cp" xmlns:dc="http://purl.org/dc/elements/1.1/">'
            f"{fields}</cp:coreProperties>".encode(),
        )
    if custom:
        props = "".join(
            f'<property fmtid="x" pid="{n}" name="{escape(k)}"><vt:lpwstr>{escape(v)}'
            "</vt:lpwstr></property>"
            for n, (k, v) in enumerate(custom.items(), start=2)
        )
        yield (
            "docProps/custom.xml",
            f'<Properties xmlns:vt="urn:vt">{props}</Properties>'.encode(),
        )


@pytest.fixture(scope="session")
def content_files() -> type[Files]:
    """The file builders."""
    return Files
