"""Renders an :class:`~yizhan.templates.official.OfficialDocument` as one self-contained HTML page.

The page is the text/html alternative of the sealed distribution, so it is written for mail
clients: every style is inline (several clients drop a ``<style>`` block), there is no script,
no external resource and no absolute positioning, and the seal's mark is inline SVG. A client
that shows no SVG still shows the seal's name and fingerprint, which are text.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Final

import jinja2

from yizhan.templates.official import OfficialDocument

__all__ = ["SEAL_SIZE", "render_official_html"]

#: The seal's diameter on the page, in CSS pixels: 42 mm, a bureau seal's size, at 96 dpi.
SEAL_SIZE: Final = 150

# The red of the 版頭 and the seal. GB/T 9704-2012 asks for red without naming a shade.
_RED: Final = "#d40000"

# Font stacks: the faces GB/T 9704-2012 names (仿宋, 小標宋, 黑體, 楷體) as Windows, macOS and
# Linux call them, ending in the generic family, so every reader sees the nearest they have.
_FANGSONG: Final = (
    "FangSong, 仿宋, FangSong_GB2312, 仿宋_GB2312, STFangsong, 華文仿宋, "
    "'AR PL UMing TW', 'AR PL UMing CN', 'Noto Serif CJK TC', 'Noto Serif CJK SC', "
    "SimSun, 宋體, 宋体, serif"
)
_SONG: Final = (
    "'FZXiaoBiaoSong-B05S', 方正小標宋簡體, 方正小标宋简体, STZhongsong, 華文中宋, "
    "'Noto Serif CJK TC', 'Noto Serif CJK SC', 'AR PL UMing TW', SimSun, 宋體, 宋体, serif"
)
_HEI: Final = (
    "SimHei, 黑體, 黑体, 'Heiti TC', 'Microsoft JhengHei', 'Noto Sans CJK TC', "
    "'WenQuanYi Zen Hei', sans-serif"
)
_KAI: Final = "KaiTi, 楷體, 楷体, STKaiti, 華文楷體, 'AR PL UKai TW', 'AR PL UKai CN', serif"
_MONO: Final = "Consolas, Menlo, 'DejaVu Sans Mono', monospace"


@dataclass(frozen=True, kw_only=True)
class _SealPicture:
    """What the template needs to draw the seal: the name's arc, its type size, the star."""

    arc: str
    arc_length: float
    font_size: float
    star: str


@functools.cache
def _environment() -> jinja2.Environment:
    """The Jinja2 environment of the page templates; HTML is autoescaped."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("yizhan.templates", "pages"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_official_html(doc: OfficialDocument) -> str:
    """The document as a complete HTML page (UTF-8), for the text/html part of the mail."""
    return (
        _environment()
        .get_template("official.html")
        .render(
            doc=doc,
            seal_picture=_seal_picture(doc.seal.unit_name) if doc.seal else None,
            seal_size=SEAL_SIZE,
            organ_mark_size=_organ_mark_size(doc.organ_mark),
            red=_RED,
            fangsong=_FANGSONG,
            song=_SONG,
            hei=_HEI,
            kai=_KAI,
            mono=_MONO,
        )
    )


def _organ_mark_size(mark: str) -> float:
    """The organ mark's type size in points: 36pt, smaller when a long name would wrap.

    The sheet's text is 156 mm (442pt) wide; a mark on two lines would not look like one.
    """
    return round(min(36.0, 442 * 0.95 / max(len(mark), 1)), 1)


def _seal_picture(name: str) -> _SealPicture:
    """The geometry of a round seal of ``SEAL_SIZE``: the name on an arc over the top, a star.

    The name runs clockwise along 240 degrees of a circle inside the rim, from lower left over
    the top to lower right, as on a Chinese official seal; the type shrinks for long names.
    """
    centre = SEAL_SIZE / 2
    radius = SEAL_SIZE * 0.355
    span = math.radians(240)
    start = math.radians(90 + 120)
    end = math.radians(90 - 120)
    x1, y1 = centre + radius * math.cos(start), centre - radius * math.sin(start)
    x2, y2 = centre + radius * math.cos(end), centre - radius * math.sin(end)
    arc = f"M {x1:.2f},{y1:.2f} A {radius:.2f},{radius:.2f} 0 1,1 {x2:.2f},{y2:.2f}"
    length = radius * span
    font_size = min(SEAL_SIZE * 0.14, length / max(len(name), 1) * 0.85)
    return _SealPicture(
        arc=arc,
        arc_length=round(length * 0.96, 2),
        font_size=round(font_size, 2),
        star=_star_points(centre, centre + SEAL_SIZE * 0.02, SEAL_SIZE * 0.16),
    )


def _star_points(cx: float, cy: float, outer: float) -> str:
    """An SVG ``points`` list of a five-pointed star with one point up."""
    inner = outer * 0.382
    points = []
    for i in range(10):
        r = outer if i % 2 == 0 else inner
        angle = math.radians(90 + 36 * i)
        points.append(f"{cx + r * math.cos(angle):.2f},{cy - r * math.sin(angle):.2f}")
    return " ".join(points)
