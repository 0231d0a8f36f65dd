"""Measures how long the scheduled jobs hold the database's writer when a daemon starts with a
large backlog, and how long a small write (a login's, the gateway's) waits meanwhile.

``python -m bench.startup_jobs`` builds a scratch SQLite database (``--postgresql``: a temporary
schema in ``$YIZHAN_TEST_PG``'s database) with bench.admin_pages' 10,000 people and 100,000
documents, of which a fifth wait on a step, most of them days overdue; ``--due`` (2,000) of
those steps are due for their reminder (each sends three or four mails). It runs every job once
as a daemon's start-up does (``jobs.table.run_due_jobs``) at 13:35 on a Monday, when the day's
and the week's slots and everyone's 13:30 digest window have come. It prints, per job, how many
writing transactions it committed (snapshot reads not counted), the longest one and its total
time, and the longest wait of a one-row write transaction made every 50 ms by another thread
meanwhile (on SQLite it takes its turn through WriterTurns as the gateway's writes do).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
import threading
import time
import zoneinfo
from collections import defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import event, text

from bench.admin_pages import _database, fill
from yizhan.daemon.config import parse_config
from yizhan.daemon.context import Context
from yizhan.daemon.jobs.slots import work_calendar
from yizhan.daemon.jobs.table import JOBS
from yizhan.mailstore.db import SNAPSHOT, upgrade

DOMAIN = "oa.example"
#: A Monday, 13:35 in the bureau's time zone: the daily and weekly 09:00 slots and the 13:30
#: digest window have come.
NOW = dt.datetime(2026, 12, 7, 13, 35, tzinfo=zoneinfo.ZoneInfo("Asia/Shanghai"))


class Transactions:
    """Times every writing transaction on the engine, from BEGIN to the end of COMMIT or
    ROLLBACK."""

    def __init__(self, ctx: Context) -> None:
        self.started: dict[int, float] = {}
        self.lengths: list[float] = []
        self.job = threading.local()
        engine = ctx.engine

        @event.listens_for(engine, "begin")
        def begun(connection: Any) -> None:
            # A snapshot read takes no writer's turn (mailstore.db.SNAPSHOT): not counted.
            if not connection.get_execution_options().get(SNAPSHOT):
                self.started[id(connection)] = time.perf_counter()

        for name in ("commit", "rollback"):

            @event.listens_for(engine, name)
            def ended(connection: Any) -> None:
                start = self.started.pop(id(connection), None)
                if start is not None and getattr(self.job, "on", False):
                    self.lengths.append(time.perf_counter() - start)


class Probe(threading.Thread):
    """Another writer: a one-row write transaction every 50 ms; records how long each took."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(daemon=True)
        self.ctx = ctx
        self.stop = threading.Event()
        #: (when it began, how long it took)
        self.waits: list[tuple[float, float]] = []

    def run(self) -> None:
        while not self.stop.wait(0.05):
            start = time.perf_counter()
            with self.ctx.sessions.begin() as session:
                session.execute(text("UPDATE directory_version SET version = version WHERE id = 1"))
            self.waits.append((start, time.perf_counter() - start))

    def longest(self, since: float, until: float) -> float:
        """The longest write begun between ``since`` and ``until``."""
        return max((w for s, w in self.waits if since <= s < until), default=0.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=2_000)
    parser.add_argument("--postgresql", action="store_true")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="yzbench"))
    try:
        with _database(args.postgresql, tmp, None) as url:
            config = parse_config(
                {
                    "yizhan": {
                        "data_dir": str(tmp / "var"),
                        "secret": "bench-secret-0123456789",
                        "domain": DOMAIN,
                    },
                    "database": {"url": url},
                    "signing": {"gnupg_home": str(tmp / "g")},
                }
            )
            ctx = Context.open(config)
            upgrade(ctx.engine)
            ctx.keyring.ensure_system_key(DOMAIN)
            started = time.perf_counter()
            fill(ctx, args.people, args.documents, NOW.astimezone(dt.UTC))
            with ctx.engine.begin() as conn:
                conn.execute(
                    text(
                        "UPDATE steps SET next_reminder_at = due_at WHERE id IN (SELECT id "
                        "FROM steps WHERE state = 'waiting' ORDER BY id LIMIT :due)"
                    ),
                    {"due": args.due},
                )
                due = conn.execute(
                    text("SELECT count(*) FROM steps WHERE next_reminder_at IS NOT NULL")
                ).scalar()
            print(
                f"filled {args.people} people, {args.documents} documents, {due} steps due for "
                f"a reminder, in {time.perf_counter() - started:.0f} s "
                f"({ctx.engine.dialect.name})",
                flush=True,
            )
            ctx.clock = lambda: NOW.astimezone(dt.UTC)
            calendar = work_calendar(ctx)
            transactions = Transactions(ctx)
            probe = Probe(ctx)
            probe.start()
            runs = []
            for job in JOBS:
                transactions.lengths = []
                transactions.job.on = True
                start = time.perf_counter()
                queued = job.run(ctx, NOW.astimezone(dt.UTC), calendar)
                end = time.perf_counter()
                transactions.job.on = False
                lengths = transactions.lengths
                runs.append((job.name, queued, len(lengths), max(lengths, default=0.0), start, end))
            time.sleep(0.5)
            probe.stop.set()
            probe.join()
            rows = [
                (name, queued, count, longest, end - start, probe.longest(start, end))
                for name, queued, count, longest, start, end in runs
            ]
            print(
                f"{'job':<24} {'mails':>6} {'txns':>6} {'longest s':>10} {'total s':>8} "
                f"{'other writer waited s':>22}"
            )
            totals: dict[str, float] = defaultdict(float)
            for name, queued, count, longest, took, waited in rows:
                totals["took"] += took
                totals["longest"] = max(totals["longest"], longest)
                totals["waited"] = max(totals["waited"], waited)
                print(
                    f"{name:<24} {queued:>6} {count:>6} {longest:>10.2f} {took:>8.2f} "
                    f"{waited:>22.2f}"
                )
            print(
                f"all jobs {totals['took']:.1f} s; longest transaction {totals['longest']:.2f} s; "
                f"longest wait of another writer {totals['waited']:.2f} s"
            )
            ctx.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
