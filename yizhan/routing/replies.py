"""Finds the reply's own text above the quoted original.

Staff answer in whatever client they use, and each client marks the start of the quoted
original its own way (shared/reference/mail-clients.md). No maintained library knows the
Chinese ones, so the markers are an ordered table of our own, matched line by line after the
body has been decoded (``body_text``) and its punctuation normalised (``normalise``).
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage, Message
from html.parser import HTMLParser
from typing import Final

__all__ = ["body_text", "normalise", "reply_part"]


# --- Choosing and decoding the body -------------------------------------------------------------

# Chinese clients label GB text with every name of the family; gb18030 reads them all, so a
# GB2312-labelled message that uses a GBK-only character still decodes.
_GB_FAMILY: Final = frozenset(
    {"gb2312", "gbk", "gb18030", "x-gbk", "cp936", "ms936", "euc-cn", "x-euc-cn", "csgb2312"}
    | {"gb-2312-80", "chinese", "936"}
)
_BIG5_FAMILY: Final = frozenset(
    {"big5", "big-5", "x-big5", "csbig5", "cn-big5", "x-x-big5", "big5-hkscs", "big5hkscs"}
    | {"cp950", "ms950", "950"}
)
# Undeclared and ASCII-declared bodies are read as UTF-8 first: 8-bit bytes under those labels
# are nearly always UTF-8 or, from older clients, GB text.
_UTF8_FAMILY: Final = frozenset({"", "utf-8", "utf8", "us-ascii", "ascii", "unicode-1-1-utf-8"})


def _decode(raw: bytes, charset: str) -> str:
    """Decode body bytes under a declared charset, never failing."""
    label = charset.strip().strip("\"'").lower().replace("_", "-")
    if label in _GB_FAMILY:
        return raw.decode("gb18030", errors="replace")
    if label in _BIG5_FAMILY:
        # Plain Big5 lacks the Hong Kong and Microsoft extensions that Taiwanese and Hong Kong
        # clients actually send, so try the supersets before giving up on characters.
        for codec in ("big5", "big5hkscs", "cp950"):
            try:
                return raw.decode(codec)
            except UnicodeDecodeError:
                continue
        return raw.decode("big5hkscs", errors="replace")
    if label not in _UTF8_FAMILY:
        try:
            return raw.decode(label, errors="replace")
        except (LookupError, ValueError):
            # An unknown label (or a bytes-to-bytes codec such as "zlib") is read as UTF-8.
            pass
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    # Chinese clients that do not declare a charset, or declare UTF-8 wrongly, write GB text,
    # which fails as UTF-8 on most of its characters; UTF-8 with a stray byte fails on few.
    lenient = raw.decode("utf-8", errors="replace")
    errors = lenient.count("\ufffd")
    if errors * 5 > sum(1 for char in lenient if ord(char) > 0x7F):
        try:
            return raw.decode("gb18030")
        except UnicodeDecodeError:
            pass
    return lenient


def _inline_text_parts(part: Message) -> Iterator[Message]:
    """The message's own text parts in order, leaving out attachments and attached messages."""
    if part.get_content_maintype() == "message":
        # An attached original (message/rfc822) is not the reply, whatever text it holds.
        return
    if part.is_multipart():
        payload = part.get_payload()
        if isinstance(payload, list):
            for sub in payload:
                if isinstance(sub, Message):
                    yield from _inline_text_parts(sub)
        return
    if part.get_content_maintype() != "text":
        return
    if part.get_content_disposition() == "attachment" or part.get_filename() is not None:
        return
    yield part


def _part_text(part: Message) -> str:
    """The decoded text of one leaf part, format=flowed lines rejoined."""
    raw = part.get_payload(decode=True)
    if not isinstance(raw, bytes):
        return ""
    text = _decode(raw, part.get_content_charset() or "")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if part.get_content_subtype() == "plain" and _param(part, "format") == "flowed":
        text = _unflow(text, delsp=_param(part, "delsp") == "yes")
    return text


def _param(part: Message, name: str) -> str:
    """A Content-Type parameter as lower-case text, or "" when absent."""
    value = part.get_param(name)
    return value.strip().lower() if isinstance(value, str) else ""


def _unflow(text: str, *, delsp: bool) -> str:
    """Rejoin the soft line breaks of a format=flowed body (RFC 3676), as Thunderbird sends."""
    out: list[str] = []
    carry = ""
    carry_depth = 0
    for line in text.split("\n"):
        content = line.lstrip(">")
        depth = len(line) - len(content)
        # A leading space is stuffing, added so that the line could not be read as a quote.
        content = content.removeprefix(" ")
        if carry and depth != carry_depth:
            # A change of quote depth ends a paragraph even after a soft break (RFC 3676 4.5).
            out.append(_quote_prefix(carry_depth) + carry)
            carry = ""
        if content.endswith(" ") and content != "-- ":
            carry += content[:-1] if delsp else content
            carry_depth = depth
        else:
            out.append(_quote_prefix(depth) + carry + content)
            carry = ""
    if carry:
        out.append(_quote_prefix(carry_depth) + carry)
    return "\n".join(out)


def _quote_prefix(depth: int) -> str:
    return ">" * depth + " " if depth else ""


# --- HTML -----------------------------------------------------------------------------------------

# Markup that starts the quoted original in HTML replies. Each is looked for inside a tag (an
# id, a class, a style, or the tag's own name), so words in the text never match.
_HTML_QUOTE_MARKERS: Final = (
    "isReplyContent",  # 163/126 webmail (Coremail): <blockquote id="isReplyContent">
    "isForwardContent",  # the same, forwarding
    "ntes-mailmaster-quote",  # 网易邮箱大师
    "includetail",  # QQ Mail and Tencent Exmail wrap the original in <includetail>
    "original-content",
    "FoxDiv",  # Foxmail: <div class="FoxDiv20211119172700123456">
    "#B5C4DF",  # Foxmail's and older Outlook's header box and rule colour
    "replySplit",  # China Mobile 139: <hr id="replySplit">
    "reply139content",
    "oriMsgHtmlSeperator",
    "divRplyFwdMsg",  # Outlook on the web and Outlook for iOS/Android
    "gmail_quote",  # Gmail
    "moz-cite-prefix",  # Thunderbird's attribution line in HTML replies
    "blockquote",  # Apple Mail and Thunderbird quote with <blockquote type="cite">
)
_HTML_QUOTE: Final = re.compile(
    r"<(?=[A-Za-z])[^<>]*?(?:" + "|".join(map(re.escape, _HTML_QUOTE_MARKERS)) + ")",
    re.IGNORECASE,
)

# Elements whose ends are line ends in the text a person sees.
_BLOCK_TAGS: Final = frozenset(
    {"address", "article", "aside", "blockquote", "center", "dd", "div", "dl", "dt"}
    | {"fieldset", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6"}
    | {"header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "td"}
    | {"th", "tr", "ul"}
)
# Elements whose content is never shown; Outlook puts Office settings in <xml>.
_HIDDEN_TAGS: Final = frozenset({"script", "style", "title", "xml", "template"})
_HTML_SPACE: Final = re.compile(r"[ \t\r\n\f]+")


class _TextExtractor(HTMLParser):
    """Collects the visible text of an HTML body, one line per block."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden += 1
        elif tag == "br" or tag in _BLOCK_TAGS:
            self.pieces.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden = max(0, self._hidden - 1)
        elif tag in _BLOCK_TAGS:
            self.pieces.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            # Source line breaks are spaces in HTML; a no-break space (&nbsp;) is kept for
            # normalise(), like the rest of the text.
            self.pieces.append(_HTML_SPACE.sub(" ", data))


def _html_to_text(markup: str) -> str:
    """The visible text of an HTML body above its quoted original."""
    found = _HTML_QUOTE.search(markup)
    if found is not None:
        markup = markup[: found.start()]
    extractor = _TextExtractor()
    try:
        extractor.feed(markup)
        extractor.close()
        text = "".join(extractor.pieces)
    except Exception:
        # html.parser is lenient, but a reply must be read even from markup it rejects.
        text = html.unescape(re.sub(r"<[^<>]*>", "\n", markup))
    lines = [line.strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


def body_text(msg: EmailMessage) -> str:
    """The text a person wrote in ``msg``: its text/plain part, else its HTML part as text.

    The HTML is cut at the first known quote marker before it is converted. Charsets are
    decoded leniently (GB2312 and GBK as GB18030, Big5 with the HKSCS and CP950 extensions,
    anything unknown as UTF-8). This never raises: an unreadable body gives "".
    """
    try:
        parts = list(_inline_text_parts(msg))
        plain = next((p for p in parts if p.get_content_subtype() == "plain"), None)
        markup = next((p for p in parts if p.get_content_subtype() == "html"), None)
        text = _part_text(plain) if plain is not None else ""
        if not text.strip() and markup is not None:
            # Some clients send an empty text/plain beside the HTML they really wrote in.
            text = _html_to_text(_part_text(markup))
        # NUL is no character anyone writes, and PostgreSQL refuses it in text (issue 17).
        return text.replace("\x00", "")
    except Exception:
        # Broken MIME must still get an answer rather than stop the reply being processed.
        return ""


# --- Normalising ----------------------------------------------------------------------------------

# Only entities with their semicolon: in plain text "R&D" or "&copyright" are words.
_ENTITY: Final = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
# Characters whose NFKC form means the same: full-width and half-width forms, CJK compatibility
# ideographs and Kangxi radicals. Elsewhere NFKC would change what people wrote (① → 1, … → ...).
_FOLDABLE: Final = re.compile("[\uff01-\uffee\uf900-\ufaff\u2f00-\u2fdf\U0002f800-\U0002fa1f]")
# Spaces of every width, and the byte-order mark Apple Mail leaves at the start of a quote.
_ODD_SPACE: Final = re.compile("[\u00a0\u2000-\u200a\u202f\u205f\u3000\ufeff]")
# Editors leave zero-width spaces around the caret; they only get in the way of matching.
# Control characters (NUL above all: PostgreSQL refuses it in text) have no place in a command
# or a search; only tabs and line ends carry meaning.
_ZERO_WIDTH: Final = re.compile("[\u200b\u2060\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def normalise(text: str) -> str:
    """``text`` with what clients vary made uniform, so that quote markers and commands match.

    Decodes HTML entities (QQ Mail writes ``&nbsp;`` into text/plain), turns full-width
    punctuation and letters into ASCII (：→ :, ，→ ,), U+3000 and U+FEFF into spaces, and line
    ends into ``\\n``.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # Each pass scans the whole text (a reply quotes the original): one that cannot match is
    # skipped.
    if "&" in text:
        text = _ENTITY.sub(lambda m: html.unescape(m.group()), text)
    if not text.isascii():
        # Full-width forms and odd spaces are all outside ASCII.
        text = _FOLDABLE.sub(lambda m: unicodedata.normalize("NFKC", m.group()), text)
        text = _ODD_SPACE.sub(" ", text)
    return _ZERO_WIDTH.sub("", text)


# --- Where the quote starts -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Marker:
    """One way a client marks where the quoted original (or its own signature) begins."""

    client: str
    line: re.Pattern[str]
    # For header blocks: a line that must follow, so that one "From:" line of text is not a cut.
    then: re.Pattern[str] | None = None
    # The client may fold this line in two (Gmail folds long attributions before the address).
    wraps: bool = False


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


# A date as attribution lines write it: 2020/8/5, 2023-05-04, 2020年6月29日, 2023.6.15.
_DATE = r"\d{2,4}\s*[-/.年]\s*\d{1,2}"

# Matched, in this order, against each line of normalised text with its ends stripped; the first
# line that matches any row starts the quote. Rows are grouped by kind, then by client.
_MARKERS: Final[tuple[_Marker, ...]] = (
    # Separator lines.
    _Marker("QQ Mail (zh), Coremail", _rx(r"^-{2,}\s*原始邮件\s*-{2,}$")),
    _Marker("QQ Mail / Tencent Exmail (en)", _rx(r"^-{2,}\s*Original\s*-{2,}$")),
    # Foxmail puts 14 hyphens and the sender's address (its default signature) above the quote.
    _Marker("Foxmail", _rx(r"^-{14}(?:\s*\S+@\S+)?$")),
    _Marker("Outlook (zh)", _rx(r"^-{2,}\s*(?:邮件原件|郵件原件)\s*-{2,}$")),
    _Marker("Outlook, Thunderbird (en)", _rx(r"^-{2,}\s*(?:Original|Forwarded) Message\s*-{2,}$")),
    _Marker("Thunderbird (zh-CN)", _rx(r"^-{2,}\s*(?:原始消息|转发的消息)\s*-{2,}$")),
    _Marker("Thunderbird (zh-TW)", _rx(r"^-{2,}\s*(?:原始郵件|轉寄郵件)\s*-{2,}$")),
    _Marker("网易邮箱大师", _rx(r"^-{2,}\s*(?:回复的原邮件|Replied Message)\s*-{2,}$")),
    _Marker("Alibaba Mail (66 hyphens)", _rx(r"^-{40,}$")),
    _Marker("Outlook on the web", _rx(r"^_{20,}$")),
    # Attribution lines.
    _Marker(
        "Thunderbird (zh-CN), Apple Mail, 163 webmail",
        _rx(rf"^在\s*{_DATE}.*写道\s*:?$"),
        wraps=True,
    ),
    _Marker(
        "Thunderbird, Gmail, Apple Mail (zh-TW)", _rx(rf"^.*於\s*{_DATE}.*寫道\s*:?$"), wraps=True
    ),
    _Marker("Gmail (zh-CN)", _rx(r"^.*于\s*\d{4}\s*年\s*\d{1,2}\s*月.*写道\s*:?$"), wraps=True),
    _Marker("163 webmail (en)", _rx(r"^At\s+\d{4}-\d{1,2}-\d{1,2}.*wrote\s*:?$"), wraps=True),
    _Marker("Gmail, Thunderbird, Apple Mail (en)", _rx(r"^On\s.*wrote\s*:$"), wraps=True),
    # Header blocks with no separator above them.
    _Marker(
        "Outlook, Foxmail, Coremail, Alibaba Mail (zh)",
        _rx(r"^(?:发件人|發件人|寄件者|寄件人)\s*:"),
        then=_rx(
            r"^(?:发送时间|發送時間|发送日期|寄件日期|傳送時間|日期|时间|收件人|收件者|主题|主旨)\s*:"
        ),
    ),
    _Marker("Outlook (en)", _rx(r"^From\s*:"), then=_rx(r"^(?:Sent|Date|To|Subject)\s*:")),
    # Signatures the clients add below the reply.
    _Marker("Apple Mail, Android (zh-CN)", _rx(r"^(?:发自|發自|来自|來自)我的\s*\S")),
    _Marker("Apple Mail (zh-TW, zh-HK)", _rx(r"^(?:從|从)我的\s*\S.*(?:傳送|發送|发送)$")),
    _Marker("网易邮箱大师", _rx(r"^来自\s*网易邮箱大师")),
    _Marker(
        "Outlook for iOS/Android", _rx(r"^(?:获取|獲取|Get)\s*Outlook\s+for\s+(?:iOS|Android)$")
    ),
    _Marker("Apple Mail (en)", _rx(r"^Sent from my\s")),
    _Marker("signature delimiter", _rx(r"^--$")),
    # Quoted lines, which every client writes in text/plain.
    _Marker("quoted line", _rx(r"^>")),
)


def _marker_at(lines: list[str], i: int) -> _Marker | None:
    """The row that matches line ``i`` by itself, if any."""
    for marker in _MARKERS:
        if not marker.line.search(lines[i]):
            continue
        if marker.then is None:
            return marker
        following = [line for line in lines[i + 1 : i + 4] if line][:2]
        if any(marker.then.search(line) for line in following):
            return marker
    return None


def _wrapped_marker_at(lines: list[str], i: int) -> bool:
    """Whether lines ``i`` and ``i + 1`` are one attribution line folded in two."""
    if i + 1 >= len(lines) or not lines[i + 1]:
        return False
    joined = lines[i] + " " + lines[i + 1]
    if not any(m.wraps and m.line.search(joined) for m in _MARKERS):
        return False
    if _marker_at(lines, i + 1) is None:
        return True
    # The second half may match by itself ("<a@gmail.com> 于2020年…写道:"). Then only a line
    # after a blank line, whose successor begins as a continuation, is its first half: clients
    # put a blank line between the reply and the attribution, so the reply is never taken.
    return i > 0 and not lines[i - 1] and lines[i + 1][0] in "<于於"


def _quote_start(lines: list[str]) -> int:
    """The index of the first line of the quote or signature, or ``len(lines)``."""
    for i, line in enumerate(lines):
        if line and (_marker_at(lines, i) is not None or _wrapped_marker_at(lines, i)):
            return i
    return len(lines)


# Marker lines are short. Matching only the start of each line keeps the table's ".*"
# patterns linear on a hostile single-line body of megabytes.
_MARKER_SPAN: Final = 400


def reply_part(text: str) -> str:
    """The part of normalised ``text`` above the first quote marker or client signature.

    ``text`` should have been through ``normalise``; the markers are written for ASCII
    punctuation. Returns "" when the reply has no text of its own.
    """
    lines = text.split("\n")
    stripped = [line.strip()[:_MARKER_SPAN] for line in lines]
    return "\n".join(lines[: _quote_start(stripped)]).strip()
