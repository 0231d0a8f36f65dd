"""systemd's notify protocol (sd_notify(3)), spoken directly on ``$NOTIFY_SOCKET``: READY=1 once
the daemon accepts mail, WATCHDOG=1 while its event loop turns, STOPPING=1 on the way out.

Without ``$NOTIFY_SOCKET`` (not under systemd, or ``Type=simple``) every call does nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

log = logging.getLogger("yizhan.systemd")


class Notifier:
    """Sends notifications to the service manager that started this process, if any."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        # An abstract socket is written with "@" for its leading NUL byte.
        self.address = "\0" + address[1:] if address.startswith("@") else address
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        mine = not pid or pid == str(os.getpid())
        self.watchdog = int(usec) / 1e6 if usec.isdigit() and mine else None

    def notify(self, *fields: str) -> bool:
        """Send ``fields`` (``READY=1``, ``STATUS=…``); False when there is no manager to tell."""
        if not self.address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                s.connect(self.address)
                s.sendall("\n".join(fields).encode("utf-8"))
        except OSError as exc:
            log.warning("could not notify systemd at %r: %s", self.address, exc)
            return False
        return True

    async def keep_alive(self, stop: asyncio.Event) -> None:
        """Ping the watchdog at half its interval until ``stop``; a stuck loop stops pinging,
        and systemd restarts the daemon (``WatchdogSec=`` with ``Restart=on-failure``)."""
        if self.watchdog is None or not self.address:
            return
        interval = max(self.watchdog / 2, 0.5)
        while not stop.is_set():
            self.notify("WATCHDOG=1")
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
            except TimeoutError:
                continue
