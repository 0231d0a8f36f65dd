"""The whole daemon under load: Yizhan against a bare fsyncing sink (and GNU Mailman 3).

``python -m bench.e2e`` starts ``yizhan serve`` as a subprocess, on SQLite and on PostgreSQL (a
schema of its own in the ``test`` database), with its replies relayed to a recording SMTP sink
on loopback and no IMAP, then sends ``--commands`` HELP commands (10 KB, unique Message-IDs)
to cmd@ from ``--clients`` authenticated persistent SMTP connections, as fast as the daemon
answers 250. It prints, for each database:

* accepted/s: commands acknowledged (250) per second while the processor runs, next to the bare
  fsyncing aiosmtpd sink's rate under the same clients in the same run (``bench.accept``), and
  their ratio (target ≥ 0.8);
* answered/s: commands whose signed answer reached the sink, per second from the first send to
  the last answer (target ≥ 10× Mailman's posts/s when ``--mailman`` runs it beside);
* CPU per command: the daemon's user and system time while the clock ran, with its children
  (processing workers, gpg) and the gpg-agent of its key ring; and ("daemon") the daemon's
  process alone, whose interpreter the gateway shares with whatever else runs there;
* latency from a command's 250 to its answer at the sink, p50 and p99;
* peak RSS of the daemon and its processing workers (VmHWM of each, added), and the peak of
  their proportional set size added (PSS, sampled: shared pages counted once; ``bench.memory``);
  ``--memory`` prints each process's figures.

Every command must be answered exactly once; the run fails (exit 1) if one is missing or doubled.
"""

from __future__ import annotations

import argparse
import email.utils
import json
import os
import re
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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from aiosmtpd.controller import Controller

from bench import accept
from bench.memory import MemorySampler
from bench.stages import print_stages, stage_latencies

DOMAIN: Final = "oa.example"
PASSWORD: Final = "Qingshui-River-88"
ROOT: Final = Path(__file__).resolve().parent.parent
PG_BASE: Final = os.environ.get(
    "YIZHAN_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK")
_IN_REPLY_TO: Final = re.compile(rb"^In-Reply-To:\s*(<[^>\r\n]+>)", re.MULTILINE | re.IGNORECASE)


# --- The answers' sink ------------------------------------------------------------------------


class AnswerSink:
    """Records when each answer arrives, by the Message-ID it answers (In-Reply-To)."""

    def __init__(self) -> None:
        self.arrivals: dict[str, list[float]] = {}
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.total = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.monotonic()
        match = _IN_REPLY_TO.search(envelope.content)
        with self.changed:
            if match:
                self.arrivals.setdefault(match.group(1).decode(), []).append(now)
            self.total += 1
            self.changed.notify_all()
        return "250 OK"

    def wait_for(self, ids: set[str], timeout: float) -> bool:
        """Wait until every id has an answer, or the time runs out."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not ids.issubset(self.arrivals):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.changed.wait(min(left, 1.0))
        return True


@contextmanager
def answer_sink() -> Iterator[tuple[AnswerSink, int]]:
    """An aiosmtpd sink on a free loopback port, in a thread of this process."""
    sink = AnswerSink()
    controller = Controller(sink, hostname="127.0.0.1", port=accept_free_port())
    controller.start()
    try:
        yield sink, controller.port
    finally:
        controller.stop()


def accept_free_port() -> int:
    """A free TCP port on loopback."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- The daemon -------------------------------------------------------------------------------


def accounts(clients: int) -> list[str]:
    """One sending account a client connection."""
    return [f"clerk{n:02d}" for n in range(clients)]


def write_setup(
    base: Path,
    *,
    database: str,
    relay_port: int,
    clients: int,
    people: int = 0,
    documents: int = 0,
    workers: int | None = None,
) -> Path:
    """Write yizhan.toml, migrate, load a unit with the clients' accounts and their passwords;
    with ``people`` or ``documents``, the demo bureau grown to that size (``bench.admin_pages``)."""
    from yizhan.daemon.config import load_config
    from yizhan.daemon.context import Context
    from yizhan.mailstore.accounts import set_password
    from yizhan.mailstore.db import upgrade
    from yizhan.mailstore.directory import import_directory
    from yizhan.routing.directory import parse_org

    config_file = base / "yizhan.toml"
    config_file.write_text(
        f"""\
[yizhan]
data_dir = "{base / "var"}"
domain = "{DOMAIN}"
secret = "bench-secret-{uuid.uuid4().hex}"

[database]
url = "{database}"

[smtp]
listen = "127.0.0.1:{accept_free_port()}"

[relay]
host = "127.0.0.1"
port = {relay_port}

[admin]
listen = "127.0.0.1:{accept_free_port()}"

[imap]
listen = ""

[log]
level = "WARNING"
"""
        + (f"\n[processing]\nworkers = {workers}\n" if workers is not None else "")
    )
    config = load_config(config_file)
    ctx = Context.open(config)
    try:
        upgrade(ctx.engine)
        org = {
            "unit": [{"id": "bureau", "name": "遼寧出入境檢驗檢疫局", "kind": "bureau"}],
            "person": [
                {
                    "account": account,
                    "name": f"文書{n}",
                    "unit": "bureau",
                    "roles": ["clerk"],
                    "email": f"{account}@bureau.example",
                }
                for n, account in enumerate(accounts(clients))
            ],
        }
        with ctx.sessions.begin() as session:
            now = ctx.clock()
            import_directory(session, parse_org(org), actor="bench", now=now)
            for account in accounts(clients):
                set_password(
                    session,
                    account,
                    PASSWORD,
                    temporary=False,
                    actor="bench",
                    now=now,
                    policy=ctx.login_policy,
                )
        ctx.keyring.ensure_system_key(DOMAIN)
        if people or documents:
            from bench.admin_pages import fill

            fill(ctx, people, documents, ctx.clock())
    finally:
        ctx.close()
    return config_file


@contextmanager
def running_daemon(
    config_file: Path, *, cpus: set[int] | None = None
) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """``yizhan serve`` with this configuration, until it has stopped; with ``cpus``, it and
    the workers it starts run on those cores only."""
    env = {**os.environ, "YIZHAN_CONFIG": str(config_file)}
    daemon = subprocess.Popen(
        [sys.executable, "-m", "yizhan", "serve"],
        cwd=config_file.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=None if cpus is None else lambda: os.sched_setaffinity(0, cpus),
    )
    try:
        assert daemon.stdout is not None
        deadline = time.monotonic() + 120
        port = 0
        while time.monotonic() < deadline:
            line = daemon.stdout.readline()
            if not line:
                break
            match = re.search(r"SMTP on [\d.]+:(\d+)", line)
            if match:
                port = int(match.group(1))
                break
        if not port:
            raise RuntimeError(f"yizhan serve did not start (exit {daemon.poll()})")
        # Keep reading its output so that it never blocks on a full pipe; BENCH_DAEMON_LOG
        # names a file to keep it in.
        threading.Thread(target=_drain, args=(daemon.stdout,), daemon=True).start()
        yield daemon, port
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()


def _drain(output: Any) -> None:
    kept = os.environ.get("BENCH_DAEMON_LOG")
    with open(kept or os.devnull, "w") as log:
        for line in output:
            log.write(line)


def cpu_seconds(pid: int, *, children: bool = True) -> float:
    """User and system time of a process and (``children``) of its waited-for children."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(fields[i]) for i in (11, 12, 13, 14)[: 4 if children else 2]) / CLOCK_TICKS


def helper_pids(marker: str, daemon: int) -> list[int]:
    """The daemon's processes besides its own: its live children (processing workers) and
    the gpg-agent of its key ring, which runs detached."""
    parents: dict[int, int] = {}
    agents = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == daemon:
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        if marker.encode() in cmdline and b"gpg-agent" in cmdline:
            agents.append(int(entry.name))
    children = [pid for pid, parent in parents.items() if parent == daemon]
    return children + agents


def children_of(pid: int) -> set[int]:
    """The live child processes of ``pid``."""
    found = set()
    for entry in Path(f"/proc/{pid}/task").iterdir():
        with suppress(OSError):
            found |= {int(c) for c in (entry / "children").read_text().split()}
    return found


def cpu_of(pids: Sequence[int]) -> float:
    total = 0.0
    for pid in pids:
        with suppress(OSError):
            total += cpu_seconds(pid)
    return total


def daemon_processes(daemon: int) -> list[tuple[int, str]]:
    """The daemon and the Python processes it spawned, for ``MemorySampler``: its processing
    workers and multiprocessing's resource tracker; not gpg, which a worker runs and waits for."""
    found = [(daemon, "daemon")]
    with suppress(OSError):
        for pid in sorted(children_of(daemon)):
            with suppress(OSError):
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                if b"resource_tracker" in cmdline:
                    found.append((pid, "tracker"))
                elif b"multiprocessing" in cmdline:
                    found.append((pid, "worker"))
    return found


# --- The clients ------------------------------------------------------------------------------


def help_command(account: str, n: int) -> tuple[str, bytes]:
    """A 10 KB HELP command to cmd@ and its Message-ID."""
    message_id = f"<{uuid.uuid4().hex}.{n}@bench.test>"
    head = (
        f"From: {account} <{account}@{DOMAIN}>\r\nTo: cmd@{DOMAIN}\r\nSubject: HELP\r\n"
        f"Date: {email.utils.formatdate()}\r\nMessage-ID: {message_id}\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHELP\r\n\r\n"
    ).encode()
    line = b"> " + b"x" * 72 + b"\r\n"
    return message_id, head + line * ((10_000 - len(head)) // len(line))


def client(
    port: int,
    account: str,
    count: int,
    start: threading.Barrier,
    acknowledged: dict[str, float],
    lock: threading.Lock,
    interval: float = 0.0,
) -> None:
    """One persistent authenticated connection sending ``count`` commands back to back, or one
    every ``interval`` seconds."""
    smtp = smtplib.SMTP("127.0.0.1", port, local_hostname="bench.test", timeout=120)
    smtp.ehlo()
    smtp.login(account, PASSWORD)
    commands = [help_command(account, n) for n in range(count)]
    start.wait()
    began = time.monotonic()
    for n, (message_id, data) in enumerate(commands):
        if interval:
            time.sleep(max(0.0, began + n * interval - time.monotonic()))
        smtp.sendmail(f"{account}@{DOMAIN}", [f"cmd@{DOMAIN}"], data)
        with lock:
            acknowledged[message_id] = time.monotonic()
    smtp.quit()


#: Commands sent and answered before the clock starts.
WARM_UP: Final = 8


def warm_up(port: int, account: str, sink: AnswerSink) -> None:
    """The first commands after a start pay for what the daemon and each processing worker
    load once (templates, catalogs, keys, the directory, gpg's agent): ``WARM_UP`` of them
    are sent and answered before the clock starts, so that the figures are the steady state's.
    """
    with smtplib.SMTP("127.0.0.1", port, local_hostname="bench.test", timeout=120) as smtp:
        smtp.login(account, PASSWORD)
        sent = set()
        for n in range(WARM_UP):
            message_id, data = help_command(account, 10_000 + n)
            smtp.sendmail(f"{account}@{DOMAIN}", [f"cmd@{DOMAIN}"], data)
            sent.add(message_id)
    sink.wait_for(sent, timeout=120)


@dataclass(frozen=True)
class Result:
    """One database's run."""

    database: str
    commands: int
    accepted_per_s: float
    sink_per_s: float
    answered_per_s: float
    cpu_ms_per_command: float
    p50_ms: float
    p99_ms: float
    peak_rss_mib: float
    answered_twice: int
    missing: int
    peak_pss_mib: float = 0.0
    #: Each process's memory figures (``MemorySampler.breakdown``).
    memory: str = ""
    #: The daemon's own process (the gateway's interpreter), without its workers and gpg.
    daemon_cpu_ms_per_command: float = 0.0

    @property
    def accept_ratio(self) -> float:
        return self.accepted_per_s / self.sink_per_s if self.sink_per_s else 0.0


def run_yizhan(
    database: str,
    url: str,
    *,
    commands: int,
    clients: int,
    base: Path,
    profile: Path | None = None,
    people: int = 0,
    documents: int = 0,
    rate: float = 0.0,
    workers: int | None = None,
    stages: bool = False,
) -> Result:
    """Start the daemon on ``url``, load it, measure, stop it; with ``profile``, py-spy
    samples the daemon (every thread, subprocesses too) while the clock runs and writes the
    folded stacks there (docs/perf.md)."""
    directory = Path(tempfile.mkdtemp(prefix=f"e2e-{database}-", dir=base))
    with answer_sink() as (sink, sink_port):
        config_file = write_setup(
            directory,
            database=url,
            relay_port=sink_port,
            clients=clients,
            people=people,
            documents=documents,
            workers=workers,
        )
        with (
            running_daemon(config_file) as (daemon, port),
            MemorySampler(lambda: daemon_processes(daemon.pid)) as memory,
        ):
            names = accounts(clients)
            warm_up(port, names[0], sink)
            acknowledged: dict[str, float] = {}
            lock = threading.Lock()
            barrier = threading.Barrier(clients + 1)
            shares = [commands // clients + (i < commands % clients) for i in range(clients)]
            threads = [
                threading.Thread(
                    target=client,
                    args=(port, names[i], shares[i], barrier, acknowledged, lock),
                    # Each client's share of the rate, the clients' starts spread over it.
                    kwargs={"interval": clients / rate if rate else 0.0},
                )
                for i in range(clients)
            ]
            for thread in threads:
                thread.start()
            barrier.wait(timeout=120)
            agents = helper_pids(str(directory), daemon.pid)
            cpu_before = cpu_seconds(daemon.pid) + cpu_of(agents)
            own_before = cpu_seconds(daemon.pid, children=False)
            started = time.monotonic()
            spy = (
                subprocess.Popen(
                    [
                        *(Path(sys.executable).parent / "py-spy", "record", "-p", str(daemon.pid)),
                        *("-o", str(profile), "-r", "250", "--gil", "--subprocesses"),
                        *("-f", "flamegraph" if profile.suffix == ".svg" else "raw"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                if profile
                else None
            )
            for thread in threads:
                thread.join()
            last_ack = max(acknowledged.values())
            sink.wait_for(set(acknowledged), timeout=600)
            with sink.lock:
                arrivals = dict(sink.arrivals)
            agents = sorted(set(agents) | set(helper_pids(str(directory), daemon.pid)))
            cpu = cpu_seconds(daemon.pid) + cpu_of(agents) - cpu_before
            # The daemon's process alone (the gateway's interpreter, shared with what else
            # runs in it), not its workers: what the gateway's accepting competes with.
            own = cpu_seconds(daemon.pid, children=False) - own_before
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(timeout=60)
    if stages:
        print_stages(database, stage_latencies(url, set(acknowledged)))
    answered = [arrivals[m][0] for m in acknowledged if m in arrivals]
    latencies = sorted(arrivals[m][0] - t for m, t in acknowledged.items() if m in arrivals)
    shutil.rmtree(directory, ignore_errors=True)
    n = len(acknowledged)
    return Result(
        database=database,
        commands=n,
        accepted_per_s=n / (last_ack - started),
        sink_per_s=0.0,
        answered_per_s=len(answered) / (max(answered) - started) if answered else 0.0,
        cpu_ms_per_command=1000 * cpu / max(len(answered), 1),
        daemon_cpu_ms_per_command=1000 * own / max(len(answered), 1),
        p50_ms=1000 * statistics.median(latencies) if latencies else 0.0,
        p99_ms=1000 * latencies[int(0.99 * (len(latencies) - 1))] if latencies else 0.0,
        # Peak of each process, added: no less than the peak of their sum.
        peak_rss_mib=memory.peak_rss_sum,
        peak_pss_mib=memory.peak_pss_sum,
        memory=memory.breakdown(),
        answered_twice=sum(1 for m in acknowledged if len(arrivals.get(m, [])) > 1),
        missing=sum(1 for m in acknowledged if m not in arrivals),
    )


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A fresh schema in the test database, dropped afterwards."""
    from sqlalchemy import create_engine, text

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    engine = create_engine(PG_BASE, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
    finally:
        with engine.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


@contextmanager
def database_url(database: str, base: Path) -> Iterator[str]:
    """A fresh SQLite file under ``base``, or a fresh schema in PostgreSQL's test database."""
    if database == "sqlite":
        (base / "sqlite").mkdir()
        yield f"sqlite:///{base / 'sqlite' / 'yizhan.db'}"
    else:
        with postgres_schema() as url:
            yield url


def sink_rate(*, commands: int, clients: int, base: Path) -> float:
    """The bare fsyncing aiosmtpd sink's accept rate under the same clients."""
    result = accept.run_once(
        "sink",
        connections=clients,
        messages=commands,
        size=10_000,
        cap=300,
        processes=1,
        base=base,
    )
    return result.rate


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.e2e", description=__doc__)
    parser.add_argument("--commands", type=int, default=800)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--db", choices=("sqlite", "postgresql", "both"), default="both", help="which databases"
    )
    parser.add_argument(
        "--people", type=int, default=0, help="grow the bureau to this many people (memory)"
    )
    parser.add_argument("--documents", type=int, default=0, help="and this many documents")
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="commands a second in all, at a steady pace (latency); 0: as fast as answered",
    )
    parser.add_argument(
        "--mailman",
        action="store_true",
        help="run GNU Mailman 3 under the same load first (bench.mailman_peer) and compare",
    )
    parser.add_argument(
        "--workers", type=int, help="[processing] workers of the daemon (default: auto)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--memory", action="store_true", help="print each process's memory figures (MiB)"
    )
    parser.add_argument(
        "--stages",
        action="store_true",
        help="print where the commands' time went, from the daemon's records (bench.stages)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="sample the daemon and its workers with py-spy (the thread holding the GIL) into "
        "PROFILE.<database>: folded stacks, or a flame graph for PROFILE.svg",
    )
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="yizhan-e2e-"))
    results: list[Result] = []
    if args.mailman:
        from bench import mailman_peer

        peer = mailman_peer.run(n_posts=args.commands, clients=args.clients, size=10_000)
        results.append(
            Result(
                database="mailman",
                commands=peer.n_posts,
                accepted_per_s=peer.accepted_per_s,
                sink_per_s=0.0,
                answered_per_s=peer.posts_per_s,
                cpu_ms_per_command=peer.cpu_ms_per_post,
                p50_ms=1000 * peer.p50_s,
                p99_ms=1000 * peer.p99_s,
                peak_rss_mib=peer.peak_rss_mib,
                answered_twice=0,
                missing=0,
            )
        )
    try:
        for database in ("sqlite", "postgresql"):
            if args.db not in (database, "both"):
                continue
            sink = sink_rate(commands=args.commands, clients=args.clients, base=base)
            with database_url(database, base) as url:
                result = run_yizhan(
                    database,
                    url,
                    commands=args.commands,
                    clients=args.clients,
                    base=base,
                    profile=args.profile and _named(args.profile, database),
                    people=args.people,
                    documents=args.documents,
                    rate=args.rate,
                    workers=args.workers,
                    stages=args.stages,
                )
            results.append(Result(**{**asdict(result), "sink_per_s": sink}))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    if args.json:
        print(json.dumps([asdict(r) | {"accept_ratio": r.accept_ratio} for r in results]))
    else:
        print_table(results)
    if args.memory:
        for r in results:
            print(f"{r.database}:\n{r.memory}")
    return 0 if all(r.missing == 0 and r.answered_twice == 0 for r in results) else 1


def _named(profile: Path, database: str) -> Path:
    """``prof.svg`` → ``prof-sqlite.svg``; ``prof`` → ``prof-sqlite``."""
    return profile.with_name(f"{profile.stem}-{database}{profile.suffix}")


def print_table(results: Sequence[Result]) -> None:
    """One line a server: Mailman's (posts to a 10-member list) first when it ran."""
    mailman = next((r.answered_per_s for r in results if r.database == "mailman"), 0.0)
    print(
        f"{'server':<19}{'accepted/s':>11}{'sink/s':>8}{'ratio':>7}{'answered/s':>12}"
        f"{'×Mailman':>9}{'CPU ms/cmd':>11}{'daemon':>7}{'p50 ms':>8}{'p99 ms':>8}{'RSS MiB':>9}"
        f"{'PSS':>5}"
        f"{'lost':>6}{'twice':>6}"
    )
    for r in results:
        name = "GNU Mailman 3" if r.database == "mailman" else f"Yizhan {r.database}"
        sink = f"{r.sink_per_s:>8.1f}{r.accept_ratio:>7.2f}" if r.sink_per_s else f"{'':>15}"
        versus = f"{r.answered_per_s / mailman:>9.2f}" if mailman else f"{'':>9}"
        print(
            f"{name:<19}{r.accepted_per_s:>11.1f}{sink}{r.answered_per_s:>12.1f}{versus}"
            f"{r.cpu_ms_per_command:>11.1f}{r.daemon_cpu_ms_per_command:>7.1f}"
            f"{r.p50_ms:>8.0f}{r.p99_ms:>8.0f}"
            f"{r.peak_rss_mib:>9.0f}{r.peak_pss_mib:>5.0f}{r.missing:>6}{r.answered_twice:>6}"
        )


if __name__ == "__main__":
    sys.exit(main())
