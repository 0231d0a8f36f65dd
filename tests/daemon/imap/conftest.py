"""Fixtures for the IMAP tests: a daemon running its own Dovecot, and an IMAP client's view.

The daemon is the one the end-to-end tests run (``tests/daemon/test_flows.py``), started with
``[imap] listen`` on a free loopback port; one per test module, since a Dovecot takes a
second to start. Its data directory lies under /tmp with mode 0711, so that Dovecot's user
(``yizhan-mail`` when the tests run as root) can reach the Maildirs. The mailboxes are read
with Python's imaplib, an IMAP client nobody here wrote, logging in as the person.
"""

from __future__ import annotations

import email
import imaplib
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

from tests.conftest import fresh_database, make_config, seed_keyring
from tests.daemon.test_flows import PASSWORD, Daemon, start_daemon
from yizhan.daemon.context import Context
from yizhan.daemon.imap.dovecot import layout_for
from yizhan.daemon.imap.mutf7 import encode
from yizhan.mailstore.db import upgrade

T = TypeVar("T")


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reachable_dir() -> Path:
    """A fresh directory under /tmp that Dovecot's user may pass through (mode 0711)."""
    path = Path(tempfile.mkdtemp(prefix="yzimap", dir="/tmp"))
    path.chmod(0o711)
    return path


@contextmanager
def imap_daemon(
    system_key_home: Path,
    *,
    port: int | None = None,
    base: Path | None = None,
    **sections: dict[str, Any],
) -> Iterator[Daemon]:
    """The demo bureau's daemon with its own Dovecot; every account's password is PASSWORD.

    ``base`` (from :func:`reachable_dir`): where the data directory goes (``base/var``)."""
    base = base or reachable_dir()
    port = port or free_port()
    with fresh_database(base) as url:
        settings: dict[str, dict[str, Any]] = {
            "signing": {"require_signature": []},
            "imap": {"listen": f"127.0.0.1:{port}", "auth_failure_delay": 0},
            "relay": {"first_retry_seconds": 1},
        }
        for name, values in sections.items():
            settings.setdefault(name, {}).update(values)
        config = make_config(base, url, **settings)
        seed_keyring(config, system_key_home)
        ctx = Context.open(config)
        upgrade(ctx.engine)
        daemon = start_daemon(ctx)
        try:
            wait_until(lambda: _answers(port), timeout=30, what="Dovecot to answer")
            yield daemon
        finally:
            daemon.stop()
            ctx.close()
            shutil.rmtree(layout_for(config).runtime, ignore_errors=True)
            shutil.rmtree(config.signing.gnupg_home.parent, ignore_errors=True)
            shutil.rmtree(base, ignore_errors=True)


def imap_port(daemon: Daemon) -> int:
    """The port the daemon's Dovecot listens on."""
    listen = daemon.ctx.config.imap.listen
    assert listen is not None
    return listen.port


def wait_until(check: Callable[[], T], *, timeout: float = 20, what: str = "") -> T:
    """Poll ``check`` until it returns something true; that value. A server that cannot be
    reached yet (it is restarting) is waited for too."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except (OSError, imaplib.IMAP4.abort):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.05)


@dataclass(frozen=True)
class Held:
    """One message in a folder, as an IMAP client sees it."""

    uid: int
    flags: tuple[str, ...]
    mail: EmailMessage


def login(daemon: Daemon, account: str, password: str = PASSWORD) -> imaplib.IMAP4:
    """A person's own IMAP login (raises imaplib.IMAP4.error when refused)."""
    client = imaplib.IMAP4("127.0.0.1", imap_port(daemon), timeout=30)
    try:
        client.login(account, password)
    except imaplib.IMAP4.error:
        client.logout()
        raise
    return client


def folder(daemon: Daemon, account: str, name: str) -> list[Held]:
    """What ``account`` sees in folder ``name`` (read-only: nothing is marked seen)."""
    client = login(daemon, account)
    try:
        kind, _ = client.select(f'"{encode(name)}"', readonly=True)
        assert kind == "OK", f"{account} has no folder {name}"
        kind, data = client.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
        held: list[Held] = []
        for item in data:
            if not isinstance(item, tuple):
                continue
            head = item[0].decode()
            flags = head.split("FLAGS (", 1)[1].split(")", 1)[0].split()
            uid = int(head.split("UID ", 1)[1].split()[0].rstrip(")"))
            mail = email.message_from_bytes(item[1], policy=policy.default)
            assert isinstance(mail, EmailMessage)
            held.append(Held(uid=uid, flags=tuple(flags), mail=mail))
        return held
    finally:
        client.logout()


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            return s.recv(4) == b"* OK"
    except OSError:
        return False
