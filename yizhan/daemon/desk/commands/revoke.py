"""REVOKE at cmd@ (收回授權, 第九條): back at work, the sender takes their delegation back."""

from __future__ import annotations

from yizhan.daemon.desk.commands.base import Usage
from yizhan.daemon.desk.request import Request
from yizhan.mailstore.delegations import revoke_delegation
from yizhan.routing.commands import Command, Verb

__all__ = ["Revoke"]


class Revoke:
    """The steps still waiting with the delegate come back; the answer lists what was done
    on the sender's behalf meanwhile. See ``EmailCommand``."""

    verb = Verb.REVOKE
    usages = (Usage(example="收回授權", form="REVOKE", summary="收回授權 take it back"),)
    doc = r"""### 收回授權 · REVOKE

```
To: cmd@oa.example
Subject: 收回授權
```

```
To: cmd@oa.example
Subject: REVOKE
```

回覆 Answer: `已收回授權；N 件待辦已轉回給您。授權期間代辦事項 N 件：` and the list of what was
done on your behalf."""

    def process(self, request: Request, command: Command) -> str:
        """End the delegations in force and take their waiting steps back."""
        account = request.account
        assert account is not None
        revoked = revoke_delegation(request.session, account, now=request.now)
        if revoked is None:
            return "您目前沒有有效的授權。You have no active delegation."
        tz, moved = request.ctx.config.tzinfo, revoked.moved
        lines = [
            f"- #{s.document_id} {s.name}: {s.outcome or ''} ({s.done_by}, "
            f"{s.done_at.astimezone(tz):%Y-%m-%d %H:%M})"
            for s in revoked.done_on_behalf
            if s.done_at
        ]
        return (
            f"已收回授權；{moved} 件待辦已轉回給您。授權期間代辦事項 {len(lines)} 件：\n"
            f"Delegation revoked; {moved} waiting step(s) came back to you. "
            f"Done on your behalf ({len(lines)}):\n" + "\n".join(lines)
        )
