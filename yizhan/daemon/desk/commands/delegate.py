"""DELEGATE name UNTIL date at cmd@ (外出授權, 第九條): someone acts for the sender while away."""

from __future__ import annotations

from yizhan.daemon.desk.commands.base import Usage
from yizhan.daemon.desk.request import Request
from yizhan.mailstore.delegations import active_delegations, start_delegation
from yizhan.routing.commands import Command, Verb, parse_delegate, parse_delegate_period
from yizhan.routing.delegation import check_new_delegation, parse_until

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
        Usage(
            example="授權 王芳 自 2026-12-10 至 2026-12-20",
            form="DELEGATE name FROM date UNTIL date",
            summary="預先安排授權（简体 授权 … 自 … 至 …）delegate from a later day",
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
you are reminded on its last day and it ends by itself.

```
To: cmd@oa.example
Subject: 授權 王芳 自 2026-12-10 至 2026-12-20
```

```
To: cmd@oa.example
Subject: DELEGATE wangfang FROM 2026-12-10 UNTIL 2026-12-20
```

預先安排：第一天開始時自動生效（屆時在等您的待辦轉給被授權人），最後一天結束，開始和結束時雙方都收到通知。與您已有的授權日期重疊時不受理，請先「收回授權」或改期。简体：授权 王芳 自 … 至 …（也可寫「从 … 到 …」）。
Planned ahead: it begins by itself on the first day (your waiting steps then go to the
delegate) and ends on the last; you and the delegate are told at both ends. Dates that overlap
a delegation you already made are refused: REVOKE it first or choose other dates. Answer:
`已安排授權 王芳（wangfang）自 2026-12-10 至 2026-12-20…`.

管理頁面 `/account` 的「外出授權」發出同樣的命令（可填開始日期），列出已安排和生效中的授權，並可收回授權。
On the admin page, `/account` sends the same command (with an optional first day), lists your
planned and active delegations, and takes them back (REVOKE)."""  # noqa: E501

    def process(self, request: Request, command: Command) -> str:
        """Start the delegation (replacing one in force) and hand the waiting steps over."""
        account = request.account
        assert account is not None
        session, now, config = request.session, request.now, request.ctx.config
        period = parse_delegate_period(command.argument)
        if period is not None and parse_until(period[1], now, config.tzinfo) is None:
            # "王自強 至 12-01": 自 inside a name, not the first day.
            period = None
        first: str | None = None
        if period is not None:
            name, first, until = period
        else:
            parsed = parse_delegate(command.argument)
            if parsed is None:
                return (
                    "請寫明授權給誰、到哪天，例如：授權 王芳 至 2026-12-01"
                    "（或 授權 王芳 自 2026-12-10 至 2026-12-20）\n"
                    "Say whom and until when, e.g.: DELEGATE wangfang UNTIL 2026-12-01 "
                    "(or DELEGATE wangfang FROM 2026-12-10 UNTIL 2026-12-20)"
                )
            name, until = parsed
        result = check_new_delegation(
            account,
            name,
            until,
            request.directory,
            active_delegations(session),
            now,
            config.tzinfo,
            domain=config.domain,
            from_text=first,
        )
        if isinstance(result, str):
            return result
        moved = start_delegation(session, result, now=now)
        delegate = request.directory.people[result.delegate]
        until_local = result.until.astimezone(config.tzinfo).date().isoformat()
        if result.starts_at > now:
            from_local = result.starts_at.astimezone(config.tzinfo).date().isoformat()
            return (
                f"已安排授權 {delegate.name}（{delegate.account}）自 {from_local} 至 {until_local}"
                "代為處理；屆時待辦自動轉交，開始和結束時您和對方都會收到通知。\n"
                f"Planned: {delegate.name} ({delegate.account}) acts for you from {from_local} "
                f"until {until_local}; your waiting steps go over then, and you are both told "
                "when it begins and ends."
            )
        return (
            f"已授權 {delegate.name}（{delegate.account}）代為處理，至 {until_local}；"
            f"轉交待辦 {moved} 件。回崗後請發送「收回授權」。\n"
            f"Delegated to {delegate.name} ({delegate.account}) until {until_local}; "
            f"{moved} waiting step(s) re-sent. Send REVOKE when you are back."
        )
