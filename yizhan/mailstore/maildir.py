"""Delivers messages into Maildirs, once each, when no relay host is configured.

Each account has ``<root>/<account>/{tmp,new,cur}`` (mode 0700, as Dovecot expects of a
Maildir++ INBOX). A message is written to ``tmp/``, fsynced, hard-linked into ``new/`` and the
directory fsynced: a reader never sees half a message, and a delivered message survives a
crash. The file name is derived from the caller's unique key (the delivery), so delivering the
same thing again after a crash (written, but not yet marked sent) finds the first copy instead
of making a second, in ``new/`` or, once a mail client has seen it, in ``cur/``.

:func:`deliver_many` does the same for a round of messages at once (a sealed document's
thousand copies): a few threads write the files and link them into ``new/``, each file's
writeback started as soon as it is written, and then one ``syncfs(2)`` of the Maildirs'
filesystem makes every file and every directory entry of the round durable together, where an
fsync for each file and each ``new/`` made the disk flush its cache two thousand times. Only
then does it return, so a delivery is marked sent only when its bytes and its name are durable.
The price: ``syncfs`` also writes out whatever else is waiting to be written on that
filesystem (docs/perf.md, "Fan-out").
"""

from __future__ import annotations

import ctypes
import os
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

from yizhan import crashpoints
from yizhan.mailstore.rawstore import sync_directories

_UNIQUE = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_SUBDIRS = ("tmp", "new", "cur")
#: Threads writing a round's files: the copying into the page cache is the work, on a few
#: cores; the disk's own queue fills from the writeback each file starts.
WRITE_THREADS: Final = 4
#: syncfs(2) and sync_file_range(2), where the C library has them (Linux): one sync of the
#: filesystem for a whole round instead of an fsync for each file and each ``new/``.
_LIBC: Final = ctypes.CDLL(None, use_errno=True)
_syncfs: Final = getattr(_LIBC, "syncfs", None)
_sync_file_range: Final = getattr(_LIBC, "sync_file_range", None)
if _syncfs is not None:
    _syncfs.argtypes = [ctypes.c_int]
    _syncfs.restype = ctypes.c_int
if _sync_file_range is not None:
    _sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    _sync_file_range.restype = ctypes.c_int
_SYNC_FILE_RANGE_WRITE: Final = 2

_T = TypeVar("_T")
_R = TypeVar("_R")


@dataclass(frozen=True, kw_only=True)
class Letter:
    """One message for :func:`deliver_many`: whose Maildir, its bytes and its unique key."""

    account: str
    #: The message's bytes in pieces written one after the other (a head, a shared body).
    parts: Sequence[bytes]
    unique: str
    mail_from: str
    #: Whether it may have been delivered before (an earlier attempt of it was made): only
    #: then is the Maildir searched for it, ``cur/`` included, which grows with the mailbox.
    #: Either way ``new/`` never gets a second copy under its name.
    maybe_delivered: bool = True


def deliver(root: Path, account: str, data: bytes, unique: str, *, mail_from: str) -> Path:
    """Put ``data`` into ``account``'s Maildir under a name made from ``unique``; return it.

    ``Return-Path: <mail_from>`` is written in front of the bytes, as a final-delivery agent
    does; the message itself is kept byte for byte (a signature over it stays valid). If a
    message with this ``unique`` was delivered before, nothing is written and its current path
    is returned. Blocking: call it from a worker thread.
    """
    _check(account, unique)
    maildir = root / account
    sync_directories(_prepare(root, maildir))
    base = f"yizhan-{unique}"
    found = find(maildir, unique)
    if found is not None:
        return found

    tmp = _write_tmp(maildir, base, (data,), mail_from)
    crashpoints.reached("maildir")
    target = _link(tmp, maildir / "new" / base)
    sync_directories([maildir / "new", maildir / "tmp"])
    return target


def deliver_many(root: Path, letters: Sequence[Letter]) -> list[Path | OSError]:
    """:func:`deliver` for each of ``letters``, the whole batch synced together; for each,
    the path it is delivered under, or the OSError that kept it from being delivered.

    A few threads write the files, each starting its writeback as soon as it is written, and
    link them into ``new/``; then one ``syncfs`` makes all of it durable at once, the files'
    bytes and the directory entries alike (where the kernel offers no ``syncfs``, or a
    Maildir is on another filesystem than ``root``, each file and ``new/`` is fsynced
    instead). Nothing is reported delivered before its file and its name are durable.
    Blocking: call it from a worker thread.
    """
    for letter in letters:
        _check(letter.account, letter.unique)
    results: list[Path | OSError] = [OSError("not delivered")] * len(letters)
    if not letters:
        return results
    by_account: dict[str, list[int]] = {}
    for i, letter in enumerate(letters):
        by_account.setdefault(letter.account, []).append(i)
    if not root.is_dir():
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        sync_directories([root.parent])
    # Opened before anything is written: syncfs reports a writeback error of the filesystem
    # that happened since this descriptor was opened, so none of this batch's goes unseen.
    guard = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        device = os.fstat(guard).st_dev if _syncfs is not None else None

        def write_accounts(accounts: Sequence[str]) -> None:
            for account in accounts:
                indexes = by_account[account]
                try:
                    done = _deliver_account(root, account, [letters[i] for i in indexes], device)
                except OSError as exc:
                    done = [exc] * len(indexes)
                for i, result in zip(indexes, done, strict=True):
                    results[i] = result

        accounts = list(by_account)
        threads = min(WRITE_THREADS, len(accounts))
        failed = _in_parallel(write_accounts, [accounts[n::threads] for n in range(threads)])
        for chunk, outcome in zip(range(threads), failed, strict=True):
            if isinstance(outcome, OSError):
                for account in accounts[chunk::threads]:
                    for i in by_account[account]:
                        results[i] = outcome
        if device is not None:
            try:
                _sync_filesystem(guard)
            except OSError as exc:
                # Which file's bytes were lost is not known: none of the batch counts as
                # delivered, and each is tried again (and synced again) later.
                return [exc] * len(letters)
    finally:
        os.close(guard)
    return results


def _deliver_account(
    root: Path, account: str, letters: Sequence[Letter], device: int | None
) -> list[Path | OSError]:
    """Write and link ``letters`` into ``account``'s Maildir; synced here unless ``device``
    (the filesystem ``syncfs`` will sync) is the Maildir's."""
    maildir = root / account
    new = maildir / "new"
    created: list[Path] = []
    try:
        own_device = os.stat(new).st_dev
        os.stat(maildir / "tmp")
    except FileNotFoundError:
        created = _prepare(root, maildir)
        own_device = os.stat(new).st_dev
    # A Maildir on another filesystem (a symbolic link, a mount) is synced file by file.
    synced_here = own_device != device
    done: list[Path | OSError] = []
    for letter in letters:
        try:
            found = find(maildir, letter.unique) if letter.maybe_delivered else None
            if found is not None:
                done.append(found)
                continue
            base = f"yizhan-{letter.unique}"
            tmp = _write_tmp(maildir, base, letter.parts, letter.mail_from, fsync=synced_here)
            crashpoints.reached("maildir")
            done.append(_link(tmp, new / base))
        except OSError as exc:
            done.append(exc)
    if synced_here and any(isinstance(r, Path) for r in done):
        try:
            sync_directories([*created, new])
        except OSError as exc:
            return [exc] * len(done)
    return done


def _check(account: str, unique: str) -> None:
    if not _UNIQUE.match(unique):
        raise ValueError(f"unique {unique!r} must be letters, digits, - or _")
    if not account or "/" in account or account.startswith(".") or "\0" in account:
        raise ValueError(f"account {account!r} is not a Maildir name")


def _write_tmp(
    maildir: Path, base: str, parts: Iterable[bytes], mail_from: str, *, fsync: bool = True
) -> Path:
    """The message written under a fresh name in ``tmp/``, Return-Path first: fsynced, or
    (``fsync=False``, for a caller that syncs the whole filesystem after) on its way to disk."""
    pieces = [p for p in parts if p]
    head = pieces[0][:4096] if pieces else b""
    newline = b"\r\n" if b"\r\n" in head else b"\n"
    pieces.insert(0, b"Return-Path: <" + mail_from.encode("utf-8") + b">" + newline)
    # The temporary name is random, so two writers (which leases should prevent) could not
    # mix their bytes in one file; the final name is what makes delivery happen once.
    tmp = maildir / "tmp" / f"{base}.{uuid.uuid4().hex}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for piece in pieces:
            view = memoryview(piece)
            while view:
                view = view[os.write(fd, view) :]
        if fsync:
            os.fsync(fd)
        else:
            _start_writeback(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return tmp


def _link(tmp: Path, target: Path) -> Path:
    try:
        # link() never replaces an existing name, unlike rename(): if another writer got there
        # first, its copy stands and ours is dropped.
        os.link(tmp, target)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _start_writeback(fd: int) -> None:
    """Have the kernel start writing the file's bytes to disk now, without waiting: the disk
    works while the next files are written, and the final sync has less left to do."""
    if _sync_file_range is not None:
        _sync_file_range(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)


def _sync_filesystem(fd: int) -> None:
    """syncfs(2): every file and directory of ``fd``'s filesystem durable, or OSError."""
    assert _syncfs is not None
    if _syncfs(fd) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"syncfs: {os.strerror(err)}")


def _in_parallel(work: Callable[[_T], _R], items: Sequence[_T]) -> list[_R | OSError]:
    """``work`` on each item in a few threads; each result, or the OSError it raised."""

    def attempt(item: _T) -> _R | OSError:
        try:
            return work(item)
        except OSError as exc:
            return exc

    if len(items) <= 1:
        return [attempt(item) for item in items]
    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        return list(pool.map(attempt, items))


def find(maildir: Path, unique: str) -> Path | None:
    """The message delivered under ``unique`` into ``maildir``, wherever a client has put it."""
    base = f"yizhan-{unique}"
    # new/ before cur/: a client moves a message from new/ to cur/, never back, so looking in
    # this order cannot miss a message that is being moved while we look.
    candidate = maildir / "new" / base
    if candidate.exists():
        return candidate
    try:
        names = os.listdir(maildir / "cur")
    except FileNotFoundError:
        return None
    for name in names:
        # Clients append ":2,<flags>" (or "!2,…" where ":" is not allowed) and Dovecot may add
        # ",S=<size>"; the base name itself is never changed.
        if name == base or (name.startswith(base) and name[len(base)] in ":!,"):
            return maildir / "cur" / name
    return None


def _prepare(root: Path, maildir: Path) -> list[Path]:
    """Make ``maildir`` and its subdirectories where missing; the directories whose entries
    changed, which must be fsynced before a message in them counts as delivered."""
    if all((maildir / sub).is_dir() for sub in _SUBDIRS):
        return []
    created = [] if root.is_dir() else [root.parent]
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not maildir.is_dir():
        created.append(root)
    maildir.mkdir(mode=0o700, exist_ok=True)
    for sub in _SUBDIRS:
        path = maildir / sub
        if not path.is_dir():
            path.mkdir(mode=0o700, exist_ok=True)
            created.append(maildir)
    # New directories must survive a crash too, or the message in them is lost with them:
    # the caller syncs these.
    return list(dict.fromkeys(created))
