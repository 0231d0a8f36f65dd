"""TODO at cmd@ (待辦): what waits for the sender, each with the address to reply to."""

from __future__ import annotations

from yizhan.daemon.desk.commands.base import Usage
from yizhan.daemon.desk.request import Request
from yizhan.mailstore.documents import unit_waiting_steps, waiting_steps
from yizhan.mailstore.models import Document
from yizhan.routing.commands import Command, Verb
from yizhan.routing.tokens import make_token

__all__ = ["UNIT_WORDS", "Todo"]

#: What follows TODO to ask for the unit's items.
UNIT_WORDS = frozenset({"unit", "本單位", "本单位", "單位", "单位"})
#: Who may ask for their unit's items (第五條: the clerk keeps them, the head answers for them).
UNIT_ROLES = frozenset({"clerk", "unit_head"})


class Todo:
    """Every step waiting for the sender, with its deadline and its r+TOKEN@ address (第八條).
    See ``EmailCommand``."""

    verb = Verb.TODO
    usages = (
        Usage(example="待辦", form="TODO", summary="我的待辦 what waits for you"),
        Usage(
            example="待辦 本單位",
            form="TODO unit",
            summary="本單位待辦（綜合人員、主要領導；简体 待办 本单位）your unit's open items "
            "(clerk, head)",
        ),
    )
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
to reply to.

```
To: cmd@oa.example
Subject: 待辦 本單位
```

```
To: cmd@oa.example
Subject: TODO unit
```

單位的綜合人員和主要領導可查看本單位所有未辦結事項（本單位人員的待辦和發給本單位的步驟），逾期的標「逾期」，以便催辦（第五條、第二十一條）。简体：待办 本单位。
A unit's clerk or head sees every open item of the unit (the steps waiting for its people and
those addressed to the unit), overdue ones marked, to chase them (arts. 5, 21). 回覆 Answer:
`本單位待辦 N 件 / N open in 單位名:` one line per step with who holds it and its deadline."""  # noqa: E501

    def process(self, request: Request, command: Command) -> str:
        """The sender's waiting steps, one line each (or their unit's, for ``TODO unit``)."""
        account = request.account
        assert account is not None
        if command.argument.strip().casefold() in UNIT_WORDS:
            return _unit_items(request, account)
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


def _unit_items(request: Request, account: str) -> str:
    """Every waiting step of the sender's unit: for its people, or addressed to the unit."""
    person = request.directory.people[account]
    if not (person.roles & UNIT_ROLES):
        return (
            "只有本單位的綜合人員和主要領導可以查看本單位待辦。發送「待辦」查看您自己的待辦。\n"
            "Only a unit's clerk or head sees the unit's open items; send TODO for your own."
        )
    unit = request.directory.units.get(person.unit)
    unit_name = unit.name if unit is not None else person.unit
    config, now = request.ctx.config, request.now
    rows = unit_waiting_steps(request.session, person.unit)
    if not rows:
        return f"{unit_name}沒有未辦結的事項。Nothing is open in {unit_name}."
    lines = []
    for step, document in rows:
        holder = request.directory.people.get(step.assignee)
        due = step.due_at.astimezone(config.tzinfo).strftime("%m-%d %H:%M") if step.due_at else "-"
        late = " 逾期 OVERDUE" if step.due_at is not None and step.due_at < now else ""
        lines.append(
            f"- #{document.id} {document.title} [{step.name}/{step.action}] "
            f"{holder.name if holder else step.assignee}（{step.assignee}）期限 due {due}{late}"
        )
    return f"本單位待辦 {len(rows)} 件 / {len(rows)} open in {unit_name}:\n" + "\n".join(lines)
