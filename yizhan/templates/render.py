"""Renders mail from templates in the reader's language; it builds messages and never sends.

A mail template's first line is the subject, then a blank line, then the body (Salmon's
``view.respond``). Strings are English in the templates and translated through the Babel
catalogs in ``templates/locale``; ``zh_CN`` is the default language.
"""

from __future__ import annotations

import functools
import io
from email.message import EmailMessage
from importlib import resources
from typing import Any

import jinja2
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from yizhan.routing.mailpolicy import MAIL

LANGUAGES = ("zh_CN", "zh_TW", "en")
DEFAULT_LANGUAGE = "zh_CN"


@functools.cache
def translations(language: str) -> NullTranslations:
    """The compiled catalog of ``language`` (English needs none)."""
    if language == "en" or language not in LANGUAGES:
        return NullTranslations()
    po = resources.files("yizhan.templates") / "locale" / language / "LC_MESSAGES" / "yizhan.po"
    with po.open("rb") as fp:
        catalog = read_po(fp, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


@functools.cache
def environment(language: str) -> jinja2.Environment:
    """A Jinja2 environment whose ``_()`` and ``gettext`` speak ``language``."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("yizhan.templates", "mail"),
        extensions=["jinja2.ext.i18n"],
        autoescape=False,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    return env


def render_text(template: str, language: str | None, **variables: Any) -> tuple[str, str]:
    """Render a mail template; returns (subject, body)."""
    lang = language if language in LANGUAGES else DEFAULT_LANGUAGE
    text = environment(lang).get_template(template).render(**variables)
    subject, _, body = text.partition("\n\n")
    return subject.strip(), body.strip() + "\n"


def render_mail(
    template: str,
    language: str | None,
    *,
    sender: str,
    to: str,
    headers: dict[str, str] | None = None,
    **variables: Any,
) -> EmailMessage:
    """A complete message built from a template, ready for the outbound queue."""
    subject, body = render_text(template, language, **variables)
    msg = EmailMessage(policy=MAIL)
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body, charset="utf-8")
    return msg
