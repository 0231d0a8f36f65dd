"""The organisation directory as the gateway reads it: reloaded at most every few seconds."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Final

from yizhan.daemon.context import Context
from yizhan.mailstore.directory import load_directory
from yizhan.routing.directory import Directory

log = logging.getLogger("yizhan.smtp")

#: How old the cached directory may be before a lookup reloads it, in seconds.
DIRECTORY_MAX_AGE: Final = 5.0
# A recipient not found is looked up again in a directory no older than this, in case the person
# was added a moment ago (bounded, since anyone the MTA relays can name unknown recipients).
DIRECTORY_RECHECK: Final = 1.0


class DirectoryCache:
    """The organisation directory, reloaded from the database at most every few seconds.

    A reload runs in a worker thread; concurrent lookups share it. If a reload fails, the
    previous directory is kept and the failure logged.
    """

    def __init__(
        self,
        ctx: Context,
        *,
        max_age: float = DIRECTORY_MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # A reader's snapshot: a reload never waits for a writer's transaction on SQLite.
        self._sessions = ctx.reading
        self.max_age = max_age
        self._clock = clock
        self._directory: Directory | None = None
        self._loaded_at = 0.0
        self._loading: asyncio.Future[Directory] | None = None

    async def get(self, *, max_age: float | None = None) -> Directory:
        """The directory, no older than ``max_age`` seconds (default: the cache's)."""
        limit = self.max_age if max_age is None else max_age
        if self._directory is not None and self._clock() - self._loaded_at < limit:
            return self._directory
        if self._loading is None:
            self._loading = asyncio.ensure_future(self._reload())
        return await asyncio.shield(self._loading)

    async def _reload(self) -> Directory:
        started = self._clock()
        try:
            directory = await asyncio.to_thread(self._read)
        except Exception:
            if self._directory is None:
                raise
            log.exception("reloading the directory failed; using the one loaded before")
            return self._directory
        finally:
            self._loading = None
        self._directory, self._loaded_at = directory, started
        return directory

    def _read(self) -> Directory:
        with self._sessions() as session:
            return load_directory(session)
