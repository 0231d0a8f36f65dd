"""EXTEND #id date at cmd@ (延期, 第八條, 第二十一條): the office moves a deadline."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from yizhan.daemon.desk.commands.base import Usage
from yizhan.daemon.desk.commands.office import decided, not_office, target
from yizhan.daemon.desk.request import Outcome, Request
from yizhan.routing.commands import Command, Verb
from yizhan.routing.delegation import parse_until
from yizhan.routing.oversight import extend, parse_extend

__all__ = ["Extend"]

USAGE = "延期 #12 2026-12-20 / EXTEND #12 2026-12-20"


class Extend:
    """The waiting steps (or the one named) are due at the end of the day named; their
    holders are told, and reminders start again. See ``EmailCommand``."""

    verb = Verb.EXTEND
    usages = (
        Usage(
            example="延期 #12 2026-12-20",
            form="EXTEND #id date",
            summary="辦公室延長期限 the office moves a deadline",
        ),
    )
    doc = r"""### 延期 · EXTEND — 辦公室延長辦理期限 (第八條)

```
To: cmd@oa.example
Subject: 延期 #12 2026-12-20
```

```
To: cmd@oa.example
Subject: EXTEND #12 2026-12-20
```

只限辦公室。文件所有待辦步驟（或寫 `#12.34` 只改一個）的期限改為那天下班時（須是以後的日期；不是工作日時回覆會提醒），提醒和升級重新計算；經辦人收到通知。日期寫法同授權：2026-12-20、12月20日、下週五。
The office only. Every waiting step of the document (or the one written `#12.34`) is due at the
end of that day (a later one), reminders and escalation start again, and the people
who hold them are told. Dates as for DELEGATE. 回覆 Answer: `已將文件 #12「標題」N 個待辦步驟的期限改為 2026-12-20 17:30`."""  # noqa: E501

    def process(self, request: Request, command: Command) -> Outcome | str:
        """Decide the new deadline, or say why not."""
        refused = not_office(request, "延期 EXTEND")
        if refused is not None:
            return refused
        ref = parse_extend(command.argument)
        found = target(request, ref, USAGE)
        if isinstance(found, str):
            return found
        assert ref is not None and request.account is not None
        document, state = found
        calendar = request.desk.calendar
        until = parse_until(ref.text, request.now, calendar.tz) if ref.text else None
        if until is None:
            return (
                f"看不懂日期「{ref.text}」。請寫新期限，例如：{USAGE}\n"
                f"Cannot read the date {ref.text!r}; write the new deadline, e.g. "
                "EXTEND #12 2026-12-20"
            )
        day = until.date()
        due_at = dt.datetime.combine(day, calendar.day_end, tzinfo=calendar.tz)
        decision = extend(
            state,
            step_id=ref.step_id,
            due_at=due_at,
            actor=request.account,
            directory=request.directory,
            now=request.now,
            shown=f"{day.isoformat()} {calendar.day_end:%H:%M}",
        )
        if decision.accepted and not calendar.is_working_day(day):
            # The day asked for is kept; the office is told it is a day off.
            decision = replace(
                decision,
                reply=f"{decision.reply}\n（{day.isoformat()} 不是工作日 is not a working day）",
            )
        return decided(request, document, decision)
