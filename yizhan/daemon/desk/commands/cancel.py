"""CANCEL #id reason at cmd@ (撤銷, 第六條): the office ends a document."""

from __future__ import annotations

from yizhan.daemon.desk.commands.base import Usage
from yizhan.daemon.desk.commands.office import decided, not_office, target
from yizhan.daemon.desk.request import Outcome, Request
from yizhan.routing.commands import Command, Verb
from yizhan.routing.oversight import cancel, parse_cancel

__all__ = ["Cancel"]

USAGE = "撤銷 #12 重複發文 / CANCEL #12 reason"


class Cancel:
    """Every waiting step is withdrawn and its holder told, with the author; the request mails
    are void and their reply addresses refuse. See ``EmailCommand``."""

    verb = Verb.CANCEL
    usages = (
        Usage(
            example="撤銷 #12 理由",
            form="CANCEL #id reason",
            summary="辦公室撤銷文件 the office ends a document",
        ),
    )
    doc = r"""### 撤銷 · CANCEL — 辦公室撤銷文件 (第六條)

```
To: cmd@oa.example
Subject: 撤銷 #12 重複發文
```

```
To: cmd@oa.example
Subject: CANCEL #12 sent twice
```

只限辦公室，理由必寫。文件狀態變為 `cancelled`，所有待辦撤回；經辦人和起草人收到通知和理由，原待辦通知作廢（回覆時被告知已撤銷），IMAP 的「公文/待辦」副本移到「公文/已辦」。簡體：撤销。
The office only, with a reason. The document's state becomes `cancelled` and every waiting step
is withdrawn; the people who held them and the author are told why, their request mails are void
(a reply is told the document was cancelled) and their 公文/待辦 copies move to 公文/已辦.
回覆 Answer: `已撤銷文件 #12「標題」，撤回待辦 N 件`."""  # noqa: E501

    def process(self, request: Request, command: Command) -> Outcome | str:
        """Decide the cancellation, or say why not."""
        refused = not_office(request, "撤銷 CANCEL")
        if refused is not None:
            return refused
        ref = parse_cancel(command.argument)
        found = target(request, ref, USAGE)
        if isinstance(found, str):
            return found
        assert ref is not None and request.account is not None
        document, state = found
        decision = cancel(
            state,
            reason=ref.text,
            actor=request.account,
            directory=request.directory,
            now=request.now,
        )
        return decided(request, document, decision)
