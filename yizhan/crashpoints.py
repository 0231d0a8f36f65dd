"""Named points where the crash suite (``python -m proofs.crash``) kills the daemon on purpose.

``YIZHAN_CRASH_AT="maildir:3"`` makes the process SIGKILL itself the third time it reaches
``reached("maildir")``: inside a Maildir delivery, between the fsynced temporary file and its
link into ``new/``. The points are the moments a crash is hardest on: ``db.commit`` (just
before a database COMMIT), ``maildir``, ``relay`` (a mail accepted by the relay, not yet
marked sent), ``job`` (a scheduled job's work done, its transaction not committed: a slot job
or a batch of the reminder sweep), ``seal`` (inside a sealed distribution: the custodian's SEAL
applied, the seal key unlocked in gpg, a receiving clerk's sealed copy queued, the transaction
not committed), ``pickup`` (the inbound rows of spooled messages committed, their spool file not
yet removed). Without
the variable (always, in production) ``reached`` returns at once.

``YIZHAN_CRASH_ON_MESSAGE="marker"`` (tests only) makes a processing worker SIGKILL itself,
not its daemon, whenever it processes a message containing ``marker``: a poison message, as
one that crashes a C library would be.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Final

__all__ = ["POINTS", "armed", "die_with", "poisoned", "reached"]

POINTS: Final = ("db.commit", "maildir", "job", "relay", "seal", "pickup")


def _target() -> tuple[str, int] | None:
    wanted = os.environ.get("YIZHAN_CRASH_AT", "")
    point, _, count = wanted.partition(":")
    if point not in POINTS:
        return None
    return point, int(count or "1")


_TARGET: Final = _target()
_seen = 0
_lock = threading.Lock()
# The daemon, when this process is one of its processing workers: a crash there is the
# daemon's crash, as it was when processing ran in a thread of the daemon.
_daemon: int | None = None


def die_with(daemon: int) -> None:
    """Make a crash point reached in this process (a processing worker) kill ``daemon`` too."""
    global _daemon
    _daemon = daemon


def armed(point: str) -> bool:
    """Whether the crash suite asked for ``point`` in this process."""
    return _TARGET is not None and _TARGET[0] == point


def reached(point: str) -> None:
    """Die here if the crash suite asked for this point and this is its turn."""
    if _TARGET is None or _TARGET[0] != point:
        return
    global _seen
    with _lock:
        _seen += 1
        if _seen == _TARGET[1]:
            if _daemon is not None:
                os.kill(_daemon, signal.SIGKILL)
            os.kill(os.getpid(), signal.SIGKILL)


_POISON: Final = os.environ.get("YIZHAN_CRASH_ON_MESSAGE", "").encode()


def poisoned(raw: bytes) -> None:
    """Die here, alone, if the tests marked this message as one that kills its worker."""
    if _POISON and _POISON in raw:
        os.kill(os.getpid(), signal.SIGKILL)
