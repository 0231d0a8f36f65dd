"""How long what is finished is kept (第二十三條: bulletins are cleared at year end; 第四條(二):
IT keeps the system clean and its data safe), and what a legal hold keeps whatever the age.

Pure: the retention job (daemon/jobs/retention.py) reads the rows and the clock and asks here.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

#: The states in which a document is finished: nothing waits on it any more.
FINISHED: Final = frozenset({"closed", "archived", "cancelled", "withdrawn"})


def document_expired(
    *,
    state: str,
    finished_at: dt.datetime,
    waiting_steps: int,
    held: bool,
    now: dt.datetime,
    keep_days: int,
) -> bool:
    """Whether an archived document may be deleted now (``keep_days`` 0 keeps it for ever).

    Only a finished document with no waiting step goes, ``keep_days`` after it finished; one
    under a legal hold never does, however old.
    """
    if keep_days <= 0 or held or waiting_steps or state not in FINISHED:
        return False
    return finished_at <= now - dt.timedelta(days=keep_days)


def copy_expired(*, made_at: dt.datetime, held: bool, now: dt.datetime, keep_days: int) -> bool:
    """Whether a raw message or a Maildir copy may be deleted now (0 keeps it for ever)."""
    if keep_days <= 0 or held:
        return False
    return made_at <= now - dt.timedelta(days=keep_days)
