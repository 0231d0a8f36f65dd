"""Gives the memory a process has freed back to the system (glibc's ``malloc_trim``).

glibc keeps what Python frees in its heap for the next allocation and returns it to the system
only from the top of the heap. A scheduled job that reads a backlog (the overdue report over
20,000 steps: ~60 MiB for its moment) leaves the daemon that much larger for as long as it
runs, and the next rise, an argon2 check of 64 MiB at a login, then comes on top of it
(issue 16: the peak resident size). ``malloc_trim`` hands every free page of the heap back.
Elsewhere than glibc there is nothing to do, and :func:`trim` does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any

__all__ = ["trim"]


@functools.cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.malloc_trim.restype = ctypes.c_int
    except (OSError, AttributeError, TypeError):
        return None
    return libc


def trim() -> bool:
    """Give the heap's free pages back to the system; whether any were given back."""
    libc = _libc()
    return bool(libc.malloc_trim(0)) if libc is not None else False
