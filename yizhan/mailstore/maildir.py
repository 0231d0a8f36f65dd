"""Delivers messages into Maildirs, once each, when no relay host is configured.

Each account has ``<root>/<account>/{tmp,new,cur}`` (mode 0700, as Dovecot expects of a
Maildir++ INBOX). A message is written to ``tmp/``, fsynced, hard-linked into ``new/`` and the
directory fsynced: a reader never sees half a message, and a delivered message survives a
crash. The file name is derived from the caller's unique key (the delivery), so delivering the
same thing again after a crash (written, but not yet marked sent) finds the first copy instead
of making a second, in ``new/`` or, once a mail client has seen it, in ``cur/``.

:func:`deliver_many` does the same for a round of messages at once: every file is written and
fsynced by a few threads in parallel (the disk's waits overlap, and the kernel commits their
journal entries together), linked into ``new/``, and then each ``new/`` directory is fsynced
once, also in parallel; only then does it return, so a delivery is marked sent only when its
bytes and its name are durable.
"""

from __future__ import annotations

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
#: Threads writing and syncing a round's files: enough to keep the disk's queue full.
SYNC_THREADS: Final = 16

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

    Each account's letters are written by one thread, several accounts at once; then the
    directories whose entries changed are fsynced, several at once. Nothing is reported
    delivered before its file and the ``new/`` directory holding its name are durable.
    Blocking: call it from a worker thread.
    """
    for letter in letters:
        _check(letter.account, letter.unique)
    by_account: dict[str, list[int]] = {}
    for i, letter in enumerate(letters):
        by_account.setdefault(letter.account, []).append(i)
    results: list[Path | OSError] = [OSError("not delivered")] * len(letters)
    # The directories to sync, each with the letters that count on it.
    waiting: dict[Path, list[int]] = {}

    def one_account(account: str) -> tuple[list[Path], list[Path | OSError]]:
        """Prepare the Maildir, write, sync and link each letter; the directories made."""
        maildir = root / account
        created = _prepare(root, maildir)
        done: list[Path | OSError] = []
        for i in by_account[account]:
            letter = letters[i]
            try:
                found = find(maildir, letter.unique) if letter.maybe_delivered else None
                if found is not None:
                    done.append(found)
                    continue
                base = f"yizhan-{letter.unique}"
                tmp = _write_tmp(maildir, base, letter.parts, letter.mail_from)
                crashpoints.reached("maildir")
                done.append(_link(tmp, maildir / "new" / base))
            except OSError as exc:
                done.append(exc)
        return created, done

    accounts = list(by_account)
    for account, outcome in zip(accounts, _in_parallel(one_account, accounts), strict=True):
        indexes = by_account[account]
        if isinstance(outcome, OSError):
            for i in indexes:
                results[i] = outcome
            continue
        created, done = outcome
        for i, result in zip(indexes, done, strict=True):
            results[i] = result
        delivered = [i for i, r in zip(indexes, done, strict=True) if isinstance(r, Path)]
        for directory in [*created, root / account / "new"]:
            waiting.setdefault(directory, []).extend(delivered)
    directories = list(waiting)
    synced = _in_parallel(_sync_directory, directories)
    for directory, failed in zip(directories, synced, strict=True):
        if isinstance(failed, OSError):
            for i in waiting[directory]:
                results[i] = failed
    return results


def _check(account: str, unique: str) -> None:
    if not _UNIQUE.match(unique):
        raise ValueError(f"unique {unique!r} must be letters, digits, - or _")
    if not account or "/" in account or account.startswith(".") or "\0" in account:
        raise ValueError(f"account {account!r} is not a Maildir name")


def _write_tmp(maildir: Path, base: str, parts: Iterable[bytes], mail_from: str) -> Path:
    """The message written and fsynced under a fresh name in ``tmp/``, Return-Path first."""
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
        os.fsync(fd)
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


def _sync_directory(directory: Path) -> None:
    sync_directories([directory])


def _in_parallel(work: Callable[[_T], _R], items: Sequence[_T]) -> list[_R | OSError]:
    """``work`` on each item in a few threads; each result, or the OSError it raised."""

    def attempt(item: _T) -> _R | OSError:
        try:
            return work(item)
        except OSError as exc:
            return exc

    if len(items) <= 1:
        return [attempt(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(SYNC_THREADS, len(items))) as pool:
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
