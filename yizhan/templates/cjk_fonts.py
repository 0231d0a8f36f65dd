"""The CJK TrueType font the official PDF is drawn with, as the operating system provides it
(Debian: ``fonts-arphic-uming``). ReportLab embeds TrueType outlines only: Noto CJK and Source
Han (CFF outlines) do not work."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFError, TTFont

__all__ = [
    "FONT_PACKAGE",
    "KNOWN_FONTS",
    "CJKFontMissing",
    "FontFile",
    "default_font",
    "find_cjk_font",
]

#: The Debian package that provides the font Yizhan looks for first.
FONT_PACKAGE: Final = "fonts-arphic-uming"

#: CJK fonts with TrueType outlines, as Debian installs them, best first: a Ming (宋) face,
#: nearest to the standard's 仿宋 and 小標宋, then the common sans faces.
KNOWN_FONTS: Final = (
    Path("/usr/share/fonts/truetype/arphic/uming.ttc"),  # fonts-arphic-uming
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),  # fonts-wqy-zenhei
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),  # fonts-wqy-microhei
    Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"),  # fonts-droid-fallback
)

# A font counts as CJK when it has these: common characters in both scripts and the
# hexagonal brackets of every document number.
_PROBE: Final = "國国號号〔〕"

# -- the page (GB/T 9704-2012 5.2) -------------------------------------------------------------


class CJKFontMissing(RuntimeError):
    """No usable CJK TrueType font was found; the message names the package to install."""


@dataclass(frozen=True, kw_only=True)
class FontFile:
    """A usable CJK font: its file (the first face of a collection) and its ReportLab name."""

    path: Path
    name: str


# -- finding the font ------------------------------------------------------------------------


def find_cjk_font(
    candidates: Sequence[Path] = KNOWN_FONTS, *, ask_fontconfig: bool = True
) -> FontFile:
    """The first of ``candidates`` (then fontconfig's Chinese fonts) that ReportLab can embed.

    Fontconfig is asked without any configuration of ours (``fc-list :lang=zh``) when it is
    installed, for systems that keep fonts elsewhere. A font is usable when ReportLab loads it
    (TrueType outlines) and it has CJK glyphs. Raises :class:`CJKFontMissing` naming the
    Debian package otherwise.
    """
    paths = list(candidates)
    if ask_fontconfig:
        paths += [p for p in _fontconfig_chinese() if p not in paths]
    for path in paths:
        font = _load(path)
        if font is not None:
            return font
    raise CJKFontMissing(
        "no CJK TrueType font for the PDF of official documents: install the Debian package "
        f"{FONT_PACKAGE} (apt-get install {FONT_PACKAGE}); looked in "
        + ", ".join(str(p) for p in paths)
    )


def _fontconfig_chinese() -> list[Path]:
    """Font files fontconfig says cover Chinese, TrueType ones first; empty without fc-list."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return []
    try:
        found = subprocess.run(
            [fc_list, ":lang=zh", "file"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    files = sorted({line.strip().rstrip(":") for line in found.splitlines() if line.strip()})
    # ReportLab cannot embed OpenType/CFF (.otf) faces; try the TrueType files first.
    return [Path(f) for f in sorted(files, key=lambda f: not f.endswith((".ttf", ".ttc")))]


def _load(path: Path) -> FontFile | None:
    """``path`` registered with ReportLab as a CJK font, or None if it cannot be used."""
    if not path.is_file():
        return None
    name = "YizhanCJK-" + re.sub(r"[^A-Za-z0-9]", "", path.stem)[:24]
    try:
        font = TTFont(name, str(path), subfontIndex=0)
    except (TTFError, OSError, ValueError, KeyError):
        return None
    if not all(ord(c) in font.face.charToGlyph for c in _PROBE):
        return None
    pdfmetrics.registerFont(font)
    return FontFile(path=path, name=name)


@functools.cache
def default_font() -> FontFile:
    """The font of every PDF this process renders, looked for once."""
    return find_cjk_font()


# -- rendering -------------------------------------------------------------------------------
