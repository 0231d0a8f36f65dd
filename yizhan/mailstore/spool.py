"""The incoming spool: the envelopes of accepted messages whose inbound rows are not made yet.

What a 250 needs on disk is what a crash must not lose: the message's bytes (the raw store)
and its envelope (who sent it, to whom, how the sender was known, when). Both are files here;
the ``inbound`` row is made from them a moment later by the pickup (``daemon/pickup.py``), in
a transaction of its own. So the gateway's acknowledgement never waits for the database, and
on SQLite never for the processor's transaction holding its one writer (Postfix's smtpd,
incoming queue and pickup: small parts joined by a durable queue).

One file holds the envelopes of one group of messages acknowledged together (the group commit
of ``mailstore/inbound.py``), so a group costs one more fsync, not one a message. Files are
named by the time they were written, and the pickup takes them in that order, so inbound ids
keep the order of acceptance. A file is removed only after its rows are committed; the rows
are keyed by the raw file's path, so a file found again after a crash makes no second row.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any, Final

from yizhan.mailstore.rawstore import STALE_TMP_SECONDS, write_fsynced

__all__ = ["IncomingSpool"]

#: Where a file is written before it is renamed into ``incoming/``.
_TMP: Final = "tmp"
_INCOMING: Final = "incoming"
#: Files whose rows the database refused, kept for the operator.
_REFUSED: Final = "refused"
_SUFFIX: Final = ".json"
#: Envelope fields that are datetimes, written as ISO 8601.
_DATETIMES: Final = ("received_at",)


class IncomingSpool:
    """``<data_dir>/spool/``: ``tmp/`` for files being written, ``incoming/`` for the rest."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.incoming = root / _INCOMING
        self.tmp = root / _TMP

    def prepare(self) -> None:
        """Create the directories; remove files a crash left half written (never acknowledged).

        Only those older than the raw store's stale files: another daemon sharing this spool
        may be writing the younger ones.
        """
        for directory in (self.tmp, self.incoming):
            directory.mkdir(parents=True, exist_ok=True)
        cutoff = time.time() - STALE_TMP_SECONDS
        for path in self.tmp.glob(f"*{_SUFFIX}"):
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < cutoff:
                    path.unlink(missing_ok=True)

    def write(self, envelopes: list[dict[str, Any]]) -> Path:
        """Write one group's envelopes, fsynced, into ``incoming/``; return the file's path.

        The rename is not yet durable: the caller fsyncs ``incoming`` (with the raw store's
        directories, in one pass) before it acknowledges the messages.
        """
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:12]}{_SUFFIX}"
        data = json.dumps([_encoded(e) for e in envelopes], ensure_ascii=False).encode()
        tmp_path = self.tmp / name
        write_fsynced(tmp_path, data)
        final = self.incoming / name
        os.rename(tmp_path, final)
        return final

    def waiting(self) -> list[Path]:
        """The files not yet picked up, oldest first."""
        return sorted(self.incoming.glob(f"*{_SUFFIX}"))

    @staticmethod
    def read(path: Path) -> list[dict[str, Any]]:
        """The envelopes in ``path``, as they were given to :meth:`write`."""
        return [_decoded(e) for e in json.loads(path.read_bytes())]

    def set_aside(self, path: Path) -> Path:
        """Move a file the database will not take into ``refused/``; return its new path."""
        kept = self.root / _REFUSED / path.name
        kept.parent.mkdir(exist_ok=True)
        os.rename(path, kept)
        return kept

    @staticmethod
    def remove(path: Path) -> None:
        """Forget a file whose rows are committed (a leftover would only be found again)."""
        path.unlink(missing_ok=True)


def _encoded(envelope: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if k in _DATETIMES else v for k, v in envelope.items()}


def _decoded(envelope: dict[str, Any]) -> dict[str, Any]:
    return {k: dt.datetime.fromisoformat(v) if k in _DATETIMES else v for k, v in envelope.items()}
