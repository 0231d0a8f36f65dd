"""Renders the admin page's HTML from ``templates/pages`` in the reader's language.

The same Babel catalogs as the mail (``templates/locale``; English in the templates, zh_CN the
default). Everything is escaped unless a template says otherwise, so a ``<script>`` in a
document title or a person's name is shown as text.
"""

from __future__ import annotations

import functools
from typing import Any

import jinja2
from babel.support import NullTranslations

from yizhan.templates.render import DEFAULT_LANGUAGE, LANGUAGES, translations

__all__ = ["gettext", "page_environment", "pick_language", "render_page"]


@functools.cache
def page_environment(language: str) -> jinja2.Environment:
    """A Jinja2 environment for pages, escaping by default, whose ``_()`` speaks ``language``."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("yizhan.templates", "pages"),
        extensions=["jinja2.ext.i18n"],
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(_catalog(language), newstyle=True)  # type: ignore[attr-defined]
    return env


def render_page(template: str, language: str, **variables: Any) -> str:
    """One page as HTML."""
    lang = language if language in LANGUAGES else DEFAULT_LANGUAGE
    return page_environment(lang).get_template(template).render(language=lang, **variables)


def gettext(language: str, message: str) -> str:
    """``message`` translated for code that builds text outside a template."""
    return _catalog(language).gettext(message)


def pick_language(preferred: str | None, accept: str, default: str) -> str:
    """The person's language, else the browser's first known one, else ``default``."""
    if preferred in LANGUAGES:
        return preferred
    for part in accept.split(","):
        tag = part.split(";")[0].strip().replace("-", "_").lower()
        if tag in ("zh_tw", "zh_hk", "zh_mo", "zh_hant", "zh_hant_tw"):
            return "zh_TW"
        if tag.startswith("zh"):
            return "zh_CN"
        if tag.startswith("en"):
            return "en"
    return default if default in LANGUAGES else DEFAULT_LANGUAGE


def _catalog(language: str) -> NullTranslations:
    return translations(language)
