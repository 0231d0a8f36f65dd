"""What the daemon's processes hold while a benchmark runs: the peak resident size (VmHWM) of
each, and their proportional set size (PSS) sampled.

RSS counts every page a process maps, so the daemon and a processing worker that map the same
page of the interpreter or of a shared library both count it. PSS divides each shared page among
the processes that map it: the sum of PSS is what the processes take from the machine. The
kernel keeps a peak of RSS (VmHWM) but none of PSS, so PSS is sampled (``smaps_rollup``, every
``interval`` seconds) and its peak can miss a short rise such as an argon2 check's 64 MiB.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

#: The ``smaps_rollup`` fields kept, in kB.
_FIELDS = ("Rss", "Pss", "Pss_Anon", "Pss_File", "Shared_Clean", "Private_Dirty")


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident size (VmHWM), MiB; 0 once it is gone."""
    with suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def rollup_kib(pid: int) -> dict[str, int]:
    """The process's ``smaps_rollup`` figures (kB), or nothing once it is gone."""
    found: dict[str, int] = {}
    with suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in _FIELDS:
                found[name] = int(rest.split()[0])
    return found


@dataclass
class ProcessFigures:
    """One process's figures over the run (MiB)."""

    pid: int
    role: str
    peak_rss: float = 0.0
    peak_pss: float = 0.0
    last: dict[str, int] = field(default_factory=dict)


class MemorySampler:
    """Samples ``pids()`` (the daemon and its workers) in a thread until stopped."""

    def __init__(self, pids: Callable[[], Iterable[tuple[int, str]]], interval: float = 0.1):
        self._pids = pids
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="memory-sampler")
        self.processes: dict[int, ProcessFigures] = {}
        #: The largest sum of PSS over the processes seen in one sample, MiB.
        self.peak_pss_sum = 0.0
        # BENCH_MEMORY_TRACE names a file for every sample (seconds, pid, role, RSS, PSS MiB).
        trace = os.environ.get("BENCH_MEMORY_TRACE")
        self._trace = open(trace, "w") if trace else None  # noqa: SIM115
        self._began = time.monotonic()

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sample()
        self._stop.set()
        self._thread.join()
        if self._trace is not None:
            self._trace.close()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.sample()

    def sample(self) -> None:
        """Read every process's figures once."""
        total = 0.0
        for pid, role in self._pids():
            figures = rollup_kib(pid)
            if not figures:
                continue
            seen = self.processes.setdefault(pid, ProcessFigures(pid, role))
            seen.last = figures
            seen.peak_pss = max(seen.peak_pss, figures.get("Pss", 0) / 1024)
            seen.peak_rss = max(seen.peak_rss, peak_rss_mib(pid))
            total += figures.get("Pss", 0) / 1024
            if self._trace is not None:
                self._trace.write(
                    f"{time.monotonic() - self._began:.2f} {pid} {role} "
                    f"{figures.get('Rss', 0) / 1024:.0f} {figures.get('Pss', 0) / 1024:.0f}\n"
                )
        self.peak_pss_sum = max(self.peak_pss_sum, total)

    @property
    def peak_rss_sum(self) -> float:
        """Each process's peak RSS, added (MiB): no less than the peak of their sum."""
        return sum(p.peak_rss for p in self.processes.values())

    def breakdown(self) -> str:
        """One line a process: peak RSS, peak PSS, and the last sample's figures."""
        lines = []
        for p in self.processes.values():
            last = " ".join(f"{k} {v / 1024:.0f}" for k, v in p.last.items())
            lines.append(
                f"  {p.role:<8} pid {p.pid:<7} peak RSS {p.peak_rss:6.0f}  "
                f"peak PSS {p.peak_pss:6.0f}  at the end: {last}"
            )
        return "\n".join(lines)
