"""Tests for 信息宣傳 (第二條; mine rules 一(六)): the xinxi flow, the office's edit, the news
subscription setting and the yearly count per unit (routing.edits, routing.publicity)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from zoneinfo import ZoneInfo

import pytest

from tests.routing.test_rules import DIRECTORY, edit_step
from tests.routing.test_workflow import Desk
from yizhan.routing.calendar import WorkCalendar
from yizhan.routing.commands import parse_command
from yizhan.routing.edits import Edit, read_edit, reply_as_written, text_below_command
from yizhan.routing.effects import PublishNews
from yizhan.routing.publicity import (
    CountRequest,
    PublishedItem,
    count_report,
    parse_count_request,
    yearly_counts,
)
from yizhan.routing.rules import check_rules
from yizhan.routing.settings import XINXI, apply_set

TZ = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar(tz=TZ)
ITEM = "今年，我局開展進口冷鏈食品專項檢查。"


def news() -> Desk:
    """謝文斌 of 檢驗監管處 submits a news item."""
    return Desk.open("xinxi", "xiewenbin", title="我局開展專項檢查", fields={"body": ITEM})


# --- The flow -------------------------------------------------------------------------------------


def test_the_unit_head_reviews_before_the_office_edits() -> None:
    # Mine rules 一(六): nothing is published before the sending unit's head has reviewed it;
    # then the office's clerk (its 信息 editor) is asked, with the editing instructions.
    desk = news()
    assert desk.doc.state == "reviewing" and desk.asked() == ["liangguoqiang"]
    desk.act("liangguoqiang", "同意")
    assert desk.doc.state == "editing" and desk.asked() == ["wangfang"]
    (request,) = desk.last.notices if desk.last else ()
    assert request.action == "approve" and request.variables["edits_body"] is True


def test_the_office_approval_may_carry_the_edited_text() -> None:
    # The office edits: the text below 修改稿 replaces the body and is what gets published; the
    # author's text is kept, and the trail says the text was edited.
    desk = news()
    desk.act("liangguoqiang", "同意")
    edited = "今年，我局抽檢樣品120批。\n\n全部合格。"
    decision = desk.act("wangfang", f"同意，已潤色\n修改稿：\n{edited}")
    assert desk.doc.state == "closed"
    assert desk.doc.fields["body"] == edited
    assert desk.doc.fields["original_body"] == ITEM
    assert desk.doc.fields["edited_by"] == "wangfang"
    assert decision.effects == (PublishNews(body=edited, edited=True),)
    assert desk.doc.trail[-1].opinion == "已潤色（修改稿 edited）"
    assert [n.template for n in decision.notices] == ["published"]


def test_an_opinion_without_the_marker_publishes_the_text_unchanged() -> None:
    # An opinion below APPROVE is only an opinion: it must never replace the item.
    desk = news()
    desk.act("liangguoqiang", "同意")
    decision = desk.act("wangfang", "同意\n寫得很好")
    assert desk.doc.fields["body"] == ITEM and "edited_by" not in desk.doc.fields
    assert decision.effects == (PublishNews(body=ITEM, edited=False),)


def test_an_empty_edit_is_refused_and_the_unit_head_cannot_edit() -> None:
    # 修改稿 with nothing below it says what to send; the unit head's APPROVE never edits.
    desk = news()
    desk.act("liangguoqiang", "同意\n修改稿：\n另一段文字")
    assert desk.doc.fields["body"] == ITEM
    refused = desk.act("wangfang", "同意 修改稿：", accepted=False)
    assert "修改稿" in refused.reply and "EDITED" in refused.reply


def test_the_office_may_send_it_back_with_a_reason() -> None:
    # REJECT at the office returns the item to its author, with the reason, unpublished.
    desk = news()
    desk.act("liangguoqiang", "同意")
    decision = desk.act("wangfang", "退回：數據需核實")
    assert desk.doc.state == "returned" and decision.effects == ()
    assert ("xiewenbin", "rejected") in [(n.to, n.template) for n in decision.notices]


def test_edits_body_belongs_on_an_approve_step() -> None:
    # `yizhan check` refuses an edits_body step whose completion carries no text.
    rules = edit_step("fawen", "receive", edits_body=True)
    assert any("edits_body" in p for p in check_rules(rules, DIRECTORY))


# --- Reading the edit -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "edit"),
    [
        ("同意", Edit(opinion="")),
        ("APPROVE fine\nnice", Edit(opinion="fine\nnice")),
        ("同意\n修改稿：\n新文", Edit(opinion="", body="新文")),
        ("同意\n修改稿如下：\n新文", Edit(opinion="", body="新文")),
        ("批准 修改稿\n新文\n第二段", Edit(opinion="", body="新文\n第二段")),
        ("APPROVE ok\nEDITED:\nNew text", Edit(opinion="ok", body="New text")),
        ("同意\n意見一\n編輯稿:\n新文", Edit(opinion="意見一", body="新文")),
    ],
)
def test_read_edit(reply: str, edit: Edit) -> None:
    # The marker opens the edited text wherever it stands: after the command, or on its line.
    assert read_edit(parse_command(reply)) == edit


def test_read_edit_refuses_a_marker_with_nothing_below() -> None:
    assert isinstance(read_edit(parse_command("同意\n修改稿：\n\n")), str)


def test_the_edited_text_keeps_its_full_width_punctuation() -> None:
    # Commands are read on normalised text (，→ ,), but the published text is as written,
    # and the quoted request below the reply is not part of it.
    body = (
        "\n同意\r\n修改稿：\r\n今年，我局（辦公室）抽檢１２０批。\r\n\r\n"
        "在 2026年11月25日 10:00，驛站 写道：\r\n> 原文，原文\r\n"
    )
    assert text_below_command(body) == "修改稿：\n今年，我局（辦公室）抽檢１２０批。"
    assert reply_as_written(body).startswith("同意\n修改稿：\n今年，")
    assert text_below_command("") == ""
    assert text_below_command("同意") == ""


# --- The subscription (SET at cmd@) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("xinxi on", "on"),
        ("news off", None),
        ("信息訂閱 是", "on"),
        ("信息订阅 否", None),
        ("訂閱 訂閱", "on"),
        ("信息 退訂", None),
    ],
)
def test_set_xinxi(argument: str, value: str | None) -> None:
    # Subscribing and unsubscribing, in English and both Chinese scripts; off removes the row.
    outcome = apply_set(argument, {}, roles=frozenset({"staff"}), calendar=CAL)
    assert dict(outcome.changes) == {XINXI: value}
    assert ("已訂閱 on" if value else "未訂閱 off") in outcome.reply


def test_nobody_is_subscribed_until_they_ask() -> None:
    # Opt-in: the listing of a person who never subscribed says off; "default" is no answer.
    listing = apply_set("", {}, roles=frozenset({"staff"}), calendar=CAL)
    assert "信息訂閱 news (xinxi@): 未訂閱 off" in listing.reply
    odd = apply_set("xinxi default", {}, roles=frozenset({"staff"}), calendar=CAL)
    assert odd.changes == {} and "SET xinxi on" in odd.reply


# --- The yearly count -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("統計", CountRequest(year=None)),
        ("统计 2026", CountRequest(year=2026)),
        ("COUNT: 2025年", CountRequest(year=2025)),
        ("STATUS 2026", CountRequest(year=2026)),
        ("查詢", CountRequest(year=None)),
        ("統計局發布一季度數據", None),
        ("查詢系統正式上線", None),
        ("今年，我局開展專項檢查", None),
        ("同意", None),
    ],
)
def test_parse_count_request(text: str, wanted: CountRequest | None) -> None:
    # Only the word alone, or with a year, asks; a news item opening with 統計… stays news.
    assert parse_count_request(parse_command(text)) == wanted


def test_items_count_in_the_year_of_the_bureau_time_zone() -> None:
    # 17:00 UTC on 31 December is already New Year's Day in Shanghai.
    items = [
        PublishedItem(unit="inspection", published_at=dt.datetime(2025, 12, 31, 17, tzinfo=dt.UTC)),
        PublishedItem(unit="inspection", published_at=dt.datetime(2026, 6, 1, tzinfo=dt.UTC)),
        PublishedItem(unit="office", published_at=dt.datetime(2025, 12, 31, 15, tzinfo=dt.UTC)),
    ]
    assert yearly_counts(items, 2026, TZ) == {"inspection": 2}
    assert yearly_counts(items, 2025, TZ) == {"office": 1}


def test_the_report_lists_every_unit_most_first() -> None:
    # Units with nothing published are listed with 0, so that a unit's count is reportable.
    report = count_report({"quarantine": 3, "inspection": 1}, 2026, DIRECTORY)
    lines = report.splitlines()
    assert lines[0].startswith("2026年信息發布統計")
    assert lines[1] == "  衛生檢疫處（quarantine）: 3"
    assert lines[2] == "  檢驗監管處（inspection）: 1"
    assert "  財務處（finance）: 0" in lines and lines[-1] == "合計 Total: 4"
    assert len(lines) == len(DIRECTORY.units) + 2
    gone = count_report({"closed_unit": 2}, 2026, replace(DIRECTORY, units={}))
    assert "closed_unit: 2" in gone and "合計 Total: 2" in gone
