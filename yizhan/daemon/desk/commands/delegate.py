"""DELEGATE name UNTIL date at cmd@ (外出授權, 第九條): someone acts for the sender while away."""

from __future__ import annotations

from yizhan.daemon.desk.commands.base import Usage
from yizhan.daemon.desk.request import Request
from yizhan.mailstore.delegations import active_delegations, start_delegation
from yizhan.routing.commands import Command, Verb, parse_delegate
from yizhan.routing.delegation import check_new_delegation

__all__ = ["Delegate"]


class Delegate:
    """Every step for the sender, those waiting now too, goes to the delegate until the date
    named or a REVOKE (第九條). See ``EmailCommand``."""

    verb = Verb.DELEGATE
    usages = (
        Usage(
            example="授權 王芳 至 2026-12-01",
            form="DELEGATE name UNTIL date",
            summary="外出授權 delegate while away",
        ),
    )
    doc = r"""### 授權 · DELEGATE — 外出授權 (第九條)

```
To: cmd@oa.example
Subject: 授權

授權 王芳 至 2026-12-01
```

```
To: cmd@oa.example
Subject: DELEGATE wangfang UNTIL 2026-12-01
```

期間所有給您的待辦（包括已在等您的）轉給被授權人，標「代」；到期當天提醒您，到期自動結束。回覆 Answer: `已授權 王芳（wangfang）代為處理，至 2026-12-01；轉交待辦 N 件。回崗後請發送「收回授權」。`
While it lasts, every step for you (those already waiting too) goes to the delegate, marked 代;
you are reminded on its last day and it ends by itself."""  # noqa: E501

    def process(self, request: Request, command: Command) -> str:
        """Start the delegation (replacing one in force) and hand the waiting steps over."""
        account = request.account
        assert account is not None
        parsed = parse_delegate(command.argument)
        if parsed is None:
            return (
                "請寫明授權給誰、到哪天，例如：授權 王芳 至 2026-12-01\n"
                "Say whom and until when, e.g.: DELEGATE wangfang UNTIL 2026-12-01"
            )
        name, until = parsed
        session, now, config = request.session, request.now, request.ctx.config
        result = check_new_delegation(
            account,
            name,
            until,
            request.directory,
            active_delegations(session),
            now,
            config.tzinfo,
            domain=config.domain,
        )
        if isinstance(result, str):
            return result
        moved = start_delegation(session, result, now=now)
        delegate = request.directory.people[result.delegate]
        until_local = result.until.astimezone(config.tzinfo).date().isoformat()
        return (
            f"已授權 {delegate.name}（{delegate.account}）代為處理，至 {until_local}；"
            f"轉交待辦 {moved} 件。回崗後請發送「收回授權」。\n"
            f"Delegated to {delegate.name} ({delegate.account}) until {until_local}; "
            f"{moved} waiting step(s) re-sent. Send REVOKE when you are back."
        )
