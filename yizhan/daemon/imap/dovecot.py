"""Runs Yizhan's own Dovecot: prepares its files, starts it unprivileged, restarts it if it dies.

``yizhan serve`` with ``[imap] listen`` set starts one Dovecot over ``<data_dir>/maildirs``.
Started by root, Dovecot runs as the system user ``yizhan-mail`` (``scripts/mailservers.sh``
adds it), which then owns the Maildirs; started by anyone else, as that user. ``setpriv``
drops the privileges and asks the kernel to end Dovecot when the daemon's thread that started
it ends (``--pdeathsig``), so Dovecot dies with the daemon, even with a SIGKILL. A daemon
that finds a Dovecot of its data directory still running (its pid file in the runtime
directory) with no living owner ends it before starting its own; while the port is busy with
something else it logs why and tries again, and the rest of the daemon runs on.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import hashlib
import hmac
import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from yizhan.daemon.config import Config, HostPort
from yizhan.daemon.imap.dovecot_conf import (
    DovecotLayout,
    master_passwd_line,
    render_config,
    render_lua,
)

__all__ = [
    "MAIL_USER",
    "MASTER_USER",
    "DovecotError",
    "DovecotSupervisor",
    "check_version",
    "dovecot_usable",
    "master_password",
    "passdb_secret",
    "running_dovecot",
]

log = logging.getLogger("yizhan.dovecot")
dovecot_log = logging.getLogger("yizhan.dovecot.server")

#: The system user a root-started daemon runs Dovecot as.
MAIL_USER: Final = "yizhan-mail"
#: The master user Yizhan files as into its own Dovecot.
MASTER_USER: Final = "yizhan-master"
#: How long Dovecot may take to open its port.
START_SECONDS: Final = 15.0
#: Restarts back off from 1 s to this.
MAX_BACKOFF_SECONDS: Final = 30.0


class DovecotError(Exception):
    """Dovecot cannot be run here; the message says what to do."""


def check_version() -> str:
    """Dovecot's version; DovecotError unless it is the 2.3 this configuration is written for."""
    dovecot = shutil.which("dovecot") or (
        "/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None
    )
    if dovecot is None:
        raise DovecotError(
            "Dovecot is not installed: run scripts/mailservers.sh (Debian 12's dovecot-core, "
            'dovecot-imapd, dovecot-lmtpd, dovecot-auth-lua), or set [imap] listen = ""'
        )
    result = subprocess.run([dovecot, "--version"], capture_output=True, text=True, check=False)
    version = result.stdout.split()[0] if result.stdout.split() else "(unknown)"
    if not version.startswith("2.3."):
        raise DovecotError(
            f"Dovecot {version} found; Yizhan writes Dovecot 2.3 configuration (Debian 12's "
            "2.3.19) and 2.4 changed its syntax: install dovecot-core 2.3, or set "
            '[imap] listen = "" and file into an existing Dovecot with [imap] server'
        )
    return version


def passdb_secret(config: Config) -> str:
    """The secret Dovecot's lua passdb shows Yizhan's endpoint: derived from the instance
    secret, so the daemon and its admin app agree without sharing a file."""
    return hmac.new(config.secret.encode(), b"yizhan-dovecot-passdb", hashlib.sha256).hexdigest()


def master_password(config: Config) -> str:
    """The master password of Yizhan's own Dovecot, made on first use (mode 0600)."""
    path = config.data_dir / "imap-master-password"
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(password + "\n")
    return password


class DovecotSupervisor:
    """Starts Dovecot, restarts it when it dies, stops it with the daemon."""

    def __init__(
        self,
        config: Config,
        listen: HostPort,
        *,
        auth_url: str,
        on_start: Callable[[], None] = lambda: None,
    ) -> None:
        self.config = config
        self.listen = listen
        self.auth_url = auth_url
        self.on_start = on_start
        self.layout = layout_for(config)
        self.ready = asyncio.Event()
        self._process: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task[None] | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Keep Dovecot running until ``stop`` is set, then stop it."""
        backoff = 1.0
        try:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    await self._start()
                except (DovecotError, OSError) as exc:
                    log.error("Dovecot not started: %s; trying again in %.0f s", exc, backoff)
                else:
                    self.ready.set()
                    self.on_start()
                    assert self._process is not None
                    waiter = asyncio.ensure_future(self._process.wait())
                    await _first_of(waiter, stop)
                    if stop.is_set():
                        break
                    self.ready.clear()
                    log.error("Dovecot exited (%s); restarting", self._process.returncode)
                    await self._stop()
                    if time.monotonic() - started > 60:
                        backoff = 1.0
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
        finally:
            self.ready.clear()
            await self._stop()

    async def _start(self) -> None:
        await asyncio.to_thread(self._prepare)
        await asyncio.to_thread(self._end_leftover)
        if _port_busy(self.listen):
            raise DovecotError(f"port {self.listen} is in use by another program")
        command: list[str] = []
        if os.geteuid() == 0:
            command += [
                "setpriv",
                f"--reuid={self.layout.uid}",
                f"--regid={self.layout.gid}",
                "--clear-groups",
                "--inh-caps=-all",
                "--",
            ]
        # A change of user clears the parent-death signal, so it is asked for afterwards.
        command += ["setpriv", "--pdeathsig", "TERM", "--"]
        command += ["dovecot", "-F", "-c", str(self.layout.config_file)]
        # Started from the event loop's own thread: --pdeathsig follows that thread.
        self._process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        (self.layout.runtime / "owner").write_text(f"{os.getpid()}\n", encoding="ascii")
        self._pump = asyncio.create_task(self._read_output(self._process))
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self._process.returncode is not None:
                raise DovecotError(f"Dovecot exited at start ({self._process.returncode})")
            if await asyncio.to_thread(_answers, self.listen):
                log.info(
                    "Dovecot on %s (as %s), mail in %s",
                    self.listen,
                    self.layout.user,
                    self.layout.maildirs,
                )
                return
            await asyncio.sleep(0.05)
        await self._stop()
        raise DovecotError(f"Dovecot did not open {self.listen} within {START_SECONDS:.0f} s")

    async def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if self._pump is not None:
            # Dovecot's log process may hold the pipe a moment longer; its last lines can go.
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._pump, 0.2)
        # The pipe's transport is closed now, on this loop, not whenever it is collected.
        transport = getattr(process, "_transport", None)
        if transport is not None:
            transport.close()

    async def _read_output(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            if " Fatal: " in line or " Panic: " in line or " Error: " in line:
                dovecot_log.error("%s", line)
            elif " Warning: " in line:
                dovecot_log.warning("%s", line)
            else:
                dovecot_log.info("%s", line)

    # -- files -----------------------------------------------------------------------------

    def _prepare(self) -> None:
        check_version()
        layout = self.layout
        for path, mode in (
            (layout.runtime, 0o711),
            (layout.base_dir, 0o755),
            (layout.state_dir, 0o700),
        ):
            path.mkdir(mode=mode, parents=True, exist_ok=True)
            path.chmod(mode)
            _own(path, layout)
        owner = layout.runtime.stat().st_uid
        if owner != layout.uid:
            raise DovecotError(f"{layout.runtime} belongs to uid {owner}, not {layout.user}")
        self._prepare_maildirs()
        host = self.listen.host
        loopback = host in ("127.0.0.1", "::1", "localhost") or host.startswith("127.")
        cert, key = self._tls_files(loopback)
        _write(
            layout.config_file,
            render_config(
                layout,
                host=host,
                port=self.listen.port,
                loopback=loopback,
                auth_failure_delay=self.config.imap.auth_failure_delay,
                tls_cert=cert,
                tls_key=key,
            ),
            layout,
            mode=0o644,
        )
        _write(
            layout.lua_file,
            render_lua(url=self.auth_url, secret=passdb_secret(self.config)),
            layout,
        )
        _write(
            layout.master_users_file,
            master_passwd_line(MASTER_USER, master_password(self.config)),
            layout,
        )

    def _tls_files(self, loopback: bool) -> tuple[Path | None, Path | None]:
        # Off loopback, Dovecot needs the certificate and key; copies its user can read.
        smtp = self.config.smtp
        if loopback or smtp.tls_cert is None or smtp.tls_key is None:
            return None, None
        cert, key = self.layout.runtime / "tls-cert.pem", self.layout.runtime / "tls-key.pem"
        _write(cert, smtp.tls_cert.read_text(encoding="ascii"), self.layout)
        _write(key, smtp.tls_key.read_text(encoding="ascii"), self.layout)
        return cert, key

    def _prepare_maildirs(self) -> None:
        layout = self.layout
        root = layout.maildirs
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        if os.geteuid() != 0:
            return
        # Dovecot's user must be able to pass through every directory above the Maildirs.
        for parent in reversed(root.resolve().parents):
            mode = parent.stat()
            if mode.st_mode & 0o001 or mode.st_uid == layout.uid:
                continue
            if parent == self.config.data_dir.resolve() and mode.st_uid == os.geteuid():
                # Others may pass through the data directory, not list it.
                parent.chmod((mode.st_mode & 0o7777) | 0o711)
                log.info("%s: let %s pass through it (mode o+x)", parent, layout.user)
                continue
            raise DovecotError(
                f"{layout.user} cannot reach {root}: {parent} is mode "
                f"{mode.st_mode & 0o777:o}; allow it with chmod o+x {parent}"
            )
        # Mail written before (Maildir delivery, a restore) becomes Dovecot's user's.
        for directory, subdirs, files in os.walk(root):
            for name in [directory, *(os.path.join(directory, n) for n in subdirs + files)]:
                with contextlib.suppress(FileNotFoundError):
                    if os.lstat(name).st_uid != layout.uid:
                        os.lchown(name, layout.uid, layout.gid)

    def _end_leftover(self) -> None:
        """End a Dovecot of this data directory left by a daemon that died (SIGKILL)."""
        layout = self.layout
        try:
            pid = int(layout.pid_file.read_text(encoding="ascii").split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return
        if not _is_dovecot(pid, layout):
            return
        owner = _owner(layout.runtime / "owner")
        if owner is not None and owner != os.getpid() and _alive(owner):
            raise DovecotError(
                f"the Dovecot of {layout.maildirs} (pid {pid}) belongs to the running daemon "
                f"{owner}; this daemon files into it through its port"
            )
        log.warning("ending the Dovecot (pid %d) a previous daemon left running", pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while _port_busy(self.listen) and time.monotonic() < deadline:
            time.sleep(0.05)


def dovecot_usable(config: Config) -> str | None:
    """Why Yizhan's own Dovecot cannot run here (not installed, not 2.3, no user), or None."""
    try:
        check_version()
        layout_for(config)
    except DovecotError as exc:
        return str(exc)
    return None


def running_dovecot(config: Config) -> int | None:
    """The pid of the Dovecot of ``config``'s data directory, if one is running now."""
    try:
        layout = layout_for(config)
        pid = int(layout.pid_file.read_text(encoding="ascii").split()[0])
    except (DovecotError, OSError, ValueError, IndexError):
        return None
    return pid if _alive(pid) and _is_dovecot(pid, layout) else None


def layout_for(config: Config) -> DovecotLayout:
    """Where the Dovecot of ``config``'s data directory keeps its files, and its user."""
    if os.geteuid() == 0:
        try:
            entry = pwd.getpwnam(MAIL_USER)
        except KeyError as exc:
            raise DovecotError(
                f"the system user {MAIL_USER} does not exist: run scripts/mailservers.sh as root"
            ) from exc
    else:
        entry = pwd.getpwuid(os.geteuid())
    digest = hashlib.sha256(str(config.data_dir.resolve()).encode()).hexdigest()[:12]
    return DovecotLayout(
        # Short, for the sockets' 107-byte paths, and one per data directory.
        runtime=Path("/tmp") / f"yizhan-dovecot-{digest}",
        maildirs=config.maildir_root.resolve(),
        user=entry.pw_name,
        group=grp.getgrgid(entry.pw_gid).gr_name,
        uid=entry.pw_uid,
        gid=entry.pw_gid,
        instance=f"yizhan-{digest}",
    )


def _write(path: Path, text: str, layout: DovecotLayout, *, mode: int = 0o600) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    _own(tmp, layout)
    os.replace(tmp, path)


def _own(path: Path, layout: DovecotLayout) -> None:
    if os.geteuid() == 0:
        os.chown(path, layout.uid, layout.gid)


def _owner(path: Path) -> int | None:
    try:
        return int(path.read_text(encoding="ascii").strip())
    except (FileNotFoundError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not alive.
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
            return False
    return True


def _is_dovecot(pid: int, layout: DovecotLayout) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(part.endswith(b"dovecot") for part in cmdline[:1]) and (
        str(layout.config_file).encode() in cmdline
    )


def _answers(address: HostPort) -> bool:
    try:
        with socket.create_connection((address.host, address.port), timeout=1) as s:
            s.settimeout(1)
            ready = s.recv(4).startswith(b"* OK")
            s.sendall(b"z LOGOUT\r\n")
            return ready
    except OSError:
        return False


def _port_busy(address: HostPort) -> bool:
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((address.host, address.port))
        except OSError:
            return True
    return False


async def _first_of(waiter: asyncio.Future[Any], stop: asyncio.Event) -> None:
    stopper: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([waiter, stopper], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not waiter.done():
            waiter.cancel()
