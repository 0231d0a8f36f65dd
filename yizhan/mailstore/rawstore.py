"""Keeps raw message bytes on disk, durably: written, fsynced, renamed, directory fsynced.

Files live under ``<data_dir>/mail/<area>/<yyyy-mm-dd>/``, one ``.eml`` per message, named by a
random id. A reader never sees a half-written file: bytes go to ``tmp/`` first and are renamed
into place only after ``fsync`` (Mailman ``core/switchboard.py``). The rename is made durable by
fsyncing the directory; callers that store many messages at once may batch that last step with
:func:`sync_directories`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

#: A file in ``tmp/`` older than this was left by a crash (a store takes seconds).
STALE_TMP_SECONDS: Final = 15 * 60


@dataclass(frozen=True, kw_only=True)
class StoredFile:
    """Where a message's bytes were stored and their digest."""

    path: Path
    relative: str
    sha256: str
    size: int


class RawStore:
    """A directory tree of immutable ``.eml`` files."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"

    def prepare(self) -> None:
        """Create the top directories."""
        self.tmp.mkdir(parents=True, exist_ok=True)

    def write(
        self, area: str, data: bytes, now: dt.datetime, *, sync_dir: bool = True
    ) -> StoredFile:
        """Store ``data`` durably and return where; blocking, so call it from a worker thread.

        With ``sync_dir=False`` the file's bytes are on disk but the rename is not yet made
        durable: the caller must call :func:`sync_directories` on ``path.parent`` before it
        acknowledges the message.
        """
        day_dir = self.root / area / now.strftime("%Y-%m-%d")
        if not day_dir.is_dir():
            day_dir.mkdir(parents=True, exist_ok=True)
            # A new day directory must itself survive a crash.
            sync_directories([day_dir.parent, day_dir.parent.parent])
        name = f"{uuid.uuid4().hex}.eml"
        tmp_path = self.tmp / name
        write_fsynced(tmp_path, data)
        final = day_dir / name
        os.rename(tmp_path, final)
        if sync_dir:
            sync_directories([day_dir])
        return StoredFile(
            path=final,
            relative=str(final.relative_to(self.root)),
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
        )

    def read(self, relative: str) -> bytes:
        """The bytes stored under ``relative``."""
        return (self.root / relative).read_bytes()

    def remove_stale_tmp(self, *, older_than: float = STALE_TMP_SECONDS) -> int:
        """Delete files left in ``tmp/`` by a crash; none of them was ever acknowledged.

        Only those older than ``older_than`` seconds: another daemon sharing this store may
        be writing the younger ones (a store lasts a few seconds at most).
        """
        count = 0
        cutoff = time.time() - older_than
        for path in self.tmp.glob("*.eml"):
            try:
                if path.stat().st_mtime >= cutoff:
                    continue
            except FileNotFoundError:
                continue
            path.unlink(missing_ok=True)
            count += 1
        return count


def write_fsynced(path: Path, data: bytes) -> None:
    """Create ``path`` (it must not exist) holding ``data``, on disk when this returns; the
    caller renames it into place and makes the rename durable."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_directories(directories: Iterable[Path]) -> None:
    """fsync each directory once, making the renames inside it durable."""
    for directory in dict.fromkeys(directories):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
