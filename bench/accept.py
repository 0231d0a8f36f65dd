"""Measures Yizhan's durable accept rate against a bare aiosmtpd sink that fsyncs each message.

``python -m bench.accept`` (or ``make bench``) runs, on loopback, one server at a time as a
subprocess and drives it with the same smtplib clients: several client processes, each with
threads, one SMTP connection per thread, a fixed number of 10 KB messages in all, with a time
cap. It prints messages per second of each server and their ratio. The target is a ratio of at
least 0.8. Each cell is the median of ``--rounds`` runs, sink and Yizhan alternating, since on
a shared machine single runs vary by a fifth; ``-v`` shows every run and the CPU the server
used while the clock ran.

The two servers do the same durable work per message, in a pool of 32 worker threads each:

* sink: aiosmtpd with a DATA hook that, in ``asyncio.to_thread``, writes the message to a file
  of its own, fsyncs it, renames it into place and fsyncs the directory, then answers 250;
* yizhan: the gateway (``daemon.gateway.server.start_smtp``: ``mailstore.inbound.InboundWriter``
  spooling, ``daemon.pickup`` making the rows) on a
  fresh SQLite database, one account, AUTH PLAIN on loopback (done before the clock starts);
  it answers 250 after the file, its directory entry and its envelope in the spool are on disk.

Both servers check at the end that they hold every message the clients were told was accepted.

The sink is aiosmtpd as it comes; the gateway is aiosmtpd with its DATA reader and its envelope
path parser replaced by faster ones (``daemon.gateway.data``, ``GatewaySMTP._getaddr``), which is
part of what it spends less on than the sink does.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import resource
import shutil
import signal
import smtplib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any, Final

DOMAIN: Final = "oa.example"
ACCOUNT: Final = "wangfang"
PASSWORD: Final = "Qingshui-River-88"
SENDER: Final = f"{ACCOUNT}@{DOMAIN}"
RECIPIENT: Final = f"fawen@{DOMAIN}"
ORG: Final[dict[str, Any]] = {
    "unit": [{"id": "bureau", "name": "遼寧出入境檢驗檢疫局", "kind": "bureau"}],
    "person": [
        {
            "account": ACCOUNT,
            "name": "王芳",
            "unit": "bureau",
            "roles": ["clerk"],
            "email": "wangfang@bureau.example",
        }
    ],
}
ROOT: Final = Path(__file__).resolve().parent.parent
#: Worker threads of each server; Yizhan's InboundWriter default.
WORKER_THREADS: Final = 32


# --- The servers (run as subprocesses) --------------------------------------------------------


class FsyncSink:
    """A bare aiosmtpd handler: each message to its own file, fsync, rename, fsync directory."""

    def __init__(self, directory: Path) -> None:
        self.tmp = directory / "tmp"
        self.new = directory / "new"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.new.mkdir(parents=True, exist_ok=True)
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Store durably in a worker thread, then acknowledge."""
        await asyncio.to_thread(self._write, envelope.original_content)
        self.count += 1
        return "250 OK"

    def _write(self, data: bytes) -> None:
        name = f"{uuid.uuid4().hex}.eml"
        fd = os.open(self.tmp / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(self.tmp / name, self.new / name)
        dir_fd = os.open(self.new, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


async def _serve_sink(directory: Path) -> int:
    from aiosmtpd.smtp import SMTP

    loop = asyncio.get_running_loop()
    # The same number of worker threads as Yizhan's writer has, so both can have as many
    # messages on their way to the disk at once.
    loop.set_default_executor(ThreadPoolExecutor(max_workers=WORKER_THREADS))
    handler = FsyncSink(directory)
    server = await loop.create_server(
        lambda: SMTP(
            handler,
            data_size_limit=26_214_400,
            enable_SMTPUTF8=True,
            hostname="sink.test",
            loop=loop,
        ),
        host="127.0.0.1",
        port=0,
    )
    await _announce_and_wait(server.sockets[0].getsockname()[1])
    server.close()
    await server.wait_closed()
    return handler.count


async def _serve_yizhan_without_content(directory: Path) -> int:
    # A diagnostic: the gateway with the content rules (daemon.screening, run after DATA) taken
    # out, to show what share of the time they take.
    import yizhan.daemon.gateway.hooks as gateway

    async def no_content_rules(*args: Any, **kwargs: Any) -> None:
        return None

    if not hasattr(gateway, "check_message"):
        raise RuntimeError("daemon.gateway.hooks no longer calls check_message; update the bench")
    gateway.check_message = no_content_rules
    return await _serve_yizhan(directory)


async def _serve_yizhan(directory: Path) -> int:
    from sqlalchemy import func, select

    from yizhan.daemon.config import parse_config
    from yizhan.daemon.context import Context
    from yizhan.daemon.gateway.server import start_smtp
    from yizhan.mailstore.accounts import set_password
    from yizhan.mailstore.db import upgrade
    from yizhan.mailstore.directory import import_directory
    from yizhan.mailstore.models import Inbound
    from yizhan.routing.directory import parse_org

    config = parse_config(
        {
            "yizhan": {"data_dir": str(directory), "domain": DOMAIN, "secret": "bench-" + "s" * 20},
            "database": {"url": f"sqlite:///{directory / 'yizhan.db'}"},
            "smtp": {"listen": "127.0.0.1:0", "tls_cert": "", "tls_key": ""},
        }
    )
    ctx = Context.open(config)
    try:
        upgrade(ctx.engine)
        ctx.raw.prepare()
        with ctx.sessions.begin() as session:
            now = ctx.clock()
            import_directory(session, parse_org(ORG), actor="bench", now=now)
            set_password(
                session,
                ACCOUNT,
                PASSWORD,
                temporary=False,
                actor="bench",
                now=now,
                policy=ctx.login_policy,
            )
        server = await start_smtp(ctx)
        await _announce_and_wait(server.port)
        server.close()
        # The pickup makes the rows of every spooled message before this returns.
        await server.wait_closed()
        with ctx.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(Inbound)) or 0)
    finally:
        ctx.close()


async def _announce_and_wait(port: int) -> None:
    # The parent reads the port from stdout, and closes stdin to stop the server.
    print(f"PORT {port}", flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def wait_for_eof() -> None:
        sys.stdin.read()
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=wait_for_eof, daemon=True).start()
    await stop.wait()


def _print_cpu(signum: int, frame: Any) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"CPU {usage.ru_utime:.4f} {usage.ru_stime:.4f}", flush=True)


SERVERS: Final = {
    "sink": _serve_sink,
    "yizhan": _serve_yizhan,
    "yizhan-no-content": _serve_yizhan_without_content,
}


def serve(kind: str, directory: Path) -> None:
    """Run one server until stdin closes; then print how many messages it holds.

    SIGUSR1 makes it print the CPU time it has used so far, so that the parent can tell the
    CPU spent while the clock ran from the start-up (imports, migrations, argon2 at AUTH).
    """
    logging.basicConfig(level=logging.ERROR)
    signal.signal(signal.SIGUSR1, _print_cpu)
    runner = SERVERS[kind]
    profile = os.environ.get("BENCH_PROFILE")
    if profile:
        import cProfile

        with cProfile.Profile() as profiler:
            stored = asyncio.run(runner(directory))
        profiler.dump_stats(f"{profile}.{kind}")
    else:
        stored = asyncio.run(runner(directory))
    print(f"STORED {stored}", flush=True)


# --- The clients --------------------------------------------------------------------------------


def make_message(size: int, n: int) -> bytes:
    """A plain-text message of exactly ``size`` bytes with a unique Message-ID."""
    head = (
        f"From: 王芳 <{SENDER}>\r\nTo: {RECIPIENT}\r\nSubject: bench {n}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@bench.test>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    ).encode()
    line = b"x" * 74 + b"\r\n"
    body_size = max(size - len(head), 2)
    body = (line * (body_size // len(line) + 1))[: body_size - 2] + b"\r\n"
    return head + body


def _client_thread(
    port: int,
    auth: bool,
    count: int,
    size: int,
    cap: float,
    barrier: Barrier,
    results: list[tuple[int, float, int]],
) -> None:
    sent = errors = 0
    try:
        client = smtplib.SMTP("127.0.0.1", port, local_hostname="bench.test", timeout=60)
        client.ehlo()
        if auth:
            client.login(ACCOUNT, PASSWORD)
        messages = [make_message(size, n) for n in range(count)]
    except (OSError, smtplib.SMTPException):
        # Release the others rather than leave them waiting for a client that never comes.
        barrier.abort()
        results.append((0, time.monotonic(), count))
        raise
    barrier.wait()
    deadline = time.monotonic() + cap
    for data in messages:
        if time.monotonic() > deadline:
            break
        try:
            client.sendmail(SENDER, [RECIPIENT], data)
            sent += 1
        except smtplib.SMTPException:
            errors += 1
        except OSError:
            errors += 1
            break
    results.append((sent, time.monotonic(), errors))
    try:
        client.quit()
    except (OSError, smtplib.SMTPException):
        client.close()


def _client_process(
    port: int,
    auth: bool,
    counts: list[int],
    size: int,
    cap: float,
    barrier: Barrier,
    queue: multiprocessing.Queue[tuple[int, float, int]],
) -> None:
    results: list[tuple[int, float, int]] = []
    threads = [
        threading.Thread(
            target=_client_thread, args=(port, auth, count, size, cap, barrier, results)
        )
        for count in counts
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        queue.put(result)


@dataclass(frozen=True, kw_only=True)
class RunResult:
    """One measurement."""

    sent: int
    errors: int
    seconds: float
    stored: int
    #: CPU seconds the server used while the clock ran, in user space and in the kernel.
    server_user: float
    server_system: float

    @property
    def server_cpu(self) -> float:
        """CPU seconds the server used while the clock ran."""
        return self.server_user + self.server_system

    @property
    def rate(self) -> float:
        """Messages acknowledged per second."""
        return self.sent / self.seconds if self.seconds > 0 else 0.0


def run_once(
    kind: str, *, connections: int, messages: int, size: int, cap: float, processes: int, base: Path
) -> RunResult:
    """Start one server, drive it with the clients, stop it; messages per second."""
    directory = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=base))
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.accept", "--serve", kind, "--data", str(directory)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None and server.stdin is not None
        line = server.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"{kind} server did not start: {line!r}")
        port = int(line.split()[1])
        per_connection = [
            messages // connections + (1 if i < messages % connections else 0)
            for i in range(connections)
        ]
        processes = max(1, min(processes, connections))
        groups = [per_connection[i::processes] for i in range(processes)]
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(connections + 1)
        queue: multiprocessing.Queue[tuple[int, float, int]] = context.Queue()
        workers = [
            context.Process(
                target=_client_process,
                args=(port, kind.startswith("yizhan"), group, size, cap, barrier, queue),
            )
            for group in groups
        ]
        for worker in workers:
            worker.start()
        barrier.wait(timeout=120)
        started = time.monotonic()
        server.send_signal(signal.SIGUSR1)
        results = [queue.get(timeout=cap + 120) for _ in range(connections)]
        server.send_signal(signal.SIGUSR1)
        for worker in workers:
            worker.join()
        server.stdin.close()
        tail = server.stdout.read()
        server.wait(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
        shutil.rmtree(directory, ignore_errors=True)
    words = tail.split()
    stored = int(words[words.index("STORED") + 1]) if "STORED" in words else -1
    marks = [
        (float(words[i + 1]), float(words[i + 2])) for i, word in enumerate(words) if word == "CPU"
    ]
    user, system = (
        (marks[1][0] - marks[0][0], marks[1][1] - marks[0][1]) if len(marks) == 2 else (0.0, 0.0)
    )
    return RunResult(
        sent=sum(r[0] for r in results),
        errors=sum(r[2] for r in results),
        seconds=max(r[1] for r in results) - started,
        stored=stored,
        server_user=user,
        server_system=system,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table; exit status 1 if a server lost a message."""
    parser = argparse.ArgumentParser(prog="python -m bench.accept", description=__doc__)
    parser.add_argument("--messages", type=int, default=2000, help="messages per run")
    parser.add_argument("--connections", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--size", type=int, default=10 * 1024, help="message size in bytes")
    parser.add_argument("--cap", type=float, default=120.0, help="time cap per run, seconds")
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--rounds", type=int, default=3, help="runs per cell; the median counts")
    parser.add_argument("--dir", type=Path, default=ROOT / "var", help="where data is written")
    parser.add_argument("-v", "--verbose", action="store_true", help="show each run")
    parser.add_argument(
        "--without-content-rules",
        action="store_true",
        help="also run Yizhan with its content rules taken out, to show their share",
    )
    parser.add_argument("--serve", choices=sorted(SERVERS), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.data)
        return 0

    args.dir.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="bench-accept-", dir=args.dir))
    print(
        f"{args.messages} messages of {args.size} bytes per run, {args.processes} client "
        f"processes, data in {base}, {os.cpu_count()} CPUs"
    )
    kinds = ["sink", "yizhan"] + (["yizhan-no-content"] if args.without_content_rules else [])
    header = f"{'connections':>11}  {'sink msg/s':>10}  {'yizhan msg/s':>12}  {'ratio':>5}"
    if args.without_content_rules:
        header += f"  {'w/o content msg/s':>17}  {'ratio':>5}"
    print(header)
    lost = False
    try:
        for connections in args.connections:
            rates: dict[str, list[float]] = {kind: [] for kind in kinds}
            for _ in range(args.rounds):
                for kind in kinds:
                    result = run_once(
                        kind,
                        connections=connections,
                        messages=args.messages,
                        size=args.size,
                        cap=args.cap,
                        processes=args.processes,
                        base=base,
                    )
                    if result.errors or result.stored != result.sent:
                        lost = lost or result.stored < result.sent
                        print(
                            f"  {kind}: {result.sent} acknowledged, {result.stored} stored, "
                            f"{result.errors} refused"
                        )
                    rates[kind].append(result.rate)
                    if args.verbose:
                        print(
                            f"  {kind}: {result.sent} in {result.seconds:.2f} s; server CPU "
                            f"{result.server_cpu:.2f} s, "
                            f"{result.server_cpu / max(result.sent, 1) * 1000:.2f} ms a message "
                            f"({result.server_user / max(result.sent, 1) * 1000:.2f} user, "
                            f"{result.server_system / max(result.sent, 1) * 1000:.2f} system)"
                        )
            sink, yizhan = statistics.median(rates["sink"]), statistics.median(rates["yizhan"])
            line = (
                f"{connections:>11}  {sink:>10.0f}  {yizhan:>12.0f}  {_ratio(yizhan, sink):>5.2f}"
            )
            if args.without_content_rules:
                bare = statistics.median(rates["yizhan-no-content"])
                line += f"  {bare:>17.0f}  {_ratio(bare, sink):>5.2f}"
            print(line, flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 1 if lost else 0


def _ratio(rate: float, sink: float) -> float:
    return rate / sink if sink else 0.0


if __name__ == "__main__":
    sys.exit(main())
