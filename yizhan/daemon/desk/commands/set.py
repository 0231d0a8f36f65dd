"""SET key value at cmd@ (設置): the sender's own settings: digests, language, news, key."""

from __future__ import annotations

import logging

from sqlalchemy import event

from yizhan.daemon.context import Context
from yizhan.daemon.desk.commands.base import Usage
from yizhan.daemon.desk.request import Request
from yizhan.mailstore import audit
from yizhan.mailstore.settings import load_settings, save_settings
from yizhan.routing.commands import Command, Verb
from yizhan.routing.settings import apply_set
from yizhan.signing.keyring import KeyringError

__all__ = ["Set"]

log = logging.getLogger("yizhan.desk.commands")


class Set:
    """Digest times (第八條), the language of Yizhan's mail, the news subscription (xinxi@),
    the registered signature key; ``SET`` alone lists them (``routing.settings``). See
    ``EmailCommand``."""

    verb = Verb.SET
    usages = (
        Usage(
            example="設置 摘要 關閉",
            form="SET digest off",
            summary="個人設置 settings (設置 alone lists them)",
        ),
        Usage(
            example="設置 語言 en", form="SET language zh_CN|zh_TW|en", summary="郵件語言 language"
        ),
        Usage(
            example="設置 信息訂閱 是",
            form="SET xinxi on|off",
            summary="訂閱信息宣傳 subscribe to the news",
        ),
    )
    doc = r"""### 設置 · SET — 個人設置

```
To: cmd@oa.example
Subject: 設置

設置 摘要 08:30,13:30
```

```
To: cmd@oa.example
Subject: SET digest 08:30,13:30
```

| 中文 | English | 作用 what it does |
|---|---|---|
| `設置` | `SET` | 列出當前設置 · lists your settings |
| `設置 摘要 關閉` / `設置 摘要 開啟` | `SET digest off` / `SET digest on` | 關閉待辦摘要／恢復按角色的默認時間 · digest off / back to your role's times |
| `設置 摘要 08:30,13:30` | `SET digest 08:30,13:30` | 自選摘要時間（工作時間內的整點或半點）· your own digest times (on the hour or half hour, within working hours) |
| `設置 語言 繁體` | `SET language zh_CN\|zh_TW\|en` | 驛站郵件的語言 · the language of Yizhan's mail |
| `設置 信息訂閱 是` / `否` | `SET xinxi on` / `off` | 訂閱／退訂信息宣傳 · subscribe to / leave the news items of xinxi@ |
| `設置 密鑰` | `SET key` | 顯示已登記的簽名密鑰及登記方法 · your registered signature key and how to register one |
| `設置 密鑰 刪除` | `SET key off` | 刪除已登記的簽名密鑰 · take your registered key back |

回覆 Answer: `已設置。Saved.` and the settings as they now stand (`待辦摘要 digest: …`,
`語言 language: …`, `信息訂閱 news (xinxi@): …`, `簽名密鑰 signature key: …`)."""  # noqa: E501

    def process(self, request: Request, command: Command) -> str:
        """Save the setting and answer with the settings as they now stand."""
        account = request.account
        assert account is not None
        session, ctx = request.session, request.ctx
        key = ctx.keyring.person_key(account)
        outcome = apply_set(
            command.argument,
            load_settings(session, account),
            roles=request.directory.people[account].roles,
            calendar=request.desk.calendar,
            signature_key=str(key) if key is not None else None,
        )
        save_settings(session, account, outcome.changes, actor=account, now=request.now)
        if outcome.remove_key and key is not None:
            audit.record(
                session,
                at=request.now,
                actor=account,
                action="key.remove",
                target=account,
                detail={"fingerprint": str(key)},
            )
            # The keyring is no part of this transaction: the key is taken back once the
            # audit entry and the answer are committed, never for an answer that was not.
            event.listen(
                session, "after_commit", lambda _s: _take_key_back(ctx, account), once=True
            )
        return outcome.reply


def _take_key_back(ctx: Context, account: str) -> None:
    try:
        ctx.keyring.revoke_person_key(account)
    except KeyringError as exc:
        log.error("%s: the signature key could not be taken back: %s", account, exc)
