"""Tests for the Babel catalogs: every template string is translated into both Chinese scripts."""

from __future__ import annotations

from importlib import resources

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from yizhan.templates.render import LANGUAGES, render_text


def _template_msgids() -> set[str]:
    root = str(resources.files("yizhan.templates") / "mail")
    method_map = [("**.txt", "jinja2")]
    options = {"**.txt": {"extensions": "jinja2.ext.i18n"}}
    ids: set[str] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        root, method_map=method_map, options_map=options
    ):
        ids.add(message if isinstance(message, str) else message[0])
    return ids


@pytest.mark.parametrize("language", ["zh_CN", "zh_TW"])
def test_every_template_string_is_translated(language: str) -> None:
    # A new template string without a translation would reach a clerk in English.
    po = resources.files("yizhan.templates") / "locale" / language / "LC_MESSAGES" / "yizhan.po"
    with po.open("rb") as fp:
        catalog = read_po(fp, locale=language)
    translated = {m.id for m in catalog if m.id and m.string}
    missing = _template_msgids() - translated
    assert not missing, f"untranslated in {language}: {sorted(missing)}"


def test_scripts_differ_where_they_should() -> None:
    # Simplified and Traditional readers each get their own script.
    subjects = {
        lang: render_text("not_authenticated.txt", lang, subject="x")[1] for lang in LANGUAGES
    }
    assert "确认" in subjects["zh_CN"] and "確認" in subjects["zh_TW"]
    assert "authenticated" in subjects["en"]
