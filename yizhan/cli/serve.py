"""The ``serve`` verb's body: starts every part of the daemon and the admin page, wires them
together, and stops them cleanly on SIGTERM.

It lives at the top, with the other verbs, because it is the one place that joins the daemon
(``yizhan.daemon``) and the admin page (``yizhan.admin``), which builds on the daemon.

Start-up order follows the durable stages: leftovers from a crash are cleaned and recovered
first (unacknowledged temp files removed; accepted but unprocessed messages and unsent
deliveries are picked up by their workers), then the SMTP listener opens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterator

import uvicorn

from yizhan.admin.app import create_app
from yizhan.daemon import heap
from yizhan.daemon.context import Context
from yizhan.daemon.gateway.policy import login_refusal, start_policy_service
from yizhan.daemon.gateway.server import start_smtp
from yizhan.daemon.imap.service import ImapService
from yizhan.daemon.jobs.scheduler import start_scheduler
from yizhan.daemon.logs import configure as configure_logging
from yizhan.daemon.outbound import OutboundWorker
from yizhan.daemon.processor import Processor
from yizhan.daemon.sdnotify import Notifier
from yizhan.daemon.workers import ProcessingWorkers, worker_count
from yizhan.mailstore.db import require_current_schema
from yizhan.mailstore.inbound import InboundWriter
from yizhan.mailstore.pending import release_leases

log = logging.getLogger("yizhan.serve")


class _AdminServer(uvicorn.Server):
    """Uvicorn without its own signal handlers: the daemon owns SIGTERM and SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def serve(ctx: Context) -> None:
    """Run until SIGTERM or SIGINT."""
    configure_logging(ctx.config.log)
    # aiosmtpd logs every SMTP command at INFO; the gateway logs what matters itself.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    asyncio.run(run_daemon(ctx))


async def run_daemon(
    ctx: Context,
    stop: asyncio.Event | None = None,
    *,
    on_ready: Callable[[int], None] | None = None,
) -> None:
    """Start the parts, wait for ``stop`` (or a signal), then shut them down in order.

    ``on_ready`` is called with the SMTP port once the listener accepts connections.
    """
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    # An older or newer schema stops the daemon here, naming `yizhan migrate` (mailstore/db.py).
    require_current_schema(ctx.engine)
    ctx.raw.prepare()
    # Everything Yizhan sends is signed; `yizhan init` made the key, this heals a lost one.
    await asyncio.to_thread(ctx.keyring.ensure_system_key, ctx.config.domain)
    with ctx.sessions.begin() as session:
        released = release_leases(session, ctx.instance)
    if released:
        log.info("took back %d leases held when this daemon last stopped", released)
    stale = ctx.raw.remove_stale_tmp()
    if stale:
        log.info("removed %d unacknowledged temporary files left by a crash", stale)

    imap = ImapService(ctx)
    # The couriers run where processing runs: in the worker processes, or here.
    processing = _start_processing(ctx, stop, imap)
    imap.on_dovecot_start = processing.deliver

    def queued() -> None:
        # Mail to send, and steps that may have changed: the IMAP folders follow (issue 13).
        processing.deliver()
        imap.wake()

    writer = InboundWriter(ctx, on_committed=lambda _ids: processing.wake())
    smtp = await start_smtp(ctx, on_committed=lambda _ids: processing.wake(), on_queued=queued)
    policy_listen = ctx.config.smtp.policy_listen
    policy = (
        await start_policy_service(
            policy_listen, secret=ctx.config.secret, check=login_refusal(ctx)
        )
        if policy_listen is not None
        else None
    )
    scheduler = start_scheduler(ctx, on_queued=queued)
    admin_listen = ctx.config.admin_listen
    admin = _AdminServer(
        uvicorn.Config(
            create_app(ctx, on_queued=queued),
            host=admin_listen.host,
            port=admin_listen.port,
            log_level="warning",
            lifespan="off",
        )
    )
    workers = [*processing.tasks, asyncio.create_task(admin.serve(), name="admin")]
    # Dovecot asks the admin page about logins, so IMAP starts once it has its port; it
    # stops once the couriers filing into it have.
    workers += imap.start(
        stop,
        admin_port=await _bound_port(admin, admin_listen.port),
        writer=writer,
        after=processing.stopped,
    )
    print(
        f"yizhan: SMTP on {ctx.config.smtp.listen.host}:{smtp.port}, "
        f"admin page on http://{admin_listen}/, data in {ctx.config.data_dir}",
        flush=True,
    )
    if on_ready is not None:
        on_ready(smtp.port)
    # What start-up made lives as long as the daemon: out of the collector's full passes, which
    # otherwise walked it every few page requests (daemon/heap.py).
    log.info("froze %d objects made at start-up", heap.settle())
    notifier = Notifier()
    notifier.notify("READY=1", f"STATUS=accepting mail on port {smtp.port}")
    watchdog = asyncio.create_task(notifier.keep_alive(stop), name="watchdog")
    await stop.wait()
    notifier.notify("STOPPING=1")
    log.info("stopping")
    await watchdog
    scheduler.shutdown()
    smtp.close()
    await smtp.wait_closed()
    if policy is not None:
        policy.close()
    await writer.aclose()
    try:
        await processing.stop()
    finally:
        processing.stopped.set()
    admin.should_exit = True
    await asyncio.gather(*workers, return_exceptions=True)
    await imap.close()
    heap.release()


class _Processing:
    """The processor and the couriers: in worker processes (daemon/workers.py), or in this
    one (a thread and a task)."""

    def __init__(
        self,
        *,
        wake: Callable[[], None],
        deliver: Callable[[], None],
        tasks: list[asyncio.Task[None]],
        pool: ProcessingWorkers | None,
    ) -> None:
        #: Messages were accepted.
        self.wake = wake
        #: Mail was queued, here: the couriers look at the queue (from any thread).
        self.deliver = deliver
        self.tasks = tasks
        #: Set once the processor and the couriers have stopped.
        self.stopped = asyncio.Event()
        self._pool = pool

    async def stop(self) -> None:
        if self._pool is not None:
            await self._pool.stop()
        else:
            await asyncio.gather(*self.tasks, return_exceptions=True)


def _start_processing(ctx: Context, stop: asyncio.Event, imap: ImapService) -> _Processing:
    count = worker_count(ctx.config)
    if count:
        pool = ProcessingWorkers(
            ctx,
            count,
            on_processed=imap.wake,
            on_filed=imap.wake,
            imap_filing=imap.filing is not None,
        )
        pool.start()
        return _Processing(wake=pool.wake, deliver=pool.deliver, tasks=[], pool=pool)
    outbound = OutboundWorker(ctx, filing=imap.filing)

    def queued() -> None:
        outbound.wake()
        imap.wake()

    processor = Processor(ctx, on_queued=queued)
    tasks = [
        asyncio.create_task(processor.run(stop), name="processor"),
        asyncio.create_task(outbound.run(stop), name="outbound"),
    ]
    return _Processing(wake=processor.wake, deliver=outbound.wake, tasks=tasks, pool=None)


async def _bound_port(server: uvicorn.Server, configured: int) -> int:
    """The port the admin page listens on (``[admin] listen`` may say 0)."""
    for _ in range(400):
        if server.started and server.servers:
            for listener in server.servers:
                for sock in listener.sockets:
                    return int(sock.getsockname()[1])
        await asyncio.sleep(0.025)
    log.error("the admin page did not start listening; IMAP logins will fail until it does")
    return configured
