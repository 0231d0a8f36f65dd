"""TODO at cmd@ (待辦): what waits for the sender, each with the address to reply to."""

from __future__ import annotations

from yizhan.daemon.desk.commands.base import Usage
from yizhan.daemon.desk.request import Request
from yizhan.mailstore.documents import waiting_steps
from yizhan.mailstore.models import Document
from yizhan.routing.commands import Command, Verb
from yizhan.routing.tokens import make_token

__all__ = ["Todo"]


class Todo:
    """Every step waiting for the sender, with its deadline and its r+TOKEN@ address (第八條).
    See ``EmailCommand``."""

    verb = Verb.TODO
    usages = (Usage(example="待辦", form="TODO", summary="我的待辦 what waits for you"),)
    doc = r"""### 待辦 · TODO

```
To: cmd@oa.example
Subject: 待辦
```

```
To: cmd@oa.example
Subject: TODO
```

回覆 Answer: `待辦 N 件 / N waiting:` one line per step with its deadline and the `r+…@` address
to reply to."""

    def process(self, request: Request, command: Command) -> str:
        """The sender's waiting steps, one line each."""
        account = request.account
        assert account is not None
        steps = waiting_steps(request.session, account)
        if not steps:
            return "您沒有待辦事項。Nothing is waiting for you."
        config = request.ctx.config
        lines = []
        for step in steps:
            document = request.session.get(Document, step.document_id)
            assert document is not None
            due = (
                step.due_at.astimezone(config.tzinfo).strftime("%m-%d %H:%M")
                if step.due_at
                else "-"
            )
            token = make_token(
                config.secret, document_id=document.id, step_id=step.id, account=account
            )
            lines.append(
                f"- #{document.id} {document.title} [{step.name}/{step.action}] 期限 due {due}  "
                f"回覆 reply: r+{token}@{config.domain}"
            )
        return f"待辦 {len(steps)} 件 / {len(steps)} waiting:\n" + "\n".join(lines)
