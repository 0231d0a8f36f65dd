"""HELP (幫助) at any address: every module address and every command, in Chinese and English.

The answer is made from the module table and the command registry, so a new module or a new
command is listed as soon as it exists; docs/modules.md has each with example mails.
"""

from __future__ import annotations

from collections.abc import Sequence

from yizhan.daemon.config import Config
from yizhan.daemon.desk.commands.base import EmailCommand, Usage
from yizhan.daemon.desk.modules import MODULES
from yizhan.daemon.desk.request import Request
from yizhan.routing.commands import VERB_WORDS, Command, Verb

__all__ = ["Help", "help_text"]


class Help:
    """The answer to HELP, and to a mail to cmd@ that Yizhan cannot read. See
    ``EmailCommand``; it is made with the other commands, which it lists."""

    verb = Verb.HELP
    usages = (Usage(example="幫助", form="HELP", summary="本說明 this help"),)
    doc = r"""### 幫助 · HELP

```
To: cmd@oa.example
Subject: 幫助
```

```
To: cmd@oa.example
Subject: HELP
```

回覆 Answer: every module address, every reply command and every cmd@ command in one mail,
pointing to this page. A mail to cmd@ that Yizhan cannot understand gets the same answer,
quoting what it did not understand. (At ziliao@, `幫助` / `HELP` explains the library.)"""

    def __init__(self, others: Sequence[EmailCommand]) -> None:
        self.others = tuple(others)

    def process(self, request: Request, command: Command) -> str:
        """The help, quoting what was not understood."""
        return self.text(request.ctx.config, command)

    def text(self, config: Config, command: Command | None = None) -> str:
        """The help for ``config``'s addresses (see :func:`help_text`)."""
        return help_text(config, (*self.others, self), command)


def help_text(
    config: Config, commands: Sequence[EmailCommand], command: Command | None = None
) -> str:
    """The HELP answer: every module address, every reply command and every cmd@ command
    (``commands``), in Chinese and English; each module's commands, with an example mail for
    each, are in docs/modules.md, served by the admin page at ``[admin] public_url``/help
    (第十一條). An UNKNOWN ``command`` is quoted first."""
    domain = config.domain
    intro = ""
    if command is not None and command.verb is Verb.UNKNOWN and command.argument:
        intro = f"沒有看懂「{command.argument[:60]}」。Yizhan did not understand that.\n\n"
    words = "\n".join(
        f"  {verb.value.upper():<9} " + " / ".join(VERB_WORDS[verb]) for verb in VERB_WORDS
    )
    modules = "\n".join(
        f"  {config.addresses.get(name, (name,))[0] + '@' + domain:<24} {module.help}"
        for name, module in MODULES.items()
    )
    usages = "\n".join(usage.line() for c in commands for usage in c.usages)
    return (
        intro + "驛站 Yizhan 幫助 / help\n\n"
        "發到模塊地址開始一件事 · Write to a module's address to start:\n"
        f"{modules}\n"
        "郵件主題為標題；正文開頭可寫「主送：」「抄送：」「範圍：」「緊急程度：」「期限：」等行，"
        "以空行結束。\n"
        "The subject is the title; the body may open with To-Units:, Cc-Units:, Scope:, "
        "Urgency:, Deadline: lines and a blank line.\n\n"
        "回覆驛站的郵件即可辦理，第一行寫命令：\nReply to Yizhan's mail with the command on "
        f"the first line:\n{words}\n\n"
        f"發到 cmd@{domain} · At cmd@{domain}:\n{usages}\n\n"
        "每個模塊的命令和示例郵件 · Each module's commands with example mails: "
        f"{config.admin_public_url}help\n"
        "同事之間的工作郵件照常經單位郵件服務器收發；寫到 帳號@驛站域名 的郵件直接轉到本人郵箱。\n"
        "Work mail between colleagues flows through the organisation's mail server as before; "
        f"mail to account@{domain} is forwarded to the person's own mailbox.\n"
    )
