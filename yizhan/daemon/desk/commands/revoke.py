"""REVOKE at cmd@ (收回授權, 第九條): back at work, the sender takes their delegation back."""

from __future__ import annotations

from yizhan.daemon.desk.commands.base import Usage
from yizhan.daemon.desk.request import Request
from yizhan.mailstore import audit
from yizhan.mailstore.delegations import done_on_behalf, end_delegations, hand_over
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
        session, now, tz = request.session, request.now, request.ctx.config.tzinfo
        rows = end_delegations(session, account, now, how="revoked")
        if not rows:
            return "您目前沒有有效的授權。You have no active delegation."
        moved = sum(
            hand_over(session, row.delegate, account, on_behalf_of=None, only_for=account)
            for row in rows
        )
        since = min(row.starts_at for row in rows)
        lines = [
            f"- #{s.document_id} {s.name}: {s.outcome or ''} ({s.done_by}, "
            f"{s.done_at.astimezone(tz):%Y-%m-%d %H:%M})"
            for s in done_on_behalf(session, account, since)
            if s.done_at
        ]
        audit.record(session, at=now, actor=account, action="delegation.revoke", target=account)
        return (
            f"已收回授權；{moved} 件待辦已轉回給您。授權期間代辦事項 {len(lines)} 件：\n"
            f"Delegation revoked; {moved} waiting step(s) came back to you. "
            f"Done on your behalf ({len(lines)}):\n" + "\n".join(lines)
        )
