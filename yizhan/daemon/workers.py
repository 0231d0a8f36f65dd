"""Processing and the couriers in processes of their own, so that they use every core and
never take the gateway's turn on the interpreter lock.

``yizhan serve`` starts ``[processing] workers`` processes (``auto``: one on SQLite, which has
one writer anyway; one a core, up to four, on PostgreSQL, where they claim with SKIP LOCKED).
Each opens its own Context from the same configuration and runs a :class:`Processor` and an
:class:`OutboundWorker`, the couriers: the mail a worker queues is relayed, filed over IMAP or
delivered into the Maildirs by that worker, woken within the process, as Postfix's smtp and
local deliver beside its smtpd rather than inside it. Several workers' couriers share the queue
as several daemons' do: a claim leases its deliveries under the worker's lease owner (SKIP
LOCKED on PostgreSQL, the one writer on SQLite), so nothing is sent twice.

A socket pair joins each worker to the daemon. The daemon writes ``w`` when messages were
accepted, ``o`` when mail was queued elsewhere (a scheduled job, the admin page, a set-aside
notice) or Dovecot started, and ``s`` to stop it. The worker writes ``b<id>`` / ``b`` when it
begins a message / is done with it (the daemon then wakes the IMAP tidy pass), ``f`` when its
courier filed a request over IMAP (the tidy pass looks again), and ``m`` and its counters and
histograms (``yizhan_signing_seconds``, ``yizhan_delivery_seconds`` …, added into the daemon's
``/metrics``) at most once a second when they changed. Each worker claims under a lease owner
of its own (``pending.worker_owner``): one that dies is replaced after a second, and what it
had claimed, messages and deliveries, is released at once (a delivery then as ``unsure``: it
is looked for before it is delivered again). The message it died on counts as a failed
attempt: one that kills every worker that takes it (a crash in a C library, not a Python
exception) is set aside after ``pending.MAX_ATTEMPTS`` deaths, and its sender and the IT
department told, as for a message whose processing raises. A worker whose daemon is gone (its
end of the pipe closes, or the kernel's parent-death signal under SIGKILL) stops too, so no
orphan keeps working beside a restarted daemon. With ``workers = 0`` the processor runs in a
thread of the daemon and the couriers in its event loop (the tests' in-process daemons).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import struct
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Final

from yizhan import crashpoints
from yizhan.daemon import heap
from yizhan.daemon.config import Config
from yizhan.daemon.context import Context
from yizhan.daemon.imap.courier import ImapFiling
from yizhan.daemon.imap.pool import SessionPool, imap_target
from yizhan.daemon.logs import configure as configure_logging
from yizhan.daemon.loops import call_in
from yizhan.daemon.metrics import WORKERS, snapshot
from yizhan.daemon.outbound import OutboundWorker
from yizhan.daemon.processor import Processor
from yizhan.mailstore import pending
from yizhan.mailstore.pending import release_leases, worker_owner

log = logging.getLogger("yizhan.workers")

WAKE: Final = b"w"
#: The daemon to a worker: mail was queued by the daemon, or Dovecot started; deliver.
DELIVER: Final = b"o"
STOP: Final = b"s"
#: ``b`` and the id of the message the worker begins; ``b`` alone: done with it.
IN_HAND: Final = b"b"
#: The worker's courier filed a request into someone's IMAP folders.
FILED: Final = b"f"
#: ``m`` and the worker's metrics (``metrics.snapshot``).
METRICS: Final = b"m"
#: How often a worker sends its metrics, when they changed.
METRICS_SECONDS: Final = 1.0
#: How long a stopping worker may take to finish the message it is on.
STOP_SECONDS: Final = 30.0
#: How long after a worker died another is started in its place.
RESTART_SECONDS: Final = 1.0
#: The workers' nice(2) increment. When the cores are busy, the daemon's gateway goes first:
#: a 250 is what mail clients wait for, and a slow 250 makes them time out and send again;
#: processing and delivery catch up in the gaps.
NICENESS: Final = 5
#: prctl(2) option: the signal a process gets when its parent dies.
_PR_SET_PDEATHSIG: Final = 1
#: multiprocessing.Connection's frame: a signed 32-bit big-endian length, then the bytes.
_HEADER: Final = struct.Struct("!i")
#: What the daemon reads from a worker's socket at once.
_READ_SIZE: Final = 65536


def worker_count(config: Config) -> int:
    """How many processing processes ``[processing] workers`` asks for on this database."""
    wanted = config.processing.workers
    if wanted is not None:
        return wanted
    if config.database_url.startswith("sqlite"):
        return 1
    return max(1, min(os.cpu_count() or 1, 4))


class Frames:
    """The daemon's reading of one worker's messages from a non-blocking socket.

    ``Connection.recv_bytes`` cannot be used there: ``poll()`` is true as soon as any byte
    arrived, and a message the worker wrote in two pieces (Connection writes a message over
    16 KiB as its header, then its body: a worker's metrics) may be half there, so
    ``recv_bytes`` raised BlockingIOError in the middle, and the daemon took its worker for
    dead. What is read is kept until a whole message is there.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """The whole messages ``data`` completes, in order."""
        self._buffer += data
        messages = []
        while len(self._buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self._buffer)
            if size < 0:
                # Connection's header for a message over 2 GiB; nothing here sends one.
                raise OSError("a worker sent a message too large to read")
            end = _HEADER.size + size
            if len(self._buffer) < end:
                break
            messages.append(bytes(self._buffer[_HEADER.size : end]))
            del self._buffer[:end]
        return messages


class _Worker:
    """One worker process and the daemon's end of its pipe."""

    def __init__(self, n: int, process: BaseProcess, pipe: Connection) -> None:
        self.n = n
        self.process = process
        self.pipe = pipe
        self.frames = Frames()
        #: The message it said it began, until it says it is done with it.
        self.in_hand: int | None = None


class ProcessingWorkers:
    """The daemon's side: starts the workers, wakes them, hears them, replaces one that dies,
    and stops them.

    ``on_processed`` is called when a worker is done with a message (steps may have changed:
    the IMAP tidy pass looks), and ``on_filed`` when its courier filed a request over IMAP.
    With ``imap_filing`` the workers' couriers file people's mail over IMAP, as the daemon's
    own would (``ImapService.filing``).
    """

    def __init__(
        self,
        ctx: Context,
        count: int,
        *,
        on_processed: Callable[[], None] = lambda: None,
        on_filed: Callable[[], None] = lambda: None,
        imap_filing: bool = False,
    ) -> None:
        self.ctx = ctx
        self.count = count
        self.on_processed = on_processed
        self.on_filed = on_filed
        self.imap_filing = imap_filing
        self._workers: dict[int, _Worker] = {}
        self._stopping = False
        self._replacing: set[asyncio.Task[None]] = set()
        self._context = multiprocessing.get_context("spawn")
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Start the processes (spawned: a fork would copy the daemon's threads' locks)."""
        self._loop = asyncio.get_running_loop()
        for n in range(self.count):
            self._start(n)
        log.info("processing and delivering in %d worker processes", self.count)

    def _start(self, n: int) -> None:
        ours, theirs = self._context.Pipe()
        owner = worker_owner(self.ctx.instance, n)
        process = self._context.Process(
            target=run_worker,
            args=(self.ctx.config, owner, theirs, self.imap_filing),
            name=f"yizhan-processor-{n}",
        )
        process.start()
        theirs.close()
        # A worker that hangs must not hang the daemon once its socket is full: a wake it
        # cannot take is dropped (each is five bytes, written whole or not at all), and what
        # it says is read as it comes (Frames).
        os.set_blocking(ours.fileno(), False)
        worker = _Worker(n, process, ours)
        self._workers[n] = worker
        asyncio.get_running_loop().add_reader(ours.fileno(), self._heard, worker)

    def wake(self) -> None:
        """Say that messages were accepted (from the event loop)."""
        self._tell(WAKE)

    def deliver(self) -> None:
        """Wake the workers' couriers: mail was queued. Safe to call from any thread; before
        the workers start, nothing (each worker's courier looks at the queue when it starts)."""
        call_in(self._loop, lambda: self._tell(DELIVER))

    def _tell(self, what: bytes) -> None:
        for worker in self._workers.values():
            with contextlib.suppress(OSError, ValueError):
                worker.pipe.send_bytes(what)

    def _heard(self, worker: _Worker) -> None:
        fd = worker.pipe.fileno()
        processed = filed = False
        try:
            while True:
                try:
                    data = os.read(fd, _READ_SIZE)
                except BlockingIOError:
                    break
                if not data:
                    raise EOFError
                for said in worker.frames.feed(data):
                    if said.startswith(IN_HAND):
                        worker.in_hand = int(said[1:]) if len(said) > 1 else None
                        processed = processed or worker.in_hand is None
                    elif said.startswith(METRICS):
                        WORKERS.heard(worker, said[1:])
                    elif said == FILED:
                        filed = True
                if len(data) < _READ_SIZE:
                    break
        except (EOFError, OSError):
            self._lost(worker)
            return
        finally:
            # Once for all that was read, not once a message.
            if processed:
                self.on_processed()
            if filed:
                self.on_filed()

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
            # The set-aside notices, at the last death, go out through the other workers.
            self.deliver()
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
        """Ask every worker to finish the message and the round it is on and stop; wait."""
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


def run_worker(config: Config, owner: str, pipe: Connection, imap_filing: bool = False) -> None:
    """A worker process's body: process and deliver until told to stop or the daemon is gone."""
    _die_with_parent()
    crashpoints.die_with(os.getppid())
    os.nice(NICENESS)
    # The daemon owns SIGINT and SIGTERM (a Ctrl-C reaches the whole process group): the
    # worker finishes its message and its round and stops when the daemon says so.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    configure_logging(config.log)
    ctx = Context.open(config)
    try:
        asyncio.run(_work(ctx, owner, pipe, imap_filing))
    finally:
        ctx.close()


async def _work(ctx: Context, owner: str, pipe: Connection, imap_filing: bool) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    # The processing thread, the couriers' commits and the event loop all write to the pipe.
    sending = threading.Lock()

    def say(what: bytes) -> None:
        with sending, contextlib.suppress(OSError):
            pipe.send_bytes(what)

    def in_hand(inbound_id: int | None) -> None:
        say(IN_HAND + (b"" if inbound_id is None else str(inbound_id).encode()))

    target = imap_target(ctx.config) if imap_filing else None
    filing = ImapFiling(ctx.config, SessionPool(target), clock=ctx.clock) if target else None
    if filing is not None:
        filing.on_request_filed = lambda: say(FILED)
    outbound = OutboundWorker(ctx, filing=filing, owner=owner)
    # What this worker queued goes out through its own courier, woken here, not through the
    # daemon.
    processor = Processor(ctx, on_queued=outbound.wake, owner=owner, in_hand=in_hand)
    # A full collection over what start-up made took ~50 ms every twenty or so commands (the
    # twentieth slowest SEARCH was that pause): daemon/heap.py.
    heap.settle()

    def heard() -> None:
        try:
            while pipe.poll():
                said = pipe.recv_bytes()
                if said == STOP:
                    stop.set()
                elif said == DELIVER:
                    outbound.wake()
                else:
                    processor.wake()
        except (EOFError, OSError):
            stop.set()
        if stop.is_set():
            loop.remove_reader(pipe.fileno())

    async def metrics() -> None:
        # What it counted (signing and delivery times …) goes to the daemon now and then,
        # not after every message.
        sent = b""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), METRICS_SECONDS)
            figures = snapshot()
            if figures != sent:
                await asyncio.to_thread(say, METRICS + figures)
                sent = figures

    loop.add_reader(pipe.fileno(), heard)
    try:
        await asyncio.gather(processor.run(stop), outbound.run(stop), metrics())
    finally:
        if filing is not None:
            with contextlib.suppress(Exception):
                await filing.pool.close()


def _die_with_parent() -> None:
    """Have the kernel stop this process when the daemon dies, even by SIGKILL."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:
        # The daemon died before the line above: nobody will stop this worker.
        os._exit(0)
