"""REASSIGN #id name reason at cmd@ (轉辦, 第六條, 第二十一條): the office gives a stuck step to
another person."""

from __future__ import annotations

from yizhan.daemon.desk.commands.base import Usage
from yizhan.daemon.desk.commands.office import decided, not_office, target
from yizhan.daemon.desk.request import Outcome, Request
from yizhan.routing.commands import Command, Verb
from yizhan.routing.oversight import find_person, parse_reassign, reassign

__all__ = ["Reassign"]

USAGE = "轉辦 #12 王芳 原經辦人出差 / REASSIGN #12 wangfang reason"


class Reassign:
    """The waiting step goes to the person named, with its deadline; the one who had it and
    the author are told why, and the old request mail is void. See ``EmailCommand``."""

    verb = Verb.REASSIGN
    usages = (
        Usage(
            example="轉辦 #12 王芳 理由",
            form="REASSIGN #id name reason",
            summary="辦公室轉辦 the office gives a waiting step to another person",
        ),
    )
    doc = r"""### 轉辦 · REASSIGN — 辦公室轉辦 (第六條, 第二十一條)

```
To: cmd@oa.example
Subject: 轉辦 #12 王芳 原經辦人出差
```

```
To: cmd@oa.example
Subject: REASSIGN #12 wangfang the person asked is away
```

只限辦公室。文件的待辦步驟（期限不變）改由所寫的人辦理，他收到待辦通知；原經辦人和起草人收到通知和理由，原通知作廢（回覆會被告知已轉辦）。有幾個步驟同時等待時寫 `#12.34`（文件.步驟，見回覆所列）。簡體：转办。
The office only. The document's waiting step (same deadline) goes to the person named, who gets
the request; the person who had it and the author are told why, and the old request is void.
When several steps wait, write `#12.34` (document.step, as the answer lists them).
回覆 Answer: `已將文件 #12「標題」的review步驟由…轉辦給…`."""  # noqa: E501

    def process(self, request: Request, command: Command) -> Outcome | str:
        """Decide the reassignment, or say why not."""
        refused = not_office(request, "轉辦 REASSIGN")
        if refused is not None:
            return refused
        ref = parse_reassign(command.argument)
        found = target(request, ref, USAGE)
        if isinstance(found, str):
            return found
        assert ref is not None and request.account is not None
        document, state = found
        person = find_person(ref.name, request.directory, request.ctx.config.domain)
        if person is None:
            return (
                f"找不到「{ref.name}」（或有同名的人）。請寫對方的帳號或姓名，例如：{USAGE}\n"
                f"No one (or more than one person) is known as {ref.name!r}; write the account."
            )
        decision = reassign(
            state,
            step_id=ref.step_id,
            to=person,
            reason=ref.text,
            actor=request.account,
            directory=request.directory,
            flow=request.desk.rules.flow(document.kind),
            now=request.now,
        )
        return decided(request, document, decision)
