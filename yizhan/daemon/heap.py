"""Keeps what a process made at start-up out of the cyclic garbage collector's full passes.

A full collection (generation 2) walks every container object the process holds. Once the
daemon has started, about 140,000 of them are its modules, classes, functions and the
libraries' caches, which live as long as the process: on the bench machine a full pass over
them took 60–110 ms, and one came every few admin page requests (the 95th percentile of
/people and /supervision was 110–165 ms where their median was 13–40 ms; docs/perf.md).
``gc.freeze`` moves every object alive at that moment into a permanent generation the
collector no longer walks; each full pass then walks only what came later (5–15 ms). Objects
frozen are still freed when their last reference goes, as any object; only a cycle among them
that becomes garbage would wait until :func:`release`. What start-up freed (the migrations'
check, the templates' compilation) is given back to the system at the same moment
(``daemon/malloc.py``).
"""

from __future__ import annotations

import gc

from yizhan.daemon import malloc

__all__ = ["release", "settle"]


def settle() -> int:
    """Collect once, then freeze what is left: call when start-up is done. Returns the number
    of objects frozen."""
    gc.collect()
    gc.freeze()
    malloc.trim()
    return gc.get_freeze_count()


def release() -> None:
    """Give the frozen objects back to the collector (at shutdown, or in a process that runs
    the daemon more than once, such as the tests)."""
    gc.unfreeze()
