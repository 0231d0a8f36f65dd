"""Tests for yizhan.routing.drafts: reading a new document from the mail that starts it."""

from __future__ import annotations

import tomllib
from importlib import resources

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yizhan.routing.directory import Directory, parse_org
from yizhan.routing.drafts import (
    _TRADITIONAL_SIMPLIFIED,
    Draft,
    parse_draft,
    resolve_units,
    simplified,
    split_units,
)


def _demo() -> Directory:
    text = (resources.files("yizhan.demo") / "bureau.toml").read_text(encoding="utf-8")
    return parse_org(tomllib.loads(text))


# --- Subjects -------------------------------------------------------------------------------


def test_plain_subject_is_the_title() -> None:
    # A subject with no tags is the title as written, spaces tidied.
    draft = parse_draft("  關於  2026年國慶值班安排的通知 ", "")
    assert draft == Draft(title="關於 2026年國慶值班安排的通知")


@pytest.mark.parametrize(
    ("subject", "urgency", "important", "special"),
    [
        ("[特急] 關於防汛的通知", "特急", False, False),
        ("【加急】關於防汛的通知", "加急", False, False),
        ("關於防汛的通知 [重要]", None, True, False),
        ("[特殊][重要] 關於防汛的通知", None, True, True),
        ("[special] 關於防汛的通知", None, False, True),
        ("[URGENT] 關於防汛的通知", "加急", False, False),
        ("[Extra Urgent] 關於防汛的通知", "特急", False, False),
        ("［ 特急 ］關於防汛的通知", "特急", False, False),
        # Two grades: the more urgent wins, whatever the order.
        ("[加急][特急] 關於防汛的通知", "特急", False, False),
    ],
)
def test_subject_tags_set_flags_and_leave_the_title(
    subject: str, urgency: str | None, important: bool, special: bool
) -> None:
    # Every tag DESIGN.md names, in either bracket style and in English, is taken out of the
    # title and recorded; the title is the same whichever tags were used.
    draft = parse_draft(subject, "")
    assert draft.title == "關於防汛的通知"
    assert (draft.urgency, draft.important, draft.special) == (urgency, important, special)


def test_unknown_bracket_stays_in_title() -> None:
    # [草稿] is not a Yizhan tag: it is part of what the author called the document.
    assert parse_draft("[草稿] 年度總結 [特急]", "").title == "[草稿] 年度總結"


@pytest.mark.parametrize(
    "subject",
    [
        "Fwd: 關於防汛的通知",
        "FW: 關於防汛的通知",
        "转发：關於防汛的通知",
        "轉寄: 關於防汛的通知",
        "Fwd: FW: 关于防汛的通知".replace("关于", "關於"),
        "[特急] Fwd: 關於防汛的通知",
    ],
)
def test_forward_prefixes_are_removed_from_the_start(subject: str) -> None:
    # A clerk often forwards a draft to fawen@ rather than writing a new mail; the prefix the
    # client adds is not part of the title.
    assert parse_draft(subject, "").title == "關於防汛的通知"


def test_prefix_inside_the_title_is_kept() -> None:
    # Only a prefix at the start is the client's; "轉發" inside is the author's word.
    assert parse_draft("關於轉發: 省局文件的通知", "").title == "關於轉發: 省局文件的通知"


def test_empty_title_is_a_problem() -> None:
    # A subject of only tags leaves no title; the workflow needs to say so.
    draft = parse_draft("[特急]", "")
    assert draft.title == ""
    assert draft.problems and "subject" in draft.problems[0]


# --- The header block -----------------------------------------------------------------------


def test_traditional_header_block() -> None:
    # The demo bureau writes Traditional Chinese, full-width colons and 、 between units.
    body = (
        "主送：辦公室、信息化處\n"
        "抄送：人事處\n"
        "文種：通知\n"
        "緊急程度：加急\n"
        "期限：2026-10-09\n"
        "\n"
        "各處室：\n"
        "    請做好國慶值班安排。\n"
    )
    draft = parse_draft("國慶值班", body)
    assert draft.to_units == ("辦公室", "信息化處")
    assert draft.cc_units == ("人事處",)
    assert draft.doc_type == "通知"
    assert draft.urgency == "加急"
    assert draft.deadline == "2026-10-09"
    assert draft.body == "各處室：\n    請做好國慶值班安排。\n"
    assert draft.unknown_keys == ()


def test_simplified_header_block() -> None:
    # The same block in Simplified Chinese, with half-width colons and semicolons.
    body = "主送: 办公室; 信息化处\n范围：全局\n类型：年休假\n起止：2026-10-08至2026-10-09\n\n正文"
    draft = parse_draft("请假", body)
    assert draft.to_units == ("办公室", "信息化处")
    assert draft.scope == ("全局",)
    assert draft.leave_type == "年休假"
    assert draft.period == "2026-10-08至2026-10-09"
    assert draft.body == "正文"


def test_english_header_block() -> None:
    # English keys, any case, with "-", "_" or a space between words.
    body = (
        "To-Units: office, it\n"
        "cc_units: hr\n"
        "SCOPE: all\n"
        "Type: notice\n"
        "Urgency: extra urgent\n"
        "Deadline: 12-01\n"
        "Leave Type: annual\n"
        "From-To: 2026-12-01 to 2026-12-03\n"
        "\n"
        "Text."
    )
    draft = parse_draft("Notice", body)
    assert draft.to_units == ("office", "it")
    assert draft.cc_units == ("hr",)
    assert draft.scope == ("all",)
    assert draft.doc_type == "notice"
    assert draft.urgency == "特急"
    assert draft.deadline == "12-01"
    assert draft.leave_type == "annual"
    assert draft.period == "2026-12-01 to 2026-12-03"
    assert draft.body == "Text."


def test_body_opening_with_a_salutation_is_all_body() -> None:
    # "尊敬的領導：" looks like a key and a colon, but it is not a key: no header block.
    body = "尊敬的領導：\n主送：辦公室\n\n以上。"
    draft = parse_draft("報告", body)
    assert draft.to_units == ()
    assert draft.body == body


def test_english_memo_is_not_a_header_block() -> None:
    # An English memo opens "To: …": bare To and Cc are not keys, so the memo stays text.
    body = "To: all staff\nCc: HR\n\nPlease note."
    assert parse_draft("Memo", body).body == body


def test_unknown_keys_are_reported() -> None:
    # A misspelt key inside the block is not guessed at; the answer names it.
    draft = parse_draft("x", "主送：辦公室\n抄宋：人事處\n\n正文")
    assert draft.unknown_keys == ("抄宋",)
    assert draft.cc_units == ()


def test_forgotten_blank_line_before_salutation() -> None:
    # The author forgot the blank line; "各處室：" has nothing after its colon and is not a key,
    # so it opens the text instead of being swallowed as a field.
    draft = parse_draft("x", "主送：辦公室\n各處室：\n請準時參加。")
    assert draft.to_units == ("辦公室",)
    assert draft.body == "各處室：\n請準時參加。"
    assert draft.unknown_keys == ()


def test_forgotten_blank_line_before_text() -> None:
    # A line that is not "key: value" ends the block even without a blank line.
    draft = parse_draft("x", "主送：辦公室\n請準時參加。")
    assert draft.body == "請準時參加。"


def test_wrapped_unit_lists_continue() -> None:
    # Clients wrap long lines: an indented line, or one after a trailing 、, continues the value.
    body = "主送：辦公室、信息化處、\n人事處\n抄送：財務處,\n   大連分局\n\n正文"
    draft = parse_draft("x", body)
    assert draft.to_units == ("辦公室", "信息化處", "人事處")
    assert draft.cc_units == ("財務處", "大連分局")


def test_leading_blank_lines_and_bom() -> None:
    # Apple Mail may open a body with a byte-order mark and a blank line before the block.
    draft = parse_draft("x", "\ufeff\r\n主送：辦公室\r\n\r\n正文\r\n")
    assert draft.to_units == ("辦公室",)
    assert draft.body == "正文\n"


def test_repeated_list_key_adds() -> None:
    # Two 主送 lines add up, without repeats.
    draft = parse_draft("x", "主送：辦公室\n主送：人事處、辦公室\n\n")
    assert draft.to_units == ("辦公室", "人事處")


def test_unreadable_urgency_is_a_problem() -> None:
    # 緊急程度 must be a grade Yizhan knows; anything else is reported, not dropped.
    draft = parse_draft("x", "緊急程度：很急\n\n")
    assert draft.urgency is None
    assert any("很急" in p for p in draft.problems)


def test_normal_urgency_does_not_lower_a_tag() -> None:
    # [特急] in the subject and 緊急程度：普通 in the block: the more urgent grade holds.
    assert parse_draft("[特急] x", "緊急程度：普通\n\n").urgency == "特急"


def test_header_only_body() -> None:
    # A mail that is nothing but the block has an empty body.
    draft = parse_draft("x", "主送：辦公室")
    assert draft.to_units == ("辦公室",)
    assert draft.body == ""


# --- Unit lists -----------------------------------------------------------------------------


def test_split_units_on_every_separator() -> None:
    # Each separator DESIGN.md allows, half- and full-width, with stray spaces and a full stop.
    text = "辦公室、信息化處，人事處, 財務處；大連分局; office\n丹東分局。"
    assert split_units(text) == (
        "辦公室",
        "信息化處",
        "人事處",
        "財務處",
        "大連分局",
        "office",
        "丹東分局",
    )


def test_split_units_drops_empties_and_repeats() -> None:
    # "辦公室、、辦公室，" names one unit.
    assert split_units("辦公室、、辦公室，") == ("辦公室",)
    assert split_units("") == ()


@given(st.lists(st.sampled_from(["辦公室", "office", "人事處", "hr"]), min_size=1), st.data())
def test_split_units_round_trip(units: list[str], data: st.DataObject) -> None:
    # Whatever mix of separators joins the refs, the same refs come back in order.
    seps = [data.draw(st.sampled_from([",", "，", "、", ";", "；", " , "])) for _ in units]
    text = "".join(u + s for u, s in zip(units, seps, strict=True))
    assert split_units(text) == tuple(dict.fromkeys(units))


def test_resolve_by_id_and_name_in_both_scripts() -> None:
    # Ids (any case), Traditional names as in the org file, and Simplified names all resolve.
    ids, unknown = resolve_units(
        ["office", "IT", "人事處", "卫生检疫处", "检验监管处", "财务处", "大连分局", "丹东分局"],
        _demo(),
    )
    assert ids == (
        "office",
        "it",
        "hr",
        "quarantine",
        "inspection",
        "finance",
        "dalian",
        "dandong",
    )
    assert unknown == ()


def test_resolve_reports_unknown_refs_in_order() -> None:
    # Refs that name no unit come back as written, so the answer can quote them.
    ids, unknown = resolve_units(["辦公室", "宣傳處", "nosuch", "辦公室"], _demo())
    assert ids == ("office",)
    assert unknown == ("宣傳處", "nosuch")


@pytest.mark.parametrize("word", ["全局", "全局各單位", "全局各单位", "all", "ALL"])
def test_resolve_all_units(word: str) -> None:
    # 全局 (all-bureau scope, 第二十三條) names every unit, in id order.
    directory = _demo()
    ids, unknown = resolve_units([word, "office"], directory)
    assert ids == tuple(sorted(directory.units))
    assert unknown == ()


def test_simplified_folds_the_demo_names() -> None:
    # Every unit name of the demo bureau folds to its Simplified spelling.
    expected = {
        "bureau": "辽宁出入境检验检疫局",
        "office": "办公室",
        "it": "信息化处",
        "hr": "人事处",
        "inspection": "检验监管处",
        "quarantine": "卫生检疫处",
        "finance": "财务处",
        "dalian": "大连分局",
        "dandong": "丹东分局",
    }
    units = _demo().units
    assert {uid: simplified(units[uid].name) for uid in expected} == expected


def test_table_is_traditional_simplified_pairs() -> None:
    # The table is read two characters at a time: a slip that shifts it would map every
    # following character to the wrong one, so check its shape.
    table = _TRADITIONAL_SIMPLIFIED
    assert len(table) % 2 == 0
    pairs = [(table[i], table[i + 1]) for i in range(0, len(table), 2)]
    assert all(t != s for t, s in pairs)
    simplified_side = {s for _, s in pairs}
    assert not simplified_side & {t for t, _ in pairs}


def test_simplified_folds_the_demo_people() -> None:
    # A delegate may be named in either script (授權 李军 至 …), so people's names fold too.
    people = _demo().people
    assert simplified(people["zhaojianguo"].name) == "赵建国"
    assert simplified(people["lijun"].name) == "李军"
    assert simplified(people["liangguoqiang"].name) == "梁国强"
    assert simplified(people["dupeng"].name) == "杜鹏"
