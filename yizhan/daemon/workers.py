"""Processing in processes of its own, so that it uses every core and never takes the
gateway's turn on the interpreter lock.

``yizhan serve`` starts ``[processing] workers`` processes (``auto``: one on SQLite, which has
one writer anyway; one a core, up to four, on PostgreSQL, where they claim with SKIP LOCKED).
Each opens its own Context from the same configuration and runs a :class:`Processor`. A pipe
joins each to the daemon: the daemon writes ``w`` when messages were accepted, the worker writes
``q`` when it queued mail (the couriers and IMAP filing then wake) and ``b<id>`` / ``b`` when it
begins a message / has finished its batch, then ``m`` and its counters and histograms
(``yizhan_signing_seconds`` …, added into the daemon's ``/metrics``) when they changed, and the
daemon writes ``s`` to stop it. Each worker claims under a lease owner of its own
(``pending.worker_owner``): one that dies is replaced after a second, and what it had claimed is
released at once. The message it died on counts as a failed attempt: one that kills every worker
that takes it (a crash in a C library, not a Python exception) is set aside after
``pending.MAX_ATTEMPTS`` deaths, and its sender and the IT department told, as for a message
whose processing raises. A worker whose daemon is gone (its end of the pipe closes, or the
kernel's parent-death signal under SIGKILL) stops too, so no orphan keeps working beside a
restarted daemon. With ``workers = 0`` the processor runs in a thread of the daemon (the tests'
in-process daemons).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Final

from yizhan import crashpoints
from yizhan.daemon import heap
from yizhan.daemon.config import Config
from yizhan.daemon.context import Context
from yizhan.daemon.logs import configure as configure_logging
from yizhan.daemon.metrics import WORKERS, snapshot
from yizhan.daemon.processor import Processor
from yizhan.mailstore import pending
from yizhan.mailstore.pending import release_leases, worker_owner

log = logging.getLogger("yizhan.workers")

WAKE: Final = b"w"
QUEUED: Final = b"q"
STOP: Final = b"s"
#: ``b`` and the id of the message the worker begins; ``b`` alone: none in hand.
IN_HAND: Final = b"b"
#: ``m`` and the worker's metrics (``metrics.snapshot``).
METRICS: Final = b"m"
#: How long a stopping worker may take to finish the message it is on.
STOP_SECONDS: Final = 30.0
#: How long after a worker died another is started in its place.
RESTART_SECONDS: Final = 1.0
#: The workers' nice(2) increment. When the cores are busy, the daemon's gateway and couriers
#: go first: a 250 and a delivery are what people and mail clients wait for, and a slow 250
#: makes clients time out and send again; processing catches up in the gaps.
NICENESS: Final = 5
#: prctl(2) option: the signal a process gets when its parent dies.
_PR_SET_PDEATHSIG: Final = 1


def worker_count(config: Config) -> int:
    """How many processing processes ``[processing] workers`` asks for on this database."""
    wanted = config.processing.workers
    if wanted is not None:
        return wanted
    if config.database_url.startswith("sqlite"):
        return 1
    return max(1, min(os.cpu_count() or 1, 4))


class _Worker:
    """One worker process and the daemon's end of its pipe."""

    def __init__(self, n: int, process: BaseProcess, pipe: Connection) -> None:
        self.n = n
        self.process = process
        self.pipe = pipe
        #: The message it said it began, until it says its batch is done.
        self.in_hand: int | None = None


class ProcessingWorkers:
    """The daemon's side: starts the workers, wakes them, hears them, replaces one that dies,
    and stops them."""

    def __init__(self, ctx: Context, count: int, *, on_queued: Callable[[], None]) -> None:
        self.ctx = ctx
        self.count = count
        self.on_queued = on_queued
        self._workers: dict[int, _Worker] = {}
        self._stopping = False
        self._replacing: set[asyncio.Task[None]] = set()
        self._context = multiprocessing.get_context("spawn")

    def start(self) -> None:
        """Start the processes (spawned: a fork would copy the daemon's threads' locks)."""
        for n in range(self.count):
            self._start(n)
        log.info("processing in %d worker processes", self.count)

    def _start(self, n: int) -> None:
        ours, theirs = self._context.Pipe()
        owner = worker_owner(self.ctx.instance, n)
        process = self._context.Process(
            target=run_worker, args=(self.ctx.config, owner, theirs), name=f"yizhan-processor-{n}"
        )
        process.start()
        theirs.close()
        # A worker that hangs must not hang the daemon once its pipe is full: a wake it
        # cannot take is dropped (each message is five bytes, written whole or not at all).
        os.set_blocking(ours.fileno(), False)
        worker = _Worker(n, process, ours)
        self._workers[n] = worker
        asyncio.get_running_loop().add_reader(ours.fileno(), self._heard, worker)

    def wake(self) -> None:
        """Say that messages were accepted (from the event loop)."""
        for worker in self._workers.values():
            with contextlib.suppress(OSError):
                worker.pipe.send_bytes(WAKE)

    def _heard(self, worker: _Worker) -> None:
        try:
            while worker.pipe.poll():
                said = worker.pipe.recv_bytes()
                if said.startswith(IN_HAND):
                    worker.in_hand = int(said[1:]) if len(said) > 1 else None
                elif said.startswith(METRICS):
                    WORKERS.heard(worker, said[1:])
        except (EOFError, OSError):
            self._lost(worker)
            return
        self.on_queued()

    def _lost(self, worker: _Worker) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(worker.pipe.fileno())
        worker.pipe.close()
        self._workers.pop(worker.n, None)
        WORKERS.stopped(worker)
        if self._stopping:
            return
        log.error(
            "processing worker %d (pid %s) stopped unexpectedly; starting another",
            worker.n,
            worker.process.pid,
        )
        task = loop.create_task(self._replace(worker))
        self._replacing.add(task)
        task.add_done_callback(self._replacing.discard)

    async def _replace(self, worker: _Worker) -> None:
        await asyncio.to_thread(worker.process.join)
        if worker.in_hand is not None:
            await asyncio.to_thread(self._died_on, worker)
            self.on_queued()
        # What it had claimed is taken back now rather than when its leases run out.
        await asyncio.to_thread(self._release, worker.n)
        # A worker that cannot start (a broken configuration) is not restarted in a tight loop.
        await asyncio.sleep(RESTART_SECONDS)
        if not self._stopping:
            self._start(worker.n)
            self.wake()

    def _died_on(self, worker: _Worker) -> None:
        """Count the message the worker died on as a failed attempt (set aside, and its sender
        and IT told, at the last), and not the ones after it in its batch, never begun."""
        assert worker.in_hand is not None
        code = worker.process.exitcode
        how = f"signal {-code}" if code is not None and code < 0 else f"exit status {code}"
        reason = f"the processing worker died ({how}) while processing this message"
        log.error("inbound %s: %s", worker.in_hand, reason)
        try:
            with self.ctx.sessions.begin() as session:
                pending.not_started(
                    session, worker_owner(self.ctx.instance, worker.n), worker.in_hand
                )
            Processor(self.ctx).record_failure(worker.in_hand, reason)
        except Exception:
            log.exception("inbound %s: could not record its worker's death", worker.in_hand)

    def _release(self, n: int) -> None:
        with self.ctx.sessions.begin() as session:
            release_leases(session, worker_owner(self.ctx.instance, n), with_workers=False)

    async def stop(self) -> None:
        """Ask every worker to finish the message it is on and stop; wait for them."""
        self._stopping = True
        for task in list(self._replacing):
            task.cancel()
        loop = asyncio.get_running_loop()
        workers = list(self._workers.values())
        for worker in workers:
            with contextlib.suppress(OSError, ValueError):
                loop.remove_reader(worker.pipe.fileno())
            with contextlib.suppress(OSError):
                worker.pipe.send_bytes(STOP)
        for worker in workers:
            await asyncio.to_thread(worker.process.join, STOP_SECONDS)
            if worker.process.is_alive():
                log.error("processing worker %s did not stop; killing it", worker.process.pid)
                worker.process.kill()
                await asyncio.to_thread(worker.process.join)
            worker.pipe.close()
            WORKERS.stopped(worker)
        self._workers.clear()


def run_worker(config: Config, owner: str, pipe: Connection) -> None:
    """A worker process's body: process until told to stop or the daemon is gone."""
    _die_with_parent()
    crashpoints.die_with(os.getppid())
    os.nice(NICENESS)
    # The daemon owns SIGINT and SIGTERM (a Ctrl-C reaches the whole process group): the
    # worker finishes its message and stops when the daemon says so.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    configure_logging(config.log)
    ctx = Context.open(config)
    try:
        asyncio.run(_work(ctx, owner, pipe))
    finally:
        ctx.close()


async def _work(ctx: Context, owner: str, pipe: Connection) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    # The processing thread and the event loop both write to the pipe.
    sending = threading.Lock()

    def say(what: bytes) -> None:
        with sending, contextlib.suppress(OSError):
            pipe.send_bytes(what)

    def queued() -> None:
        say(QUEUED)

    sent = b""

    def in_hand(inbound_id: int | None) -> None:
        nonlocal sent
        say(IN_HAND + (b"" if inbound_id is None else str(inbound_id).encode()))
        if inbound_id is None:
            # A batch is done: what it counted (its signing times …) goes to the daemon.
            figures = snapshot()
            if figures != sent:
                say(METRICS + figures)
                sent = figures

    processor = Processor(ctx, on_queued=queued, owner=owner, in_hand=in_hand)
    # A full collection over what start-up made took ~50 ms every twenty or so commands (the
    # twentieth slowest SEARCH was that pause): daemon/heap.py.
    heap.settle()

    def heard() -> None:
        try:
            while pipe.poll():
                if pipe.recv_bytes() == STOP:
                    stop.set()
                else:
                    processor.wake()
        except (EOFError, OSError):
            stop.set()
        if stop.is_set():
            loop.remove_reader(pipe.fileno())

    loop.add_reader(pipe.fileno(), heard)
    await processor.run(stop)


def _die_with_parent() -> None:
    """Have the kernel stop this process when the daemon dies, even by SIGKILL."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:
        # The daemon died before the line above: nobody will stop this worker.
        os._exit(0)
