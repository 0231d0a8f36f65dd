"""TOOLS, GET name, TOOLS ADD and TOOLS REMOVE at cmd@ (常用工具下載, 第二條, 第十一條).

Staff list the files the IT department publishes and fetch one, attached, to their own
mailbox inside the organisation (第十七條); the IT department publishes and removes them
(``desk.tools``). A tools command is read by its own grammar (``routing.tools``), which also
takes ``發布工具 name`` and the command in the subject with the description in the body.
"""

from __future__ import annotations

from yizhan.daemon.desk.commands.base import Usage
from yizhan.daemon.desk.request import Request
from yizhan.routing.commands import Command, Verb
from yizhan.routing.tools import ToolAction, ToolRequest, tool_request

__all__ = ["Tools"]


class Tools:
    """See the module docstring and ``EmailCommand``."""

    verb = Verb.TOOLS
    usages = (
        Usage(example="工具", form="TOOLS", summary="常用工具 tools published by IT"),
        Usage(example="下載 名稱", form="GET name", summary="下載工具 download a tool"),
        Usage(
            example="工具 發布 名稱",
            form="TOOLS ADD name",
            summary="信息化處發布工具 the IT department publishes a tool"
            "（附件為文件，正文為說明 file attached, description in the body）",
        ),
        Usage(
            example="工具 下架 名稱",
            form="TOOLS REMOVE name",
            summary="信息化處下架工具 the IT department removes a tool",
        ),
    )
    doc = r"""### 工具 · TOOLS — 常用工具下載 (第二條、第十一條)

信息化處發布工作需要的文件（安裝程序、模板、操作手冊），附說明。`工具` 列出全部，`工具 詞語` 只列相符的。
The IT department publishes the files staff need (installers, templates, manuals) with a
description. `TOOLS` lists them all, `TOOLS word` those that match.

```
To: cmd@oa.example
Subject: 工具
```

```
To: cmd@oa.example
Subject: TOOLS vpn
```

回覆 Answer:

```
信息化處發布的工具 1 個 / 1 tool(s) published by the IT department:

■ vpn-client  VPN 客戶端，外網辦公時使用。適用 Windows 10/11，雙擊安裝。
  文件 File: vpn-setup.exe  大小 Size: 3.2 MB  日期 Date: 2026-11-25  版本 Version: 2
  下載 Download: mailto:cmd@oa.example?subject=GET%20vpn-client
```

### 下載 · GET name — 下載工具

點清單裡的 mailto: 鏈接，或自己寫：Click the link in the list, or write:

```
To: cmd@oa.example
Subject: 下載 vpn-client
```

```
To: cmd@oa.example
Subject: GET vpn-client
```

回覆 Answer: `附件是工具 vpn-client（第 2 版，3.2 MB）。`, the description, the SHA-256, and the
file attached, byte for byte as published. 只發給在冊職工，只發到本人郵箱，且本人郵箱須在本單位郵件域內（第十七條）；超過 `[tools] max_download`（默認 20 MB）的工具回覆請向信息化處索取；名稱寫錯時回覆相近的名稱。
Only to staff in the directory, only to their own mailbox, and only when that mailbox is inside
the organisation (art. 17); a tool over `[tools] max_download` (20 MB by default) is answered
with "ask the IT department"; a misspelt name is answered with the close names. `GET #12` /
`GET 12` (a document id or number) is not a tool: it fetches a document (above).

### 發布工具 · TOOLS ADD name — 信息化處 IT department only

主題寫命令，正文寫說明，附件是文件（一個）。同名再次發布即替換為新版本（版本號加一）。信息化處的程序（.exe、.msi）只有這樣發到 cmd@ 才能通過收信檢查；其他人發布會被拒絕並說明原因。每次發布和下架都記入審計日誌。
The command in the subject, the description in the body, the file attached (exactly one). The
same name again replaces it as the next version. Programs (.exe, .msi) pass the gateway only as
an IT member's TOOLS ADD to cmd@; anyone else is refused with the reason. Every publication and
removal is audited.

```
To: cmd@oa.example
Subject: 工具 發布 vpn-client

VPN 客戶端，外網辦公時使用。
適用 Windows 10/11，雙擊安裝。

(attached: vpn-setup.exe)
```

```
To: cmd@oa.example
Subject: TOOLS ADD vpn-client

VPN client for working from outside. Windows 10/11, double-click to install.

(attached: vpn-setup.exe)
```

也可寫 Also written as: `工具 发布 vpn-client`, `發布工具 vpn-client`, or the command as the
body's first line with the description below it. 名稱 Names: 1–64 letters (any script), digits,
`. _ + -`, not only digits. 回覆 Answer: `已發布工具 vpn-client（第 2 版，替換第 1 版）：vpn-setup.exe，3.2 MB，application/x-msdos-program。` and the SHA-256.

### 下架工具 · TOOLS REMOVE name — 信息化處 IT department only

```
To: cmd@oa.example
Subject: 工具 下架 vpn-client
```

```
To: cmd@oa.example
Subject: TOOLS REMOVE vpn-client
```

也可寫 Also: `下架工具 vpn-client`. 回覆 Answer: `已下架工具 vpn-client（第 2 版）。`

管理員也可在控制台操作 The administrator may do the same at the console:
`yizhan tool add NAME FILE --description TEXT`, `yizhan tool list [--json]`,
`yizhan tool remove NAME` (audited as `console`)."""  # noqa: E501

    def recognise(self, request: Request) -> ToolRequest | None:
        """The tools command the mail carries, if it is one."""
        return tool_request(request.subject, request.body)

    def process(self, request: Request, command: Command) -> None:
        """Answer the tools command the mail carries (the list, when it says no more)."""
        self.answer(request, self.recognise(request) or ToolRequest(action=ToolAction.LIST))

    def answer(self, request: Request, asked: ToolRequest) -> None:
        """Carry out ``asked`` and answer, with the file attached for a GET."""
        account = request.account
        if account is None:
            request.refuse_unauthenticated()
            return
        answer = request.desk.tools.answer(
            request.session,
            asked,
            account=account,
            address=request.sender.address,
            msg=request.msg,
            directory=request.directory,
            now=request.now,
        )
        request.reply(answer.text, to=answer.to, attachment=answer.attachment, kind="tool")
