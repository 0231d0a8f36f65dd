"""GET #id at cmd@ (下載): the whole document with its files, to the sender's own mailbox."""

from __future__ import annotations

from yizhan.daemon.desk.commands.base import Usage
from yizhan.daemon.desk.commands.tools import Tools
from yizhan.daemon.desk.copies import record_refused, send_copy
from yizhan.daemon.desk.request import Request
from yizhan.mailstore.documents import find_document
from yizhan.routing.commands import Command, Verb
from yizhan.routing.tools import ToolAction, ToolRequest, is_document_reference

__all__ = ["GetDocument"]


class GetDocument:
    """A document the sender may see, sent whole (``desk.copies``); ``GET name`` of a tool is
    the tools command's. See ``EmailCommand``."""

    verb = Verb.GET
    usages = (
        Usage(
            example="下載 #12",
            form="GET #id",
            summary="全文及附件 the whole document with its files",
        ),
    )
    doc = r"""### 下載 · GET #id — 取回文件全文

```
To: cmd@oa.example
Subject: 下載 #12
```

```
To: cmd@oa.example
Subject: GET 遼檢辦〔2026〕5號
```

寫文件編號（`#12`、`12`）或文號。只能取回您可查看的文件；驛站把全文、辦理記錄和全部附件發到您在通訊錄登記的郵箱（不是發件地址）。內部資料（ziliao@ 的資料，以及標題或附件名顯示為操作手冊、技術文檔的文件）不發往本單位以外的郵箱，拒絕並報告信息化處（第十七條）。
Write the document's id (`#12`, `12`) or its number. Only documents you may see; Yizhan sends
the text, the trail and every attachment to the mailbox the directory lists for you (not the
From address). Internal material (a ziliao@ material, or a document whose title or file names
make it a manual or technical document) never goes to a mailbox outside the organisation: that
is refused and reported to the IT department (art. 17). 回覆 Answer: a mail `[全文] 標題` with the
document and its files attached."""  # noqa: E501

    def process(self, request: Request, command: Command) -> str | None:
        """Send the copy, or say why not; None once sent (or refused and reported)."""
        account = request.account
        assert account is not None
        ref = command.argument.strip()
        document = find_document(request.session, ref) if ref else None
        if document is None:
            if not is_document_reference(ref):
                # Not a document: a tool, by its name.
                Tools().answer(request, ToolRequest(action=ToolAction.GET, name=ref))
                return None
            return _not_found(ref)
        if not request.desk.finder.may_see(request.session, document, account, request.directory):
            record_refused(request, document, account)
            # The same words as for a document that does not exist: no id list by asking.
            return _not_found(ref)
        send_copy(request, document)
        return None


def _not_found(ref: str) -> str:
    return (
        f"找不到文件「{ref}」，或您無權查看。請寫文件編號或文號，例如：下載 #12\n"
        f"No document {ref!r} that you may see (none, or not yours to see). Send GET with its "
        "id or number, e.g. GET #12"
    )
