"""The pickup: makes the inbound rows of the messages the gateway spooled, in a thread of its own.

The gateway acknowledges a message once its bytes and its envelope are on disk
(``mailstore/spool.py``); the pickup takes each spool file, in the order they were written,
inserts its rows in one transaction (several files' rows together when they queue up), and only
then removes the file and wakes the processor. Files left by a crash or by a database that was
away are taken at start, on every retry and whenever the pickup idles (another daemon sharing
the data directory may have died with files in the spool), so an acknowledged message always
becomes a row.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

from yizhan import crashpoints
from yizhan.daemon.context import Context
from yizhan.daemon.metrics import SPOOL_FILES
from yizhan.mailstore.inbound import InboundWriter, record_spooled
from yizhan.mailstore.spool import IncomingSpool

__all__ = ["Intake", "Pickup"]

log = logging.getLogger("yizhan.pickup")

#: Spool files taken into one transaction at most (a group holds up to 32 messages).
FILES_AT_ONCE: Final = 64
#: Waits between tries while the database is away, doubling up to the last.
RETRY_SECONDS: Final = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
#: How long the pickup idles before it looks into the spool for files it was not handed.
SWEEP_SECONDS: Final = 30.0
#: What says the database is away (or was lost mid-way), not that it refused the rows.
_AWAY: Final = (OperationalError, InterfaceError, DisconnectionError)

_STOP: Final = Path()


class Pickup:
    """See the module docstring. ``on_committed`` gets the new row ids on the event loop."""

    def __init__(
        self, ctx: Context, spool: IncomingSpool, *, on_committed: Callable[[list[int]], object]
    ) -> None:
        self._engine = ctx.engine
        self._spool = spool
        self._on_committed = on_committed
        self._queue: queue.SimpleQueue[Path] = queue.SimpleQueue()
        # Files this daemon's gateway spooled: no row can have been made of them yet, unless
        # by another daemon, and then the unique path refuses ours (a second try looks).
        self._just_spooled: set[Path] = set()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Take what an earlier run left in the spool, then whatever the gateway spools."""
        self._loop = asyncio.get_running_loop()
        SPOOL_FILES.set_function(self.waiting)
        for path in self._spool.waiting():
            self._queue.put(path)
        self._thread = threading.Thread(target=self._run, name="pickup", daemon=True)
        self._thread.start()

    def waiting(self) -> int:
        """How many spool files have no rows yet."""
        return len(self._spool.waiting())

    def take(self, path: Path) -> None:
        """Pick up ``path`` (called in the gateway's threads, so it never blocks)."""
        self._just_spooled.add(path)
        self._queue.put(path)

    async def stop(self) -> None:
        """Make the rows of what is already spooled (if the database lets it), then stop."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        await asyncio.to_thread(self._thread.join)
        self._thread = None

    def _run(self) -> None:
        stopping = False
        while not stopping:
            try:
                paths = [self._queue.get(timeout=SWEEP_SECONDS)]
            except queue.Empty:
                # Idle: what another daemon sharing this spool left when it died is taken here.
                paths = self._spool.waiting()
                if not paths:
                    continue
            while len(paths) < FILES_AT_ONCE and not self._queue.empty():
                paths.append(self._queue.get())
            if _STOP in paths:
                stopping = True
                paths = [p for p in paths if p != _STOP]
            waits = iter(RETRY_SECONDS)
            while paths := self._pick_up(paths):
                if stopping:
                    log.warning("stopping with %d spool files to pick up at start", len(paths))
                    return
                threading.Event().wait(next(waits, RETRY_SECONDS[-1]))
                # What was spooled meanwhile goes into the next try too, in its order.
                paths = sorted({*paths, *self._spool.waiting()})

    def _pick_up(self, paths: list[Path]) -> list[Path]:
        """Make the rows of ``paths``; return those left because the database is away.

        A group the database refuses is tried file by file, and a file refused on its own
        twice is set aside (``spool/refused/``, logged as an error), so that it holds up no
        other.
        """
        try:
            self._record(paths)
            return []
        except _AWAY as exc:
            log.error("making the inbound rows of %d spool files failed: %r", len(paths), exc)
            return paths
        except Exception:
            if len(paths) > 1:
                return [left for path in paths for left in self._pick_up([path])]
        # Tried once more on its own: another daemon sharing this spool may have made the same
        # rows at the same moment (the unique path refused ours); then there is nothing to do.
        try:
            self._record(paths, retry=True)
            return []
        except _AWAY:
            return paths
        except Exception as exc:
            kept = self._spool.set_aside(paths[0])
            log.error(
                "the database refused the rows of %s (%r); set aside as %s", *paths, exc, kept
            )
            return []

    def _record(self, paths: list[Path], *, retry: bool = False) -> None:
        envelopes: list[dict[str, Any]] = []
        for path in dict.fromkeys(paths):
            try:
                envelopes += self._spool.read(path)
            except FileNotFoundError:
                continue  # picked up already, by an earlier try or another daemon
        maybe_known = not self._just_spooled.issuperset(paths) or retry
        ids = record_spooled(self._engine, envelopes, maybe_known=maybe_known) if envelopes else []
        # A crash here leaves the files: found again at start, they make no second row.
        crashpoints.reached("pickup")
        for path in paths:
            self._spool.remove(path)
            self._just_spooled.discard(path)
        if ids and self._loop is not None:
            self._loop.call_soon_threadsafe(self._notify, ids)

    def _notify(self, ids: list[int]) -> None:
        try:
            self._on_committed(ids)
        except Exception:
            log.exception("on_committed callback failed for %s", ids)


@dataclass(frozen=True)
class Intake:
    """The gateway's writer, which spools, and the pickup behind it."""

    writer: InboundWriter
    pickup: Pickup

    @classmethod
    def open(cls, ctx: Context, *, on_committed: Callable[[list[int]], object]) -> Intake:
        """Prepare ``<data_dir>/spool`` and start the pickup (on the running event loop)."""
        spool = IncomingSpool(ctx.config.data_dir / "spool")
        spool.prepare()
        pickup = Pickup(ctx, spool, on_committed=on_committed)
        pickup.start()
        return cls(InboundWriter(ctx, spool=spool, on_spooled=pickup.take), pickup)

    async def aclose(self) -> None:
        """Finish what is being written, make the rows of what is spooled, then stop."""
        await self.writer.aclose()
        await self.pickup.stop()
