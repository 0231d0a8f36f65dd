"""Tests for routing.materials: the internal-materials library's rules (第十七條)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from tests.conftest import demo_org
from yizhan.routing.bulletins import parse_scope
from yizhan.routing.commands import parse_command
from yizhan.routing.directory import Directory, parse_org
from yizhan.routing.materials import (
    STATE,
    RequestKind,
    file_material,
    in_scope,
    outside_refusal,
    parse_request,
    scope_text,
)

NOW = dt.datetime(2026, 11, 26, 2, 0, tzinfo=dt.UTC)
DIRECTORY: Directory = parse_org(demo_org())
DOMAINS = frozenset({"oa.example", "bureau.example"})


def request(line: str, *, files: bool = False) -> RequestKind:
    return parse_request(parse_command(line), has_attachments=files).kind


def test_commands_and_filings_are_told_apart() -> None:
    assert request("搜索 操作手冊") is RequestKind.SEARCH
    assert request("搜索") is RequestKind.LIST  # a search without words lists
    assert request("目錄") is RequestKind.LIST
    assert request("LIST") is RequestKind.LIST
    assert request("下載 12") is RequestKind.GET
    assert parse_request(parse_command("GET #12"), has_attachments=False).material_id == 12
    assert parse_request(parse_command("下載 手冊"), has_attachments=False).problem
    assert request("幫助") is RequestKind.HELP
    assert request("範圍：信息化處") is RequestKind.FILE
    # A mail with files is always a material, whatever its first line says.
    assert request("搜索引擎使用手冊", files=True) is RequestKind.FILE


def test_filing_needs_a_title_a_known_scope_and_content() -> None:
    def filed(title: str, scope: list[str], body: str, files: list[str]) -> str:
        decision = file_material(
            title=title,
            author="mali",
            scope=parse_scope(scope, DIRECTORY),
            body=body,
            attachments=files,
            now=NOW,
        )
        return "accepted" if decision.accepted else decision.reply

    assert filed("OA手冊", ["信息化處", "綜合人員"], "", ["手冊.docx"]) == "accepted"
    assert "範圍" in filed("OA手冊", [], "說明", ["手冊.docx"])
    assert "不認識" in filed("OA手冊", ["火星處"], "說明", [])
    assert "空" in filed("OA手冊", ["信息化處"], "", [])
    assert "主題" in filed("", ["信息化處"], "說明", [])


def test_scope_is_units_roles_people_and_the_filer() -> None:
    decision = file_material(
        title="OA手冊",
        author="mali",
        scope=parse_scope(["信息化處", "綜合人員", "趙建國"], DIRECTORY),
        body="說明",
        attachments=[],
        now=NOW,
    )
    assert decision.state == STATE
    fields = decision.fields
    for account in ("mali", "helei", "wangfang", "zhaojianguo"):
        assert in_scope(fields, "mali", account, DIRECTORY), account
    assert not in_scope(fields, "mali", "xiewenbin", DIRECTORY)
    assert scope_text(fields, DIRECTORY) == "信息化處、綜合人員、趙建國"
    everyone = file_material(
        title="x",
        author="mali",
        scope=parse_scope(["全局"], DIRECTORY),
        body="說明",
        attachments=[],
        now=NOW,
    ).fields
    assert in_scope(everyone, "mali", "xiewenbin", DIRECTORY)


def test_nothing_goes_to_an_outside_mailbox() -> None:
    # 第十七條: a person whose mail is delivered to qq.com gets no material, whoever they are.
    inside = DIRECTORY.people["helei"]
    assert outside_refusal(inside, "oa.example", DOMAINS) is None
    outside = dataclasses.replace(inside, email="helei@qq.com")
    refusal = outside_refusal(outside, "oa.example", DOMAINS)
    assert refusal is not None and "第十七條" in refusal[0] and "art. 17" in refusal[1]
    # No own mailbox: the OA address is theirs, inside.
    assert outside_refusal(dataclasses.replace(inside, email=None), "oa.example", DOMAINS) is None
