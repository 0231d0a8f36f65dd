"""Tests for daemon.screening.clamd: the INSTREAM client against the test clamd and against fakes.

The real clamd is the one scripts/clamd.sh starts (YIZHAN_TEST_CLAMD); the fakes stand for a
clamd that is down, one that never answers, and one that answers with an error.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from yizhan.daemon.screening.clamd import Clamd, ScannerUnavailable, ScanRefused, parse_reply


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_eicar_is_found_and_clean_data_passes(clamd_socket: str, content_files: Any) -> None:
    # The signature database scripts/clamd.sh writes knows EICAR, also inside nested zips.
    clamd = Clamd(socket=clamd_socket, timeout=10)
    assert run(clamd.ping())
    assert run(clamd.scan(b"an ordinary file")).clean
    found = run(clamd.scan(content_files.eicar))
    assert found.signature is not None and found.signature.startswith("Eicar-Test-Signature")
    nested = content_files.nested_zip(2, {"readme.txt": content_files.eicar})
    assert not run(clamd.scan(nested)).clean


def test_data_larger_than_a_chunk(clamd_socket: str, content_files: Any) -> None:
    # Several chunks, the virus at the end.
    clamd = Clamd(socket=clamd_socket, timeout=10, chunk_size=1024)
    assert not run(
        clamd.scan(content_files.zip({"big.bin": bytes(5000), "x.com": content_files.eicar}))
    ).clean


def test_a_clamd_that_is_down_is_unavailable(tmp_path: Path) -> None:
    # No socket, or nothing listening: temporary, never "clean".
    for clamd in (
        Clamd(socket=str(tmp_path / "none.sock"), timeout=2),
        Clamd(host="127.0.0.1", port=1, timeout=2),
    ):
        with pytest.raises(ScannerUnavailable):
            run(clamd.scan(b"x"))
        assert not run(clamd.ping())


async def _fake(
    path: Path,
    handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
    body: Callable[[Clamd], Awaitable[Any]],
) -> Any:
    server = await asyncio.start_unix_server(handle, path=str(path))
    try:
        return await body(Clamd(socket=str(path), timeout=1))
    finally:
        server.close()
        await server.wait_closed()


async def _read_stream(reader: asyncio.StreamReader) -> int:
    assert await reader.readuntil(b"\0") == b"zINSTREAM\0"
    total = 0
    while True:
        (size,) = struct.unpack(">I", await reader.readexactly(4))
        if not size:
            return total
        await reader.readexactly(size)
        total += size


def test_a_clamd_that_never_answers_times_out(tmp_path: Path) -> None:
    # A hung clamd is unavailable after the timeout, never a pass.
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_stream(reader)
        await asyncio.sleep(5)

    async def body(clamd: Clamd) -> None:
        with pytest.raises(ScannerUnavailable, match="did not answer"):
            await clamd.scan(b"x" * 100)

    run(_fake(tmp_path / "c.sock", silent, body))


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (b"INSTREAM size limit exceeded. ERROR\0", ScanRefused),
        (b"Can't allocate memory ERROR\0", ScannerUnavailable),
        (b"", ScannerUnavailable),
        (b"gibberish\0", ScannerUnavailable),
    ],
)
def test_errors_from_clamd(tmp_path: Path, reply: bytes, error: type[Exception]) -> None:
    # Over clamd's stream limit is permanent; anything else is "try again later".
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_stream(reader)
        writer.write(reply)
        await writer.drain()
        writer.close()

    async def body(clamd: Clamd) -> None:
        with pytest.raises(error):
            await clamd.scan(b"x" * 100)

    run(_fake(tmp_path / "c.sock", answer, body))


def test_replies_are_parsed() -> None:
    # The reply forms of clamd(8), with and without IDSESSION numbering.
    assert parse_reply(b"stream: OK\0").clean
    assert parse_reply(b"stream: Win.Test.EICAR_HDB-1 FOUND\0").signature == "Win.Test.EICAR_HDB-1"
    assert parse_reply(b"1: stream: Eicar FOUND\0").signature == "Eicar"
