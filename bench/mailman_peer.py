"""Measures GNU Mailman 3 end to end: posts taken in by LMTP and delivered to a 10-member list.

This is the peer of issue 16's end-to-end target: Yizhan's answered commands per second are
compared with Mailman's posts per second, measured the same way on the same machine.

``setup()`` installs ``mailman`` 3.3.x from PyPI into a venv of its own (``build/mailman-venv``,
reused when present); nothing goes into the project's venv. ``run()`` then, in a temporary
directory:

* writes a ``mailman.cfg``: SQLite database, the LMTP server and the REST API on free loopback
  ports, SMTP out to a sink on a free loopback port, every runner with its default sleep;
  ``[mta] incoming`` is ``NullMTA``, which only means that no Postfix map files are written
  (the LMTP runner and the SMTP delivery are the same);
* creates the list and its members with Mailman's own CLI (the poster is one of the members, so
  its posts are not held), then runs ``mailman start``;
* starts the sink, an aiosmtpd server in this process that notes, for each Message-ID, when the
  last of its recipients arrived (Mailman may put several recipients in one transaction);
* once the runners are idle, has ``clients`` threads, one LMTP connection each (as Postfix
  would deliver), send ``n_posts`` posts of ``size`` bytes with unique Message-IDs to the list;
* waits until every post reached every member at the sink, then reads the runners' CPU and
  peak memory from ``/proc`` and stops Mailman (also on errors).

posts/s is posts over the time from the first LMTP send to the last post delivered; a post's
latency is from the LMTP 250 to its delivery. CPU is utime + stime (and those of reaped
children) of the Mailman master and every process under it, the figure before the load
subtracted. Peak RSS is the sum of VmHWM over those processes (the largest one is shown too).

``python -m bench.mailman_peer`` prints the result as a table, ``--json`` as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parent.parent
#: What ``setup()`` installs: the 3.3 series, as measured in issue 16 (3.3.10).
MAILMAN_REQUIREMENT: Final = "mailman>=3.3,<3.4"
DOMAIN: Final = "lists.example"
LIST_ADDRESS: Final = f"bench@{DOMAIN}"
MEMBER_DOMAIN: Final = "members.example"
#: Time caps, in seconds.
INSTALL_TIMEOUT: Final = 1200.0
CLI_TIMEOUT: Final = 120.0
START_TIMEOUT: Final = 90.0
STOP_TIMEOUT: Final = 10.0
#: Runners count as idle when the whole tree uses less than this share of one core.
IDLE_SHARE: Final = 0.05
#: Seconds over which the idle runners' CPU use is measured.
IDLE_WINDOW: Final = 3.0
CLK_TCK: Final = os.sysconf("SC_CLK_TCK")
#: Iterations of the reference loop (see ``reference_cpu_ms``).
REFERENCE_LOOP: Final = 1_000_000


class PeerError(RuntimeError):
    """Mailman could not be installed, started or measured; the message says why."""


@dataclass(frozen=True, kw_only=True)
class MailmanResult:
    """One measured run of Mailman."""

    posts_per_s: float
    cpu_ms_per_post: float
    p50_s: float
    p99_s: float
    #: Sum of VmHWM over the master and every process under it.
    peak_rss_mib: float
    n_posts: int
    #: Posts a second the clients were paced at (0: as fast as the LMTP runner answered).
    rate: float = 0.0
    #: VmHWM of the largest single process.
    largest_rss_mib: float = 0.0
    processes: int = 0
    elapsed_s: float = 0.0
    version: str = ""
    #: Posts over the time from the first LMTP send to the last LMTP 250.
    accepted_per_s: float = 0.0
    #: CPU ms a post by runner (``master``, ``lmtp``, ``in``, ``pipeline``, ``out``, ...).
    cpu_ms_by_runner: dict[str, float] = field(default_factory=dict)
    #: SMTP transactions that reached the sink during the load (Mailman's default
    #: ``max_recipients`` of 10 puts a post to 10 members in one).
    smtp_transactions: int = 0
    #: CPU ms a second the idle runners use (measured before the load, not subtracted).
    idle_cpu_ms_per_s: float = 0.0
    #: The machine's one-minute load average when the last post arrived (other work on a
    #: shared machine slows Mailman's runners and inflates their CPU time).
    load_average: float = 0.0
    #: CPU ms of a fixed pure-Python loop in this process, just before and just after the load:
    #: on a shared machine CPU time a unit of work grows with contention, and this shows how
    #: much (compare runs by it).
    reference_cpu_ms: tuple[float, float] = (0.0, 0.0)


# --- Installation --------------------------------------------------------------------------------


def setup(build_dir: Path = ROOT / "build") -> Path:
    """Create ``build_dir/mailman-venv`` with Mailman 3.3 in it (reused when present); return it."""
    venv = build_dir / "mailman-venv"
    marker = venv / ".mailman-installed"
    if marker.exists() and (venv / "bin" / "mailman").exists():
        return venv
    if venv.exists():
        # A venv without the marker is what an interrupted install left.
        shutil.rmtree(venv)
    build_dir.mkdir(parents=True, exist_ok=True)
    # The interpreter the project's venv was made from, not the venv's own.
    base = Path(getattr(sys, "_base_executable", "") or sys.executable)
    steps = [
        [str(base), "-m", "venv", str(venv)],
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", MAILMAN_REQUIREMENT],
    ]
    for command in steps:
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired as exc:
            shutil.rmtree(venv, ignore_errors=True)
            raise PeerError(f"{' '.join(command)}: no result in {INSTALL_TIMEOUT:.0f} s") from exc
        if done.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            output = _tail(done.stderr + done.stdout)
            raise PeerError(f"{' '.join(command)} failed ({done.returncode}):\n{output}")
    marker.write_text(mailman_version(venv) + "\n", encoding="utf-8")
    return venv


def mailman_version(venv: Path) -> str:
    """The installed Mailman's version, e.g. ``3.3.10``."""
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import mailman.version as v; print(v.VERSION)"],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise PeerError(f"Mailman in {venv} cannot be imported:\n{_tail(done.stderr)}")
    return done.stdout.strip()


# --- The sink ------------------------------------------------------------------------------------


class DeliverySink:
    """An aiosmtpd handler noting when each Message-ID has reached all of its recipients."""

    def __init__(self, recipients: int) -> None:
        self.recipients = recipients
        self.lock = threading.Lock()
        self.seen: dict[str, set[str]] = {}
        #: Message-ID → monotonic time its last recipient arrived.
        self.delivered: dict[str, float] = {}
        #: Transactions whose Message-ID is not a post being waited for (welcomes, digests).
        self.others = 0
        self.transactions = 0
        self.watched: set[str] = set()
        self.changed = threading.Condition(self.lock)

    def watch(self, message_ids: set[str]) -> None:
        """Count deliveries of these Message-IDs from now on."""
        with self.lock:
            self.watched = set(message_ids)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Note the arrival, then accept."""
        now = time.monotonic()
        headers = BytesHeaderParser(policy=compat32).parsebytes(envelope.original_content)
        message_id = str(headers.get("Message-ID", "")).strip()
        with self.lock:
            self.transactions += 1
            if message_id not in self.watched:
                self.others += 1
                return "250 OK"
            seen = self.seen.setdefault(message_id, set())
            seen.update(address.lower() for address in envelope.rcpt_tos)
            if len(seen) >= self.recipients and message_id not in self.delivered:
                self.delivered[message_id] = now
                self.changed.notify_all()
        return "250 OK"

    def wait_all(self, count: int, deadline: float) -> bool:
        """Wait until ``count`` posts are delivered or the monotonic ``deadline``; say which."""
        with self.lock:
            while len(self.delivered) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.changed.wait(min(left, 1.0))
            return True


@contextlib.contextmanager
def running_sink(handler: DeliverySink) -> Iterator[int]:
    """Serve ``handler`` on a free loopback port in a thread of its own; yield the port."""
    from aiosmtpd.smtp import SMTP

    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop = asyncio.Event()
    port: list[int] = []
    failure: list[BaseException] = []

    async def serve() -> None:
        server = await loop.create_server(
            lambda: SMTP(handler, hostname="sink.test", data_size_limit=0, loop=loop),
            host="127.0.0.1",
            port=0,
        )
        port.append(server.sockets[0].getsockname()[1])
        ready.set()
        async with server:
            await stop.wait()

    def main() -> None:
        try:
            loop.run_until_complete(serve())
        except BaseException as exc:
            failure.append(exc)
        finally:
            ready.set()
            loop.close()

    thread = threading.Thread(target=main, name="mailman-sink", daemon=True)
    thread.start()
    if not ready.wait(10) or not port:
        raise PeerError(f"the SMTP sink did not start: {failure[0] if failure else 'no answer'}")
    try:
        yield port[0]
    finally:
        # The loop is closed already if the server failed while the load ran.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(stop.set)
        thread.join(10)


# --- Mailman's processes -------------------------------------------------------------------------


@dataclass
class Usage:
    """CPU and peak memory of a process tree, read from /proc, per process."""

    #: pid → (runner name, CPU seconds, VmHWM KiB).
    processes: dict[int, tuple[str, float, int]] = field(default_factory=dict)

    @property
    def cpu_s(self) -> float:
        """CPU seconds of the whole tree."""
        return sum(cpu for _, cpu, _ in self.processes.values())

    @property
    def rss_kib(self) -> list[int]:
        """VmHWM of each process."""
        return [hwm for _, _, hwm in self.processes.values()]

    def cpu_by_name(self) -> dict[str, float]:
        """CPU seconds per runner name (``master``; ``rest`` includes its gunicorn workers)."""
        result: dict[str, float] = {}
        for name, cpu, _ in self.processes.values():
            result[name] = result.get(name, 0.0) + cpu
        return result


def _proc_stat(pid: int) -> tuple[int, float] | None:
    """(ppid, utime + stime + cutime + cstime in seconds) of ``pid``, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = raw[raw.rindex(b")") + 2 :].split()
    ticks = sum(int(value) for value in fields[11:15])
    return int(fields[1]), ticks / CLK_TCK


def tree(root: int) -> list[int]:
    """``root`` and every live process under it."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(int(entry))
            if stat is not None:
                parents[int(entry)] = stat[0]
    found = [root] if root in parents else []
    frontier = list(found)
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def usage(root: int) -> Usage:
    """CPU seconds and VmHWM of ``root``'s tree."""
    result = Usage()
    for pid in tree(root):
        stat = _proc_stat(pid)
        if stat is None:
            continue
        hwm = 0
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
        result.processes[pid] = (_runner_name(pid), stat[1], hwm)
    return result


def _runner_name(pid: int) -> str:
    """``in`` for a process started with ``--runner=in:0:1``, else ``master``."""
    with contextlib.suppress(OSError):
        for arg in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"):
            if arg.startswith(b"--runner="):
                return arg[len(b"--runner=") :].decode().split(":")[0]
    return "master"


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


class Mailman:
    """One Mailman instance in a directory of its own, driven by its CLI."""

    def __init__(self, venv: Path, directory: Path, *, lmtp_port: int, smtp_port: int) -> None:
        self.venv = venv
        self.directory = directory
        self.lmtp_port = lmtp_port
        self.var = directory / "var"
        self.config = directory / "mailman.cfg"
        gunicorn = directory / "gunicorn.cfg"
        gunicorn.write_text(_gunicorn_config(directory), encoding="utf-8")
        self.config.write_text(
            _config(
                self.var,
                lmtp_port=lmtp_port,
                smtp_port=smtp_port,
                rest_port=free_port(),
                gunicorn=gunicorn,
            ),
            encoding="utf-8",
        )
        self.master: int | None = None
        self.pids: set[int] = set()
        self.outputs: list[Path] = []

    def cli(self, *args: str, stdin: str | None = None) -> str:
        """Run ``mailman ARGS`` on this instance; return its output or raise with it."""
        command = [str(self.venv / "bin" / "mailman")]
        if os.geteuid() == 0:
            command.append("--run-as-root")
        command += ["-C", str(self.config), *args]
        # Output goes to a file: ``mailman start`` forks the master, which would keep a pipe
        # open (and the call waiting) for as long as it runs; what the master and its runners
        # print (a runner's traceback) lands in ``start.out``.
        self.outputs.append(self.directory / f"{args[0]}.out")
        with self.outputs[-1].open("w+b") as output:
            try:
                done = subprocess.run(
                    command,
                    input=(stdin or "").encode(),
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    timeout=CLI_TIMEOUT,
                    cwd=self.directory,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise PeerError(
                    f"mailman {' '.join(args)}: no result in {CLI_TIMEOUT:.0f} s{self.log_tail()}"
                ) from exc
            output.seek(0)
            text = output.read().decode(errors="replace")
        if done.returncode != 0:
            raise PeerError(
                f"mailman {' '.join(args)} failed ({done.returncode}):\n"
                f"{_tail(text)}{self.log_tail()}"
            )
        return text

    def start(self) -> int:
        """``mailman start``; wait until the LMTP port answers and every runner is up and idle."""
        self.cli("start")
        deadline = time.monotonic() + START_TIMEOUT
        pid_file = self.var / "master.pid"
        while self.master is None:
            with contextlib.suppress(OSError, ValueError):
                self.master = int(pid_file.read_text().strip())
            self._check_start(deadline, "no master.pid")
        while not _port_open(self.lmtp_port):
            self._check_start(deadline, f"LMTP port {self.lmtp_port} does not answer")
        # Every runner has imported Mailman and sleeps between scans once the tree's CPU use is
        # near nothing; only then does the baseline CPU reading mean anything.
        previous = usage(self.master).cpu_s
        while True:
            time.sleep(1.0)
            self._check_start(deadline, "the runners do not settle")
            current = usage(self.master).cpu_s
            if current - previous < IDLE_SHARE:
                break
            previous = current
        self.pids.update(tree(self.master))
        return self.master

    def _check_start(self, deadline: float, what: str) -> None:
        if self.master is not None and _proc_stat(self.master) is None:
            raise PeerError(f"the Mailman master (pid {self.master}) exited{self.log_tail()}")
        if time.monotonic() > deadline:
            raise PeerError(f"mailman start: {what} after {START_TIMEOUT:.0f} s{self.log_tail()}")
        time.sleep(0.2)

    def stop(self) -> None:
        """``mailman stop``, then make sure nothing of it is left (SIGKILL what lingers)."""
        if self.master is None:
            return
        self.pids.update(tree(self.master))
        with contextlib.suppress(PeerError):
            self.cli("stop")
        # The REST runner (gunicorn) may take its graceful timeout, 30 s, to go: after a while
        # what is left gets SIGTERM again, then SIGKILL.
        for sig in (signal.SIGTERM, signal.SIGKILL):
            deadline = time.monotonic() + STOP_TIMEOUT
            while time.monotonic() < deadline and self._alive():
                time.sleep(0.2)
            for pid in self._alive():
                with contextlib.suppress(OSError):
                    os.kill(pid, sig)
        self.master = None

    def _alive(self) -> list[int]:
        # A pid counts only while it still runs with this instance's configuration file, so a
        # reused pid is never signalled.
        config = str(self.config).encode()
        return [pid for pid in self.pids if config in _cmdline(pid)]

    def log_tail(self) -> str:
        """The end of ``mailman start``'s output and of var/logs/mailman.log, for an error."""
        parts = []
        for path in (self.directory / "start.out", self.var / "logs" / "mailman.log"):
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                parts.append(f"\n(no {path})")
                continue
            if text.strip():
                parts.append(f"\n--- end of {path} ---\n{_tail(text)}")
        return "".join(parts)


def _config(var: Path, *, lmtp_port: int, smtp_port: int, rest_port: int, gunicorn: Path) -> str:
    return f"""\
[mailman]
layout: bench
site_owner: owner@{DOMAIN}

[paths.bench]
var_dir: {var}

[database]
class: mailman.database.sqlite.SQLiteDatabase
url: sqlite:///$DATA_DIR/mailman.db

[mta]
incoming: mailman.mta.null.NullMTA
lmtp_host: 127.0.0.1
lmtp_port: {lmtp_port}
smtp_host: 127.0.0.1
smtp_port: {smtp_port}

[webservice]
hostname: 127.0.0.1
port: {rest_port}
configuration: {gunicorn}
"""


def _gunicorn_config(directory: Path) -> str:
    # Mailman's own mailman/config/gunicorn.cfg, plus a control socket of this instance's
    # (gunicorn's default is ~/.gunicorn/gunicorn.ctl, shared by every instance).
    return f"""\
[gunicorn]
graceful_timeout = 30
timeout = 360
control_socket = {directory / "gunicorn.ctl"}
"""


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1.0)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


# --- The load ------------------------------------------------------------------------------------


def member_addresses(count: int) -> list[str]:
    """The list's member addresses; the first one posts."""
    return [f"member{i:02d}@{MEMBER_DOMAIN}" for i in range(count)]


def post(poster: str, number: int, size: int) -> tuple[str, bytes]:
    """A plain-text post of about ``size`` bytes with a unique Message-ID."""
    message_id = f"<{uuid.uuid4().hex}@bench.client>"
    head = (
        f"From: Bench Poster <{poster}>\r\n"
        f"To: {LIST_ADDRESS}\r\n"
        f"Subject: Quarterly figures, part {number}\r\n"
        f"Message-ID: {message_id}\r\n"
        f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
    ).encode()
    line = b"Figures of the quarter for the regional offices, as agreed at the last meeting.\r\n"
    body = line * max(1, (size - len(head)) // len(line))
    return message_id, head + body


@dataclass
class ClientLog:
    """What one client thread saw: Message-ID → monotonic time of the LMTP 250."""

    accepted: dict[str, float] = field(default_factory=dict)
    error: BaseException | None = None


def client(
    port: int,
    posts: list[tuple[int, str, bytes]],
    sender: str,
    start: threading.Barrier,
    pace: Pace,
    log: ClientLog,
) -> None:
    """Deliver ``posts`` over one LMTP connection, as Postfix's lmtp client would."""
    try:
        with smtplib.LMTP("127.0.0.1", port, timeout=120) as lmtp:
            lmtp.ehlo_or_helo_if_needed()
            start.wait()
            for number, message_id, data in posts:
                pace.wait_for(number)
                refused = lmtp.sendmail(sender, [LIST_ADDRESS], data)
                if refused:
                    raise PeerError(f"LMTP refused {message_id}: {refused}")
                log.accepted[message_id] = time.monotonic()
    except BaseException as exc:
        log.error = exc
        with contextlib.suppress(threading.BrokenBarrierError):
            start.abort()


@dataclass
class Pace:
    """When post number n may be sent: at once (rate 0), or n / rate seconds after the start."""

    rate: float
    began: float = 0.0

    def start(self) -> None:
        """Note the start (run by the barrier when every client is connected)."""
        self.began = time.monotonic()

    def wait_for(self, number: int) -> None:
        """Sleep until post ``number`` is due."""
        if self.rate > 0:
            time.sleep(max(0.0, self.began + number / self.rate - time.monotonic()))


def reference_cpu_ms() -> float:
    """CPU ms this process spends on a fixed loop (the median of five)."""
    times = []
    for _ in range(5):
        began = time.process_time()
        total = 0
        for number in range(REFERENCE_LOOP):
            total += number
        times.append((time.process_time() - began) * 1000)
    return sorted(times)[2]


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile of ``values`` (``share`` in 0..1)."""
    ordered = sorted(values)
    rank = max(1, round(share * len(ordered) + 0.4999999))
    return ordered[min(rank, len(ordered)) - 1]


def run(
    n_posts: int = 800,
    clients: int = 8,
    size: int = 10_000,
    members: int = 10,
    *,
    venv: Path | None = None,
    timeout_s: float = 600.0,
    keep: bool = False,
    rate: float = 0.0,
) -> MailmanResult:
    """Install (or reuse) Mailman, run the load once, stop it and return the figures.

    With ``rate`` 0 the clients send as fast as Mailman's LMTP runner answers, so a post's
    latency is mostly its wait in Mailman's queues behind the posts sent before it; a ``rate``
    (posts a second, in all) below what Mailman can process shows the latency of a steady load.
    """
    if n_posts < 1 or clients < 1 or members < 1:
        raise ValueError("n_posts, clients and members must be at least 1")
    venv = venv or setup()
    version = mailman_version(venv)
    directory = Path(tempfile.mkdtemp(prefix="mailman-peer-"))
    addresses = member_addresses(members)
    sink = DeliverySink(members)
    mailman: Mailman | None = None
    try:
        with running_sink(sink) as smtp_port:
            mailman = Mailman(venv, directory, lmtp_port=free_port(), smtp_port=smtp_port)
            mailman.cli("create", "--quiet", LIST_ADDRESS)
            mailman.cli(
                "addmembers", "--no-welcome-msg", "-", LIST_ADDRESS, stdin="\n".join(addresses)
            )
            master = mailman.start()
            return _measure(
                mailman,
                master,
                sink,
                addresses[0],
                n_posts,
                clients,
                size,
                timeout_s,
                version,
                rate,
            )
    finally:
        if mailman is not None:
            mailman.stop()
        if keep:
            print(f"kept {directory}", file=sys.stderr)
        else:
            shutil.rmtree(directory, ignore_errors=True)


def _measure(
    mailman: Mailman,
    master: int,
    sink: DeliverySink,
    poster: str,
    n_posts: int,
    clients: int,
    size: int,
    timeout_s: float,
    version: str,
    rate: float,
) -> MailmanResult:
    batches: list[list[tuple[int, str, bytes]]] = [[] for _ in range(clients)]
    for number in range(n_posts):
        batches[number % clients].append((number, *post(poster, number, size)))
    sink.watch({message_id for batch in batches for _, message_id, _ in batch})
    logs = [ClientLog() for _ in batches]
    pace = Pace(rate)
    start = threading.Barrier(clients + 1, action=pace.start)
    threads = [
        threading.Thread(
            target=client,
            args=(mailman.lmtp_port, batch, poster, start, pace, log),
            name=f"lmtp-{i}",
            daemon=True,
        )
        for i, (batch, log) in enumerate(zip(batches, logs, strict=True))
    ]
    # What the idle runners spend polling their queues (each wakes once a second), to judge
    # how much of the CPU a post is that rather than the post's own work.
    idle = usage(master)
    time.sleep(IDLE_WINDOW)
    before = usage(master)
    idle_ms_per_s = (before.cpu_s - idle.cpu_s) * 1000 / IDLE_WINDOW
    transactions_before = sink.transactions
    reference_before = reference_cpu_ms()
    for thread in threads:
        thread.start()
    try:
        start.wait(30)
    except threading.BrokenBarrierError:
        errors = [log.error for log in logs if log.error is not None]
        raise PeerError(
            f"LMTP clients could not connect: {errors[:1]}{mailman.log_tail()}"
        ) from None
    began = pace.began
    deadline = began + timeout_s
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    errors = [log.error for log in logs if log.error is not None]
    if errors or any(thread.is_alive() for thread in threads):
        raise PeerError(f"LMTP sending failed: {errors[:1] or 'timed out'}{mailman.log_tail()}")
    if not sink.wait_all(n_posts, deadline):
        raise PeerError(
            f"{len(sink.delivered)} of {n_posts} posts delivered to all members in "
            f"{timeout_s:.0f} s{mailman.log_tail()}"
        )
    after = usage(master)
    reference_after = reference_cpu_ms()
    accepted = {mid: at for log in logs for mid, at in log.accepted.items()}
    latencies = [sink.delivered[mid] - at for mid, at in accepted.items()]
    elapsed = max(sink.delivered.values()) - began
    spent_before = before.cpu_by_name()
    by_runner = {
        name: (cpu - spent_before.get(name, 0.0)) * 1000 / n_posts
        for name, cpu in sorted(after.cpu_by_name().items())
    }
    return MailmanResult(
        posts_per_s=n_posts / elapsed,
        cpu_ms_per_post=(after.cpu_s - before.cpu_s) * 1000 / n_posts,
        p50_s=percentile(latencies, 0.50),
        p99_s=percentile(latencies, 0.99),
        peak_rss_mib=sum(after.rss_kib) / 1024,
        n_posts=n_posts,
        largest_rss_mib=max(after.rss_kib, default=0) / 1024,
        processes=len(after.rss_kib),
        elapsed_s=elapsed,
        version=version,
        cpu_ms_by_runner=by_runner,
        idle_cpu_ms_per_s=idle_ms_per_s,
        accepted_per_s=n_posts / max(1e-9, max(accepted.values()) - began),
        smtp_transactions=sink.transactions - transactions_before,
        load_average=os.getloadavg()[0],
        rate=rate,
        reference_cpu_ms=(reference_before, reference_after),
    )


# --- Command line --------------------------------------------------------------------------------


def format_table(result: MailmanResult) -> str:
    """The result as a short table."""
    rows = [
        ("Mailman", result.version),
        ("posts", f"{result.n_posts}" + (f" at {result.rate:g}/s" if result.rate else "")),
        ("posts/s", f"{result.posts_per_s:.1f}"),
        ("LMTP accepted/s", f"{result.accepted_per_s:.1f}"),
        ("CPU ms/post", f"{result.cpu_ms_per_post:.1f}"),
        ("latency p50 s", f"{result.p50_s:.2f}"),
        ("latency p99 s", f"{result.p99_s:.2f}"),
        ("peak RSS MiB", f"{result.peak_rss_mib:.0f} ({result.processes} processes)"),
        ("largest process MiB", f"{result.largest_rss_mib:.0f}"),
        ("elapsed s", f"{result.elapsed_s:.1f}"),
        ("SMTP transactions", f"{result.smtp_transactions}"),
        ("idle runners CPU ms/s", f"{result.idle_cpu_ms_per_s:.1f}"),
        ("load average (1 min)", f"{result.load_average:.1f} on {os.cpu_count()} cores"),
        ("reference loop CPU ms", "{:.0f} before, {:.0f} after".format(*result.reference_cpu_ms)),
    ]
    busiest = sorted(result.cpu_ms_by_runner.items(), key=lambda item: -item[1])
    rows.append(("CPU ms/post by runner", ", ".join(f"{n} {ms:.1f}" for n, ms in busiest)))
    width = max(len(name) for name, _ in rows)
    return "".join(f"{name:<{width}}  {value}\n" for name, value in rows)


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [_rounded(item) for item in value]
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Install Mailman if needed, run the load once and print the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.mailman_peer", description=__doc__)
    parser.add_argument("--posts", type=int, default=800, help="posts in all (default 800)")
    parser.add_argument("--clients", type=int, default=8, help="LMTP connections (default 8)")
    parser.add_argument("--size", type=int, default=10_000, help="post size, bytes (10,000)")
    parser.add_argument("--members", type=int, default=10, help="list members (default 10)")
    parser.add_argument("--build", type=Path, default=ROOT / "build", help="where the venv goes")
    parser.add_argument("--timeout", type=float, default=600.0, help="cap on the load, seconds")
    parser.add_argument(
        "--rate", type=float, default=0.0, help="posts/s in all, steady (default 0: at once)"
    )
    parser.add_argument("--keep", action="store_true", help="keep Mailman's directory")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    try:
        result = run(
            args.posts,
            args.clients,
            args.size,
            args.members,
            venv=setup(args.build),
            timeout_s=args.timeout,
            keep=args.keep,
            rate=args.rate,
        )
    except PeerError as exc:
        print(f"mailman_peer: {exc}", file=sys.stderr)
        return 1
    print(
        json.dumps(_rounded(asdict(result))) if args.json else format_table(result),
        end="\n" if args.json else "",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
