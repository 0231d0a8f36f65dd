"""Tests for routing.tools: how the tools commands at cmd@ are read and answered (常用工具下載).

Called on literal subjects and bodies, as a mail client would write them.
"""

from __future__ import annotations

import datetime as dt

import pytest

from yizhan.routing.tools import (
    ToolAction,
    ToolInfo,
    ToolRequest,
    close_names,
    is_document_reference,
    listing,
    name_problem,
    tool_request,
)

ADD, REMOVE, GET, LIST = ToolAction.ADD, ToolAction.REMOVE, ToolAction.GET, ToolAction.LIST


@pytest.mark.parametrize(
    ("subject", "body", "expected"),
    [
        # Publishing: the command in the subject, the description as the body.
        (
            "TOOLS ADD vpn-client",
            "VPN 客戶端，外網辦公用。\n",
            (ADD, "vpn-client", "VPN 客戶端，外網辦公用。"),
        ),
        ("tools add vpn-client", "說明", (ADD, "vpn-client", "說明")),
        ("工具 發布 vpn-client", "說明", (ADD, "vpn-client", "說明")),
        ("工具：发布 vpn-client", "说明", (ADD, "vpn-client", "说明")),
        ("發布工具 「公文模板」", "模板", (ADD, "公文模板", "模板")),
        ("Re: TOOLS ADD x", "說明", (ADD, "x", "說明")),
        # Or on the body's first line, the description below it; a signature is left out.
        ("新工具", "发布工具 handbook\n使用说明。\n-- \n何磊", (ADD, "handbook", "使用说明。")),
        ("TOOLS ADD a", "TOOLS ADD a\n說明", (ADD, "a", "說明")),
        # A description that opens with a command word is still a description.
        ("TOOLS ADD vpn", "下載後雙擊安裝。", (ADD, "vpn", "下載後雙擊安裝。")),
        ("TOOLS REMOVE vpn-client", "", (REMOVE, "vpn-client", "")),
        ("工具 下架 vpn-client", "", (REMOVE, "vpn-client", "")),
        ("下架工具 vpn-client", "", (REMOVE, "vpn-client", "")),
        ("x", "TOOLS DELETE old", (REMOVE, "old", "")),
        # Listing, with an optional filter.
        ("工具", "", (LIST, "", "")),
        ("TOOLS", "", (LIST, "", "")),
        ("工具 vpn", "", (LIST, "vpn", "")),
        # Fetching: the mailto: link's subject, or the body's first line.
        ("GET vpn-client", "", (GET, "vpn-client", "")),
        ("下載 vpn-client", "", (GET, "vpn-client", "")),
        ("x", "下载：「vpn-client」\n謝謝", (GET, "vpn-client", "")),
        ("GET", "", (GET, "", "")),
    ],
)
def test_tools_commands_are_read(
    subject: str, body: str, expected: tuple[ToolAction, str, str]
) -> None:
    request = tool_request(subject, body)
    assert request == ToolRequest(action=expected[0], name=expected[1], description=expected[2])


@pytest.mark.parametrize(
    ("subject", "body"),
    [
        ("GET #12", ""),
        ("GET 12", ""),
        ("下載 遼檢辦〔2026〕5號", ""),
        ("x", "GET #3"),
        ("待辦", ""),
        ("幫助", ""),
        ("工具", "hello"),  # the body's first line is the command, and it is none
    ],
)
def test_documents_and_other_commands_are_not_tools(subject: str, body: str) -> None:
    # GET #id fetches a document (its own handler); other commands are not ours either.
    assert tool_request(subject, body) is None


def test_document_references() -> None:
    assert is_document_reference("#12") and is_document_reference(" 12 ")
    assert is_document_reference("遼檢辦〔2026〕5號")
    assert not is_document_reference("vpn-client") and not is_document_reference("7zip")


def test_names() -> None:
    # Letters of any script, digits, . _ + -; never only digits (document ids) nor spaces.
    assert name_problem("vpn-client") is None and name_problem("公文模板_v2.1") is None
    assert name_problem("") is not None
    assert name_problem("123") is not None and name_problem("a b") is not None
    assert name_problem("#1") is not None and name_problem("x" * 65) is not None


def test_close_names() -> None:
    names = ["vpn-client", "office-template", "handbook"]
    assert close_names("vpn-clinet", names)[0] == "vpn-client"
    assert close_names("VPN", names) == ["vpn-client"]
    assert close_names("zzz", names) == []


def test_listing() -> None:
    tool = ToolInfo(
        name="vpn-client",
        description="VPN 客戶端\n外網辦公用",
        filename="vpn.exe",
        content_type="application/x-msdos-program",
        size=2 * 1024 * 1024,
        sha256="ab" * 32,
        version=3,
        published_by="helei",
        published_at=dt.datetime(2026, 11, 25, 17, 0, tzinfo=dt.UTC),
    )
    tz = dt.timezone(dt.timedelta(hours=8))
    text = listing([tool], domain="oa.example", tz=tz)
    assert "vpn-client  VPN 客戶端 外網辦公用" in text
    assert "2 MB" in text and "2026-11-26" in text and "Version: 3" in text
    assert "mailto:cmd@oa.example?subject=GET%20vpn-client" in text
    assert "沒有與" in listing([tool], domain="oa.example", tz=tz, wanted="zzz")
    assert "沒有發布工具" in listing([], domain="oa.example", tz=tz)
