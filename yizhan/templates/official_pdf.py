"""Renders an :class:`~yizhan.templates.official.OfficialDocument` as an A4 PDF (GB/T 9704-2012).

The PDF is drawn with ReportLab's page layout engine (platypus) and one CJK TrueType font that
the operating system provides (Debian: ``fonts-arphic-uming``), embedded as a subset with a
ToUnicode map, so that every reader shows the same glyphs and text can be searched and copied.
ReportLab embeds TrueType outlines only: Noto CJK and Source Han (CFF outlines) do not work.

The page follows the standard: A4, 版心 156 x 225 mm with its top-left corner 37 mm from the top
and 28 mm from the left, 22 lines of 28 characters in 3號 type; red 發文機關標誌 35 mm below the
top of the 版心 and a red rule under the 發文字號; the round red seal pressing on the 發文機關署名
and 成文日期; the 版記 at the foot of the last page; page numbers — 1 — outside the 版心.
The output is deterministic (ReportLab's invariant mode), so one document always gives the
same bytes.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable
from typing import Any, Final

from reportlab.lib.colors import Color, black
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import BaseDocTemplate, Flowable, Frame, PageBreak, PageTemplate, Spacer

from yizhan.templates.cjk_fonts import FontFile, default_font
from yizhan.templates.official import OfficialDocument

__all__ = ["render_official_pdf"]


_PAGE_WIDTH, _PAGE_HEIGHT = A4
_LEFT: Final = 28 * mm
_TOP: Final = 37 * mm
_WIDTH: Final = 156 * mm
_HEIGHT: Final = 225 * mm
#: 22 lines to the 版心 and 28 characters to the line.
_LINE: Final = _HEIGHT / 22
_CHAR: Final = _WIDTH / 28
#: 3號 type, made just narrow enough that 28 characters fill a line exactly (16pt would give 27).
_BODY: Final = _CHAR
_TITLE: Final = 22.0  # 2號
_IMPRINT: Final = 14.0  # 4號, for the 版記 and the page numbers
_SEAL_NOTE: Final = 9.0

_RED: Final = Color(0.83, 0.0, 0.0)
_SEAL_RED: Final = Color(0.86, 0.05, 0.05)
# A CJK face's ascent, as a fraction of the type size (its descent is the rest of the em).
_ASCENT: Final = 0.88

# The most extra space a justified line puts between two characters, in ems.
_MAX_SPREAD: Final = 0.5

# Characters that may not begin a line (they hang into the margin instead) and characters
# that may not end one (they move to the next line): the usual Chinese line-breaking rules.
_NO_START: Final = frozenset("，。、；：？！）」』〕》〉】”’…—·%,.;:?!)]}")
_NO_END: Final = frozenset("（「『〔《〈【“‘([{")
# Runs of Latin letters, digits and ASCII punctuation are kept whole where they fit.
_TOKENS: Final = re.compile(r"[A-Za-z0-9_.\-@/:+#]+|\s|.", re.DOTALL)


def render_official_pdf(doc: OfficialDocument, *, font: FontFile | None = None) -> bytes:
    """The document as the bytes of an A4 PDF, with title, author (the organ) and subject
    (the number) in its metadata.

    ``font`` defaults to :func:`find_cjk_font`'s; raises :class:`CJKFontMissing` when there
    is none.
    """
    face = (font or default_font()).name
    buffer = io.BytesIO()
    template = BaseDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=_LEFT,
        rightMargin=_PAGE_WIDTH - _LEFT - _WIDTH,
        topMargin=_TOP,
        bottomMargin=_PAGE_HEIGHT - _TOP - _HEIGHT,
        title=doc.title,
        author=doc.organ_signature,
        subject=doc.number or "",
        creator="驛站 Yizhan",
        lang="zh",
        invariant=True,
        initialFontName=face,
    )
    frame = Frame(
        _LEFT,
        _PAGE_HEIGHT - _TOP - _HEIGHT,
        _WIDTH,
        _HEIGHT,
        leftPadding=0,
        rightPadding=0,
        topPadding=0,
        bottomPadding=0,
        id="text",
    )
    template.addPageTemplates([PageTemplate(id="page", frames=[frame], onPage=_page_number(face))])
    template.build(_story(doc, face))
    return buffer.getvalue()


def _story(doc: OfficialDocument, face: str) -> list[Flowable]:
    """The flowables of the document, one or more per element, in the standard's order."""
    story: list[Flowable] = []
    # 版頭 (7.2). 份號 and 密級 are never printed (see OfficialDocument).
    above_mark = 35 * mm
    if doc.urgency:
        story.append(_Text(doc.urgency, face))
        above_mark -= _LINE
    story.append(Spacer(_WIDTH, above_mark))
    story.append(_organ_mark(doc.organ_mark, face))
    if doc.signer:
        story.append(_Pair(doc.number or "", doc.signer_text, face, space_before=2 * _LINE))
    else:
        story.append(_Text(doc.number or "", face, align="center", space_before=2 * _LINE))
    story.append(_Rule(_WIDTH, 0.75 * mm, _RED, space_before=4 * mm))
    # 主體 (7.3).
    story.append(
        _Text(doc.title, face, size=_TITLE, align="center", bold=True, space_before=2 * _LINE)
    )
    if doc.main_recipients:
        story.append(_Text(doc.main_recipients_text, face, space_before=_LINE))
    story.extend(_Text(p, face, first_indent=2 * _CHAR, justify=True) for p in doc.body)
    story.extend(_attachment_note(doc, face))
    story.append(_Signature(doc, face))
    if doc.note:
        story.append(_Text(doc.note_text, face, first_indent=2 * _CHAR, justify=True))
    if doc.attachments:
        story.append(PageBreak())
        for n, (heading, title, pointer) in enumerate(doc.attachment_pages):
            story.append(_Text(heading, face, space_before=2 * _LINE if n else 0))
            story.append(
                _Text(title, face, size=_TITLE, align="center", bold=True, space_before=_LINE)
            )
            story.append(_Text(pointer, face, first_indent=2 * _CHAR, space_before=_LINE))
    # 版記 (7.4).
    story.append(_Imprint(doc, face))
    return story


def _organ_mark(text: str, face: str) -> Flowable:
    """The red 發文機關標誌: as large as fits, narrowed like the printed marks (7.2.4)."""
    scale = 80.0
    size = min(44.0, _WIDTH * 0.96 / max(len(text), 1) / (scale / 100))
    return _Text(
        text,
        face,
        size=size,
        leading=size * 1.25,
        align="center",
        color=_RED,
        bold=True,
        hscale=scale,
    )


def _attachment_note(doc: OfficialDocument, face: str) -> list[Flowable]:
    """附件說明: one line below the text, two characters in, names aligned (7.3.4)."""
    items = doc.attachment_note_items
    if not items:
        return []
    label = "附件："
    hang = 5 * _CHAR  # 2 characters in, then 附件：
    blocks: list[Flowable] = []
    for n, item in enumerate(items):
        number = item[: item.index("．") + 1] if len(items) > 1 else ""
        indent = hang + pdfmetrics.stringWidth(number, face, _BODY)
        blocks.append(
            _Text(
                (label if n == 0 else "") + item,
                face,
                first_indent=2 * _CHAR if n == 0 else hang,
                indent=indent,
                space_before=_LINE if n == 0 else 0,
            )
        )
    return blocks


def _page_number(face: str) -> Callable[[Canvas, Any], None]:
    """Draws — N — 7 mm below the 版心, one character from its right (odd) or left (even)."""

    def draw(canvas: Canvas, template: Any) -> None:
        number = canvas.getPageNumber()
        text = f"— {number} —"
        y = _PAGE_HEIGHT - _TOP - _HEIGHT - 7 * mm - _IMPRINT * _ASCENT
        canvas.saveState()
        canvas.setFont(face, _IMPRINT)
        if number % 2:
            canvas.drawRightString(_LEFT + _WIDTH - _IMPRINT, y, text)
        else:
            canvas.drawString(_LEFT + _IMPRINT, y, text)
        canvas.restoreState()

    return draw


# -- line breaking ---------------------------------------------------------------------------


def _break_lines(text: str, face: str, size: float, first: float, rest: float) -> list[str]:
    """``text`` broken into lines of at most ``first`` then ``rest`` points.

    Chinese breaks between any two characters, except that closing punctuation may not start
    a line (it hangs past the margin) and opening punctuation may not end one. A short run of
    Latin letters and digits moves whole to the next line; a long one (a fingerprint, a file
    name) is cut where the line is full, as is anything wider than a line.
    """

    def measure(part: str) -> float:
        return float(pdfmetrics.stringWidth(part, face, size))

    lines: list[str] = []
    line = ""
    width = first
    # A stack of tokens still to place; a token cut at the end of a line goes back on it.
    pending = _TOKENS.findall(text)[::-1]
    while pending:
        token = pending.pop()
        if not line and token.isspace():
            continue
        if measure((line + token).rstrip()) <= width:
            line += token
            continue
        if line and len(token) == 1 and token in _NO_START:
            line += token  # hanging punctuation
            continue
        if not line or measure(token) > rest / 4:
            room = width - measure(line)
            cut = len(token)
            while cut > 0 and measure(token[:cut]) > room:
                cut -= 1
            # An empty line takes at least one character, so that every line makes progress.
            cut = max(cut, 0 if line else 1)
            line, token = line + token[:cut], token[cut:]
        if token:
            pending.append(token)
        carried = ""
        while len(line) > 1 and line[-1] in _NO_END:
            carried, line = line[-1] + carried, line[:-1]
        lines.append(line.rstrip())
        line, width = carried, rest
    if line.strip() or not lines:
        lines.append(line.rstrip())
    return lines


# -- flowables -------------------------------------------------------------------------------


def _baseline(top: float, leading: float, size: float) -> float:
    """Where to put the baseline so that type of ``size`` sits in the middle of its line."""
    return top - leading / 2 - (_ASCENT - 0.5) * size


class _Text(Flowable):  # type: ignore[misc]
    """A paragraph on the 版心's line grid: wrapped, aligned, splittable between pages."""

    def __init__(
        self,
        text: str,
        face: str,
        *,
        size: float = _BODY,
        leading: float = _LINE,
        align: str = "left",
        first_indent: float = 0.0,
        indent: float = 0.0,
        color: Color = black,
        bold: bool = False,
        hscale: float = 100.0,
        justify: bool = False,
        space_before: float = 0.0,
        lines: list[str] | None = None,
        continued: bool = False,
    ) -> None:
        super().__init__()
        self.text = text
        self.face = face
        self.size = size
        self.leading = leading
        self.align = align
        self.first_indent = first_indent
        self.indent = indent
        self.color = color
        self.bold = bold
        self.hscale = hscale
        self.justify = justify
        self.space_before = space_before
        self.lines = lines
        # A continued piece starts mid-paragraph: no first-line indent.
        self.continued = continued
        # Only the paragraph's real last line is left unjustified, not a page's last.
        self.last_is_final = True

    def _lines(self, avail_width: float) -> list[str]:
        if self.lines is None:
            scale = self.hscale / 100
            first = (avail_width - (self.indent if self.continued else self.first_indent)) / scale
            rest = (avail_width - self.indent) / scale
            self.lines = _break_lines(self.text, self.face, self.size, first, rest)
        return self.lines

    def wrap(self, avail_width: float, avail_height: float) -> tuple[float, float]:
        self.width = avail_width
        self.height = self.space_before + len(self._lines(avail_width)) * self.leading
        return avail_width, self.height

    def split(self, avail_width: float, avail_height: float) -> list[Flowable]:
        lines = self._lines(avail_width)
        fit = int((avail_height - self.space_before) // self.leading)
        if fit < 1 or fit >= len(lines):
            return []
        head = self._piece(lines[:fit], continued=self.continued, space_before=self.space_before)
        tail = self._piece(lines[fit:], continued=True, space_before=0.0)
        head.last_is_final = False
        return [head, tail]

    def _piece(self, lines: list[str], *, continued: bool, space_before: float) -> _Text:
        return _Text(
            self.text,
            self.face,
            size=self.size,
            leading=self.leading,
            align=self.align,
            first_indent=self.first_indent,
            indent=self.indent,
            color=self.color,
            bold=self.bold,
            hscale=self.hscale,
            justify=self.justify,
            space_before=space_before,
            lines=lines,
            continued=continued,
        )

    def draw(self) -> None:
        canvas: Canvas = self.canv
        lines = self._lines(self.width)
        scale = self.hscale / 100
        top = self.height - self.space_before
        for n, line in enumerate(lines):
            left = self.indent if (n > 0 or self.continued) else self.first_indent
            room = self.width - left
            natural = pdfmetrics.stringWidth(line, self.face, self.size) * scale
            if self.align == "center":
                x = left + (room - natural) / 2
            elif self.align == "right":
                x = self.width - natural
            else:
                x = left
            spacing = 0.0
            last = n == len(lines) - 1 and self.last_is_final
            if self.justify and not last and len(line) > 1 and natural < room:
                spacing = (room - natural) / (len(line) - 1)
                # A line cut short before a long word stays ragged rather than spaced out.
                if spacing > self.size * _MAX_SPREAD:
                    spacing = 0.0
            baseline = _baseline(top - n * self.leading, self.leading, self.size)
            _draw_text(
                canvas,
                x,
                baseline,
                line,
                self.face,
                self.size,
                color=self.color,
                bold=self.bold,
                hscale=self.hscale,
                spacing=spacing,
            )


def _draw_text(
    canvas: Canvas,
    x: float,
    y: float,
    text: str,
    face: str,
    size: float,
    *,
    color: Color = black,
    bold: bool = False,
    hscale: float = 100.0,
    spacing: float = 0.0,
) -> None:
    """One line of text; ``bold`` strokes the outlines too, as the one face has no bold.

    Character spacing, horizontal scale and render mode are graphics state in PDF, which
    outlives the text object: the state is saved and restored so that they stay on this line.
    """
    canvas.saveState()
    obj = canvas.beginText(x, y)
    obj.setFont(face, size)
    obj.setFillColor(color)
    if hscale != 100.0:
        obj.setHorizScale(hscale)
    if spacing:
        obj.setCharSpace(spacing)
    if bold:
        canvas.setStrokeColor(color)
        canvas.setLineWidth(size * 0.03)
        obj.setTextRenderMode(2)
    obj.textOut(text)
    canvas.drawText(obj)
    canvas.restoreState()


class _Pair(Flowable):  # type: ignore[misc]
    """The 發文字號 one character in from the left and the 簽發人 one in from the right."""

    def __init__(self, left: str, right: str, face: str, *, space_before: float) -> None:
        super().__init__()
        self.left, self.right, self.face, self.space_before = left, right, face, space_before

    def wrap(self, avail_width: float, avail_height: float) -> tuple[float, float]:
        self.width, self.height = avail_width, self.space_before + _LINE
        return self.width, self.height

    def draw(self) -> None:
        y = _baseline(_LINE, _LINE, _BODY)
        self.canv.setFont(self.face, _BODY)
        self.canv.drawString(_CHAR, y, self.left)
        self.canv.drawRightString(self.width - _CHAR, y, self.right)


class _Rule(Flowable):  # type: ignore[misc]
    """A rule as wide as the 版心: the red one under the 發文字號."""

    def __init__(self, width: float, thickness: float, color: Color, *, space_before: float):
        super().__init__()
        self.rule_width, self.thickness, self.color = width, thickness, color
        self.space_before = space_before

    def wrap(self, avail_width: float, avail_height: float) -> tuple[float, float]:
        return self.rule_width, self.space_before + self.thickness

    def draw(self) -> None:
        self.canv.setStrokeColor(self.color)
        self.canv.setLineWidth(self.thickness)
        y = self.thickness / 2
        self.canv.line(0, y, self.rule_width, y)


class _Signature(Flowable):  # type: ignore[misc]
    """發文機關署名, 成文日期 and 印章 (7.3.5), with the seal's name and fingerprint below.

    Sealed: the date ends four characters from the right, the organ is centred over it and the
    seal presses on both from above, its top within a line of the text. Unsealed (7.3.5.2): the
    organ ends two characters from the right and the date starts two characters after it.
    """

    def __init__(self, doc: OfficialDocument, face: str) -> None:
        super().__init__()
        self.doc, self.face = doc, face
        self.radius = 21 * mm  # a 42 mm round seal

    def wrap(self, avail_width: float, avail_height: float) -> tuple[float, float]:
        self.width = avail_width
        if self.doc.seal:
            # The seal's height, then the line with its name and fingerprint.
            self.height = 2 * self.radius + _SEAL_NOTE * 2.2
        else:
            self.height = 3 * _LINE  # a blank line, the organ, the date
        return self.width, self.height

    def draw(self) -> None:
        canvas: Canvas = self.canv
        doc, face = self.doc, self.face
        organ_w = pdfmetrics.stringWidth(doc.organ_signature, face, _BODY)
        date_w = pdfmetrics.stringWidth(doc.date_text, face, _BODY)
        if doc.seal is None:
            organ_x = self.width - 2 * _CHAR - organ_w
            date_x = min(organ_x + 2 * _CHAR, self.width - date_w)
            top = self.height - _LINE
            _draw_text(canvas, organ_x, self._baseline(top, 0), doc.organ_signature, face, _BODY)
            _draw_text(canvas, date_x, self._baseline(top, 1), doc.date_text, face, _BODY)
            return
        # A long organ name moves both lines left rather than past the margin (7.3.5.1).
        centre = min(self.width - 4 * _CHAR - date_w / 2, self.width - max(organ_w, date_w) / 2)
        top = self.height
        seal_y = top - self.radius
        # The organ and the date sit below the seal's centre, as the standard asks.
        text_top = seal_y
        _draw_text(
            canvas,
            centre - organ_w / 2,
            self._baseline(text_top, 0),
            doc.organ_signature,
            face,
            _BODY,
        )
        _draw_text(
            canvas, centre - date_w / 2, self._baseline(text_top, 1), doc.date_text, face, _BODY
        )
        _draw_seal(canvas, centre, seal_y, self.radius, doc.seal.unit_name, face)
        note = doc.seal.text
        note_w = pdfmetrics.stringWidth(note, face, _SEAL_NOTE)
        _draw_text(
            canvas, self.width - note_w, _SEAL_NOTE * 0.4, note, face, _SEAL_NOTE, color=_SEAL_RED
        )

    @staticmethod
    def _baseline(top: float, line: int) -> float:
        """The baseline of body line ``line`` counted down from ``top``."""
        return _baseline(top - line * _LINE, _LINE, _BODY)


def _draw_seal(canvas: Canvas, cx: float, cy: float, radius: float, name: str, face: str) -> None:
    """A round red seal: rim, ``name`` clockwise along the top inside the rim, a star.

    Drawn over the text in slightly transparent red, as ink lies over print.
    """
    canvas.saveState()
    canvas.setStrokeColor(_SEAL_RED)
    canvas.setFillColor(_SEAL_RED)
    canvas.setStrokeAlpha(0.9)
    canvas.setFillAlpha(0.85)
    canvas.setLineWidth(radius * 0.05)
    canvas.circle(cx, cy, radius - radius * 0.025, stroke=1, fill=0)
    n = max(len(name), 1)
    # Long names take 240 degrees of the rim; short ones are not spread thin.
    span = min(240.0, 36.0 * n)
    size = min(radius * 0.3, math.radians(span) * radius * 0.7 / n * 0.95)
    text_radius = radius * 0.9 - size * _ASCENT
    # The one face has no bold: stroking the outlines too gives the seal's heavy strokes.
    canvas.setLineWidth(size * 0.04)
    for i, char in enumerate(name):
        angle = math.radians(90 + span / 2 - (i + 0.5) * span / n)
        canvas.saveState()
        canvas.translate(cx + text_radius * math.cos(angle), cy + text_radius * math.sin(angle))
        canvas.rotate(math.degrees(angle) - 90)
        text = canvas.beginText(-pdfmetrics.stringWidth(char, face, size) / 2, 0)
        text.setFont(face, size)
        text.setTextRenderMode(2)
        text.textOut(char)
        canvas.drawText(text)
        canvas.restoreState()
    _draw_star(canvas, cx, cy, radius * 0.33)
    canvas.restoreState()


def _draw_star(canvas: Canvas, cx: float, cy: float, outer: float) -> None:
    """A filled five-pointed star with one point up."""
    inner = outer * 0.382
    path = canvas.beginPath()
    for i in range(10):
        r = outer if i % 2 == 0 else inner
        angle = math.radians(90 + 36 * i)
        x, y = cx + r * math.cos(angle), cy + r * math.sin(angle)
        if i == 0:
            path.moveTo(x, y)
        else:
            path.lineTo(x, y)
    path.close()
    canvas.drawPath(path, stroke=0, fill=1)


class _Imprint(Flowable):  # type: ignore[misc]
    """The 版記 at the foot of the last page: 抄送機關, then 印發機關 and 印發日期 (7.4).

    It takes the rest of the page and draws at its bottom, so that its last rule lies on the
    bottom edge of the 版心; when the rest is too short it moves to a new page.
    """

    def __init__(self, doc: OfficialDocument, face: str) -> None:
        super().__init__()
        self.doc, self.face = doc, face
        label = "抄送："
        self.cc_lines: list[str] = []
        self.cc_indent = _IMPRINT + pdfmetrics.stringWidth(label, face, _IMPRINT)
        if doc.cc_text:
            self.cc_lines = _break_lines(
                doc.cc_text,
                face,
                _IMPRINT,
                _WIDTH - 2 * _IMPRINT,
                _WIDTH - _IMPRINT - self.cc_indent,
            )
        self.needed = (len(self.cc_lines) + 1) * _LINE

    def wrap(self, avail_width: float, avail_height: float) -> tuple[float, float]:
        self.width = avail_width
        self.height = avail_height if avail_height >= self.needed else self.needed
        return self.width, self.height

    def draw(self) -> None:
        canvas: Canvas = self.canv
        thick, thin = 0.35 * mm, 0.25 * mm
        y = 0.0
        canvas.setStrokeColor(black)
        canvas.setLineWidth(thick)
        canvas.line(0, y + thick / 2, self.width, y + thick / 2)
        baseline = _baseline(_LINE, _LINE, _IMPRINT)
        _draw_text(canvas, _IMPRINT, baseline, self.doc.printer, self.face, _IMPRINT)
        printed_w = pdfmetrics.stringWidth(self.doc.printed_text, self.face, _IMPRINT)
        _draw_text(
            canvas,
            self.width - _IMPRINT - printed_w,
            baseline,
            self.doc.printed_text,
            self.face,
            _IMPRINT,
        )
        y += _LINE
        if self.cc_lines:
            canvas.setLineWidth(thin)
            canvas.line(0, y, self.width, y)
            for n, line in enumerate(reversed(self.cc_lines)):
                first = n == len(self.cc_lines) - 1
                x = _IMPRINT if first else self.cc_indent
                _draw_text(canvas, x, baseline + y, line, self.face, _IMPRINT)
                y += _LINE
        canvas.setLineWidth(thick)
        canvas.line(0, y - thick / 2, self.width, y - thick / 2)
