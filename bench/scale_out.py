"""Scale-out: one daemon against two on one PostgreSQL, in one run (issue 16, target 7).

``python -m bench.scale_out`` sets up the bench bureau of ``bench.e2e`` in a fresh PostgreSQL
schema, then runs the same load (``--commands`` HELP commands from ``--clients`` authenticated
connections, as fast as answered) twice on fresh schemas: against one ``yizhan serve``, and
against two sharing the database and the data directory, each client connected to one of them
in turn, as Postfix spreads connections over the daemons' addresses (docs/operations.md §2).
Each daemon runs ``--workers`` processing workers (default one, so that on this two-core machine
a daemon is a unit of one core for processing and the second daemon has a core to add). It
prints answered commands per second of each, their ratio (target ≥ 1.6 on a machine with enough
cores), and how many answers were lost or came twice: every command must be answered exactly
once, whichever daemon took it and whichever processed it (exit 1 otherwise). That nothing else
is done twice (numbers, steps, reminders) is the two-daemon proof's (``proofs.two_daemons``).

``--core-each`` gives each daemon (and its workers) one core of its own, the first daemon core 0
and the second core 1, PostgreSQL, the sink and the clients running where the kernel puts them:
on a two-core machine, where one unpinned daemon already keeps both cores busy, this is how the
second daemon's addition shows, a daemon being a unit of one core as on a machine with more.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from bench.e2e import (
    accept_free_port,
    accounts,
    answer_sink,
    client,
    postgres_schema,
    running_daemon,
    write_setup,
)


@dataclass(frozen=True)
class Run:
    daemons: int
    commands: int
    answered_per_s: float
    missing: int
    answered_twice: int


def second_config(first: Path) -> Path:
    """The first daemon's configuration with listeners of its own: the same database, data
    directory, secret and key ring."""
    text = first.read_text()
    lines = []
    for line in text.splitlines():
        if line.startswith("listen = ") and not line.startswith('listen = ""'):
            line = f'listen = "127.0.0.1:{accept_free_port()}"'
        lines.append(line)
    second = first.with_name("yizhan-second.toml")
    second.write_text("\n".join(lines) + "\n")
    return second


def run(
    daemons: int, *, commands: int, clients: int, workers: int, base: Path, core_each: bool
) -> Run:
    directory = Path(tempfile.mkdtemp(prefix=f"scale-{daemons}-", dir=base))
    with postgres_schema() as url, answer_sink() as (sink, sink_port), ExitStack() as stack:
        config = write_setup(directory, database=url, relay_port=sink_port, clients=clients)
        with config.open("a") as extra:
            extra.write(f"\n[processing]\nworkers = {workers}\n")
        configs = [config] + [second_config(config) for _ in range(daemons - 1)]
        ports = [
            stack.enter_context(running_daemon(c, cpus={n} if core_each else None))[1]
            for n, c in enumerate(configs)
        ]
        names = accounts(clients)
        acknowledged: dict[str, float] = {}
        lock = threading.Lock()
        barrier = threading.Barrier(clients + 1)
        shares = [commands // clients + (i < commands % clients) for i in range(clients)]
        threads = [
            threading.Thread(
                target=client,
                args=(ports[i % daemons], names[i], shares[i], barrier, acknowledged, lock),
            )
            for i in range(clients)
        ]
        for thread in threads:
            thread.start()
        barrier.wait(timeout=120)
        started = time.monotonic()
        for thread in threads:
            thread.join()
        sink.wait_for(set(acknowledged), timeout=600)
        with sink.lock:
            arrivals = dict(sink.arrivals)
    shutil.rmtree(directory, ignore_errors=True)
    answered = [arrivals[m][0] for m in acknowledged if m in arrivals]
    return Run(
        daemons=daemons,
        commands=len(acknowledged),
        answered_per_s=len(answered) / (max(answered) - started) if answered else 0.0,
        missing=sum(1 for m in acknowledged if m not in arrivals),
        answered_twice=sum(1 for m in acknowledged if len(arrivals.get(m, [])) > 1),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale_out", description=__doc__)
    parser.add_argument("--commands", type=int, default=800)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1, help="processing workers a daemon")
    parser.add_argument(
        "--core-each", action="store_true", help="each daemon and its workers on a core of its own"
    )
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="yizhan-scale-"))
    try:
        runs = [
            run(
                n,
                commands=args.commands,
                clients=args.clients,
                workers=args.workers,
                base=base,
                core_each=args.core_each,
            )
            for n in (1, 2)
        ]
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"{'daemons':<9}{'commands':>9}{'answered/s':>12}{'lost':>6}{'twice':>6}")
    for r in runs:
        print(
            f"{r.daemons:<9}{r.commands:>9}{r.answered_per_s:>12.1f}"
            f"{r.missing:>6}{r.answered_twice:>6}"
        )
    print(f"two daemons ÷ one: {runs[1].answered_per_s / runs[0].answered_per_s:.2f}")
    return 0 if all(r.missing == 0 and r.answered_twice == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
