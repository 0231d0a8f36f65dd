"""/help: the module guide (docs/modules.md) as HTML, for everyone; HELP mails link to it.

The guide travels inside the package (``setup.py`` copies docs/modules.md into
``yizhan/admin/`` when a wheel is built); an editable install reads it from the checkout.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

import markdown
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from yizhan.admin.web import Site

__all__ = ["guide_html", "guide_text", "routes"]

#: The file's name inside the package.
GUIDE = "modules.md"


def guide_text() -> str:
    """The module guide's Markdown: the packaged copy, else the checkout's docs/modules.md."""
    packaged = resources.files("yizhan.admin") / GUIDE
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    checkout = Path(__file__).resolve().parents[2] / "docs" / GUIDE
    return checkout.read_text(encoding="utf-8")


@functools.cache
def guide_html() -> str:
    """The guide as HTML (tables, fenced examples, heading anchors)."""
    return markdown.markdown(
        guide_text(), extensions=["tables", "fenced_code", "toc"], output_format="html"
    )


def routes(site: Site) -> list[Route]:
    """/help."""

    async def page(request: Request) -> Response:
        viewer = await site.viewer(request)
        if viewer is not None and viewer.session.must_change:
            viewer = None
        return site.render(request, viewer, "help.html", guide=Markup(guide_html()))

    return [Route("/help", page, methods=["GET"])]
