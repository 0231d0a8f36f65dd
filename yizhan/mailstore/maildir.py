"""Delivers messages into Maildirs, once each, when no relay host is configured.

Each account has ``<root>/<account>/{tmp,new,cur}`` (mode 0700, as Dovecot expects of a
Maildir++ INBOX). A message is written to ``tmp/``, fsynced, hard-linked into ``new/`` and the
directory fsynced: a reader never sees half a message, and a delivered message survives a
crash. The file name is derived from the caller's unique key (the delivery), so delivering the
same thing again after a crash (written, but not yet marked sent) finds the first copy instead
of making a second, in ``new/`` or, once a mail client has seen it, in ``cur/``.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

from yizhan import crashpoints
from yizhan.mailstore.rawstore import sync_directories

_UNIQUE = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_SUBDIRS = ("tmp", "new", "cur")


def deliver(root: Path, account: str, data: bytes, unique: str, *, mail_from: str) -> Path:
    """Put ``data`` into ``account``'s Maildir under a name made from ``unique``; return it.

    ``Return-Path: <mail_from>`` is written in front of the bytes, as a final-delivery agent
    does; the message itself is kept byte for byte (a signature over it stays valid). If a
    message with this ``unique`` was delivered before, nothing is written and its current path
    is returned. Blocking: call it from a worker thread.
    """
    if not _UNIQUE.match(unique):
        raise ValueError(f"unique {unique!r} must be letters, digits, - or _")
    if not account or "/" in account or account.startswith(".") or "\0" in account:
        raise ValueError(f"account {account!r} is not a Maildir name")
    maildir = root / account
    _prepare(root, maildir)
    base = f"yizhan-{unique}"
    found = find(maildir, unique)
    if found is not None:
        return found

    newline = b"\r\n" if b"\r\n" in data[:4096] else b"\n"
    content = b"Return-Path: <" + mail_from.encode("utf-8") + b">" + newline + data
    # The temporary name is random, so two writers (which leases should prevent) could not
    # mix their bytes in one file; the final name is what makes delivery happen once.
    tmp = maildir / "tmp" / f"{base}.{uuid.uuid4().hex}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    target = maildir / "new" / base
    crashpoints.reached("maildir")
    try:
        # link() never replaces an existing name, unlike rename(): if another writer got there
        # first, its copy stands and ours is dropped.
        os.link(tmp, target)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    sync_directories([maildir / "new", maildir / "tmp"])
    return target


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


def _prepare(root: Path, maildir: Path) -> None:
    if all((maildir / sub).is_dir() for sub in _SUBDIRS):
        return
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
    # New directories must survive a crash too, or the message in them is lost with them.
    sync_directories(created)
