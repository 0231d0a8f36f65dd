"""Tests for yizhan.routing.settings: reading SET at cmd@ (digest windows, language)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from yizhan.routing.calendar import WorkCalendar
from yizhan.routing.settings import DIGEST, LANGUAGE, apply_set

CAL = WorkCalendar(tz=ZoneInfo("Asia/Shanghai"))
CLERK = frozenset({"clerk"})


@pytest.mark.parametrize(
    ("argument", "changes"),
    [
        ("digest off", {DIGEST: "off"}),
        ("摘要 關閉", {DIGEST: "off"}),
        ("DIGEST ON", {DIGEST: None}),
        ("摘要 开启", {DIGEST: None}),
        ("digest 13:30,08:30", {DIGEST: "08:30,13:30"}),
        ("digest 8:30、13:30 15:00", {DIGEST: "08:30,13:30,15:00"}),
        ("待辦摘要 ０９：００", {DIGEST: "09:00"}),
        ("language zh_TW", {LANGUAGE: "zh_TW"}),
        ("語言 简体", {LANGUAGE: "zh_CN"}),
        ("lang English", {LANGUAGE: "en"}),
    ],
)
def test_set_changes(argument: str, changes: dict[str, str | None]) -> None:
    # SET in English, Traditional or Simplified Chinese, full-width digits included.
    outcome = apply_set(argument, {}, roles=CLERK, calendar=CAL)
    assert dict(outcome.changes) == changes
    assert outcome.reply.startswith("已設置。Saved.")


def test_set_alone_lists_the_settings() -> None:
    # SET with nothing after it answers with the current settings and changes nothing.
    outcome = apply_set("", {DIGEST: "09:00", LANGUAGE: "en"}, roles=CLERK, calendar=CAL)
    assert outcome.changes == {}
    assert "09:00（自選 chosen）" in outcome.reply and "en" in outcome.reply
    defaults = apply_set("  ", {}, roles=CLERK, calendar=CAL)
    assert "08:30, 10:30, 13:30, 15:30" in defaults.reply


def test_the_answer_shows_the_result() -> None:
    # After "SET digest off" the listing says off; after "on", the role's windows again.
    off = apply_set("digest off", {}, roles=CLERK, calendar=CAL)
    assert "關閉 off" in off.reply
    on = apply_set("digest on", {DIGEST: "off"}, roles=frozenset({"staff"}), calendar=CAL)
    assert "08:30, 13:30" in on.reply


@pytest.mark.parametrize(
    ("argument", "says"),
    [
        ("colour blue", "There is no setting 'colour'"),
        ("digest 07:00", "'07:00' cannot be used"),
        ("digest 09:15", "'09:15' cannot be used"),
        ("digest 25:00", "'25:00' cannot be used"),
        ("digest soon", "'soon' cannot be used"),
        ("language klingon", "Unknown language 'klingon'"),
    ],
)
def test_what_cannot_be_set_is_explained(argument: str, says: str) -> None:
    # Every refusal says what was wrong and shows the usage, and changes nothing.
    outcome = apply_set(argument, {}, roles=CLERK, calendar=CAL)
    assert outcome.changes == {}
    assert says in outcome.reply and "SET digest 08:30,13:30" in outcome.reply


def test_set_key_shows_how_to_register_and_takes_the_key_back() -> None:
    # 個人設置: the signature key is listed; SET key explains registering; off removes it.
    listing = apply_set("", {}, roles=CLERK, calendar=CAL, signature_key="ABCD1234")
    assert "ABCD1234" in listing.reply
    explained = apply_set("密鑰", {}, roles=CLERK, calendar=CAL)
    assert "cmd@" in explained.reply and not explained.remove_key and not explained.changes
    removed = apply_set("key off", {}, roles=CLERK, calendar=CAL, signature_key="ABCD1234")
    assert removed.remove_key and "ABCD1234" in removed.reply
    nothing = apply_set("key off", {}, roles=CLERK, calendar=CAL)
    assert not nothing.remove_key and "No key" in nothing.reply
