"""Asks ClamAV's clamd whether bytes carry a virus, over its socket with INSTREAM.

The protocol (clamd(8)): send ``zINSTREAM\\0``, then the data in chunks, each preceded by its
length as a 4-byte big-endian number, then a zero-length chunk; clamd answers one line ending
in NUL: ``stream: OK``, ``stream: <signature> FOUND``, or ``<problem> ERROR``. Connections
come only from :meth:`Clamd.connect` (a unix socket, or TCP when a host is set), so tests can
point it anywhere.

A scanner that cannot be reached, times out or fails is :class:`ScannerUnavailable`: the
gateway answers 451 and the sender's server tries again; mail is never passed unscanned.
Data over clamd's ``StreamMaxLength`` is :class:`ScanRefused`, which is permanent.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from dataclasses import dataclass
from typing import Final

from yizhan.routing.content import ContentRules

__all__ = [
    "CHUNK",
    "Clamd",
    "ScanRefused",
    "ScanResult",
    "ScannerUnavailable",
    "parse_reply",
    "scanner_for",
]

#: Bytes per INSTREAM chunk.
CHUNK: Final = 64 * 1024
#: The longest reply read (a signature name is short).
_MAX_REPLY: Final = 4096


class ScannerUnavailable(Exception):
    """clamd could not scan now (unreachable, timed out, failing); try again later."""


class ScanRefused(Exception):
    """clamd will never scan this data (it is over clamd's stream limit)."""


@dataclass(frozen=True, kw_only=True)
class ScanResult:
    """What clamd found: nothing (``signature`` None) or the name of a signature."""

    signature: str | None = None

    @property
    def clean(self) -> bool:
        """Whether no virus was found."""
        return self.signature is None


def parse_reply(reply: bytes) -> ScanResult:
    """Read one INSTREAM reply; raise :class:`ScanRefused` or :class:`ScannerUnavailable`.

    >>> parse_reply(b"stream: OK\\0")
    ScanResult(signature=None)
    >>> parse_reply(b"stream: Eicar-Test-Signature FOUND\\0").signature
    'Eicar-Test-Signature'
    """
    text = reply.rstrip(b"\0\r\n").decode("utf-8", "replace").strip()
    if not text:
        raise ScannerUnavailable("clamd closed the connection without an answer")
    if text.endswith(" FOUND"):
        body = text[: -len(" FOUND")]
        # "stream: NAME" (or "1: stream: NAME" with IDSESSION); the name has no ": ".
        signature = body.rpartition(": ")[2].strip()
        return ScanResult(signature=signature or "unknown")
    if text.endswith(" ERROR"):
        if "size limit exceeded" in text.lower():
            raise ScanRefused(text)
        raise ScannerUnavailable(f"clamd: {text}")
    if text.endswith(": OK") or text == "OK":
        return ScanResult()
    raise ScannerUnavailable(f"clamd answered {text!r}")


class Clamd:
    """A clamd client: ``socket`` (a unix socket path), or ``host`` and ``port`` when host is set.

    Each scan opens its own connection (INSTREAM takes one per stream), so concurrent scans
    do not wait for each other. ``timeout`` bounds a whole scan: connecting, sending, reading.
    """

    def __init__(
        self,
        *,
        socket: str = "",
        host: str = "",
        port: int = 3310,
        timeout: float = 60.0,
        chunk_size: int = CHUNK,
    ) -> None:
        if not socket and not host:
            raise ValueError("clamd needs a socket path or a host")
        self.socket = socket
        self.host = host
        self.port = port
        self.timeout = timeout
        self.chunk_size = chunk_size

    def __repr__(self) -> str:
        where = f"{self.host}:{self.port}" if self.host else self.socket
        return f"Clamd({where})"

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Open a connection to clamd (the one place that does)."""
        if self.host:
            return await asyncio.open_connection(self.host, self.port)
        return await asyncio.open_unix_connection(self.socket)

    async def ping(self) -> bool:
        """Whether clamd answers PING with PONG within the timeout."""
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await self.connect()
                try:
                    writer.write(b"zPING\0")
                    await writer.drain()
                    reply = await reader.readuntil(b"\0")
                finally:
                    writer.close()
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return False
        return reply.rstrip(b"\0") == b"PONG"

    async def version(self) -> str:
        """clamd's VERSION answer: "ClamAV 1.4.6/27100/<date of the signatures>" when it runs
        the official databases, "ClamAV 1.4.6" with only databases of its own."""
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await self.connect()
                try:
                    writer.write(b"zVERSION\0")
                    await writer.drain()
                    reply = await reader.readuntil(b"\0")
                finally:
                    writer.close()
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            raise ScannerUnavailable(f"clamd at {self!r} did not say its version: {exc}") from exc
        return reply.rstrip(b"\0").decode("utf-8", "replace").strip()

    async def scan(self, data: bytes) -> ScanResult:
        """Scan ``data``; raise :class:`ScannerUnavailable` or :class:`ScanRefused`."""
        try:
            async with asyncio.timeout(self.timeout):
                return await self._scan(data)
        except TimeoutError as exc:
            raise ScannerUnavailable(f"clamd did not answer within {self.timeout:g} s") from exc
        except OSError as exc:
            raise ScannerUnavailable(f"clamd at {self!r} cannot be reached: {exc}") from exc

    async def _scan(self, data: bytes) -> ScanResult:
        reader, writer = await self.connect()
        try:
            writer.write(b"zINSTREAM\0")
            view = memoryview(data)
            for start in range(0, len(view), self.chunk_size):
                chunk = view[start : start + self.chunk_size]
                writer.write(struct.pack(">I", len(chunk)))
                writer.write(chunk)
                try:
                    await writer.drain()
                except (ConnectionResetError, BrokenPipeError):
                    # clamd stops reading and closes once a stream passes its limit; its
                    # reply, if any, says why.
                    break
            else:
                writer.write(struct.pack(">I", 0))
                await writer.drain()
            reply = await _read_reply(reader)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        return parse_reply(reply)


async def _read_reply(reader: asyncio.StreamReader) -> bytes:
    reply = b""
    while b"\0" not in reply and len(reply) < _MAX_REPLY:
        try:
            chunk = await reader.read(_MAX_REPLY)
        except ConnectionResetError:
            break
        if not chunk:
            break
        reply += chunk
    return reply


def scanner_for(rules: ContentRules) -> Clamd | None:
    """The clamd client the rules name, or None when scanning is switched off."""
    settings = rules.scanner
    if not settings.enabled:
        return None
    return Clamd(
        socket=settings.socket, host=settings.host, port=settings.port, timeout=settings.timeout
    )
