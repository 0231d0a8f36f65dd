"""STATUS id-or-number at cmd@ (查詢): where a document the sender may see stands."""

from __future__ import annotations

from yizhan.daemon.desk.commands.base import Usage
from yizhan.daemon.desk.request import Request
from yizhan.mailstore.documents import find_document, load_state
from yizhan.routing.commands import Command, Verb
from yizhan.routing.visibility import may_see
from yizhan.templates.presentation import document_summary

__all__ = ["Status"]


class Status:
    """The document's number, state, who has it now, and its trail; only for someone who may
    see it (``routing.visibility``). See ``EmailCommand``."""

    verb = Verb.STATUS
    usages = (
        Usage(
            example="查詢 12", form="STATUS id-or-number", summary="文件狀態 where a document is"
        ),
    )
    doc = r"""### 查詢 · STATUS — 文件辦理狀態

```
To: cmd@oa.example
Subject: 查詢 遼檢辦〔2026〕5號
```

```
To: cmd@oa.example
Subject: STATUS 12
```

只能查您經手的文件、發給您的公告（歸檔的公告只有辦公室）和您在使用範圍內的內部資料；辦公室可查所有文件（休假申請和內部資料除外，第六條），查詢、搜索和下載都一樣。
Only documents you took part in, bulletins published to you (archived ones: the office only)
and the internal materials in whose scope you are; the office sees every document but leave
requests and internal material (art. 6), with STATUS, SEARCH and GET alike.
回覆 Answer: `#12 標題`, `文號 Number`,
`狀態 State`, `待辦 Waiting for: 姓名（步驟）` and the trail."""

    def process(self, request: Request, command: Command) -> str:
        """The summary of the document named, or why not."""
        account = request.account
        assert account is not None
        ref = command.argument.strip()
        document = find_document(request.session, ref) if ref else None
        not_found = (
            f"找不到文件「{ref}」，或您無權查看。請寫文件編號或文號，"
            "例如：查詢 12 或 查詢 遼檢辦〔2026〕5號\n"
            f"No document {ref!r} that you may see (none, or not yours to see). Send STATUS "
            "with its id or number, e.g. STATUS 12"
        )
        if document is None:
            return not_found
        state = load_state(request.session, document)
        if not may_see(state, account, request.directory):
            # The same words as for a document that does not exist: no id list by asking.
            return not_found
        return document_summary(state, request.directory, request.ctx.config.tzinfo)
