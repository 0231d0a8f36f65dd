"""Turns bytes into text as Chinese mail writes them: charsets (GB 18030, Big5), encoded words,
HTML and RTF."""

from __future__ import annotations

import base64
import binascii
import codecs
import html.parser
import quopri
import re
from email.message import Message
from email.utils import getaddresses
from typing import Final

from yizhan.daemon.extract.headers import plain_mailbox

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


# Python codecs that are no charset of mail: mail clients do not know them, so what they
# "decode" to is not what a reader sees; the bytes are read as undeclared instead.
_NOT_CHARSETS: Final = frozenset(
    {
        "undefined",
        "unicode-escape",
        "raw-unicode-escape",
        "punycode",
        "idna",
        "mbcs",
        "oem",
        "palmos",
    }
)


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
            if codecs.lookup(codec).name not in _NOT_CHARSETS:
                return data.decode(codec)
        except (UnicodeError, LookupError, ValueError):
            # An unknown or lying charset (``undefined`` raises UnicodeError, not a decode
            # error): read the bytes as if none were declared.
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    candidates = []
    for codec in ("gb18030", "big5hkscs"):
        try:
            candidates.append((text_score(data.decode(codec), codec), codec))
        except UnicodeDecodeError:
            continue
    if not candidates:
        return data.decode("gb18030", "replace")
    codec = max(candidates)[1]
    return data.decode(codec)


def text_score(text: str, codec: str) -> float:
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


def raw_header(msg: Message, name: str) -> str:
    for key, value in msg.raw_items():
        if key.lower() == name.lower():
            return str(value)
    return ""


def first_address(value: str) -> str:
    plain = plain_mailbox(value)
    if plain is not None:
        return plain
    for _name, address in getaddresses([value]):
        if address:
            return address
    return ""


def part_filename(part: Message) -> str:
    try:
        name = part.get_filename() or ""
    except (ValueError, LookupError, UnicodeError):
        name = ""
    if "=?" in name:
        name = decode_header_text(name)
    return _raw_text(name).strip()


def part_payload(part: Message) -> bytes:
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
