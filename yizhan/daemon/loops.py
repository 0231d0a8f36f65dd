"""Calling into an event loop from wherever a wake comes from: the loop's own thread, the
processor's thread, or a thread of the gateway's."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


def call_in(loop: asyncio.AbstractEventLoop | None, callback: Callable[[], object]) -> None:
    """Run ``callback`` in ``loop``: at once when called on it, else at its next turn; not at
    all when the loop has not started or has closed (what starts it looks for itself)."""
    if loop is None or loop.is_closed():
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        callback()
    else:
        loop.call_soon_threadsafe(callback)
