"""Measures one reminder sweep's claim against a million open steps, on SQLite and PostgreSQL.

``python -m bench.sweep`` builds a scratch database per backend (a temporary SQLite file; a
temporary schema in ``$YIZHAN_TEST_PG``'s database, as the tests do), migrated like production,
and fills it in two rounds: first 100,000 open steps, then up to 1,000,000. In each, 1,000 steps
are due at T0 and 9,000 more by T0 + 2 h; every other step's reminder is days ahead. It times
the sweep's database work at T0 (1,000 due) and at T0 + 2 h (10,000 due), as
``jobs.reminders.run_reminders`` does it, batch by batch (``[jobs] batch``), one transaction each:

* claim: the claim queries alone (``jobs.reminders.claim_due_steps``: an index range scan on
  ``next_reminder_at``, each batch locked with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL);
* sweep: the whole, with each claimed step's next reminder moved on and the batch committed.
  Rendering and queueing the mail, which is per reminder sent, is not included.

Each is run five times (the steps are put back in between, untimed) and the median printed.
The target: under 200 ms for 1,000 due among 1,000,000 open, on both backends, and a cost that
follows the due column, not the open one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Engine, bindparam, create_engine, text, update

from yizhan.daemon.config_ops import JobsConfig
from yizhan.daemon.jobs import reminders as scheduler
from yizhan.mailstore.db import make_engine, make_sessionmaker, upgrade
from yizhan.mailstore.models import Step

PG_BASE: Final = os.environ.get(
    "YIZHAN_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
T0: Final = dt.datetime(2026, 9, 22, 1, 0, tzinfo=dt.UTC)
DUE_NOW: Final = 1_000
DUE_LATER: Final = 9_000
LATER: Final = T0 + dt.timedelta(hours=2)
DOCUMENTS: Final = 1_000
CHUNK: Final = 50_000
REPEAT: Final = 5
#: Steps claimed per transaction, as ``[jobs] batch`` says by default.
BATCH: Final = JobsConfig().batch
STEP_COLUMNS: Final = (
    "document_id",
    "name",
    "assignee",
    "action",
    "state",
    "due_at",
    "created_at",
    "next_reminder_at",
    "reminders_sent",
    "escalation",
)


@dataclass(frozen=True, kw_only=True)
class Row:
    """One line of the result table."""

    backend: str
    open_steps: int
    due: int
    claim_ms: float
    sweep_ms: float


def _sqlite_time(moment: dt.datetime) -> str:
    # SQLAlchemy's SQLite DATETIME format, in UTC as UtcDateTime stores it.
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _rows(start: int, count: int, due_now: int, due_later: int) -> Iterator[tuple[Any, ...]]:
    """``count`` open steps: the first ``due_now`` due at T0, the next ``due_later`` by LATER,
    the rest between 1 and 30 days ahead (ids from ``start``, shuffled over documents)."""
    rng = random.Random(start)
    for n in range(count):
        if n < due_now:
            reminder = T0 - dt.timedelta(seconds=rng.randrange(3600))
        elif n < due_now + due_later:
            reminder = T0 + dt.timedelta(seconds=3600 + rng.randrange(3600))
        else:
            reminder = T0 + dt.timedelta(days=1, seconds=rng.randrange(29 * 86_400))
        yield (
            rng.randrange(DOCUMENTS) + 1,
            "review",
            f"p{(start + n) % 500}",
            "approve",
            "waiting",
            reminder + dt.timedelta(days=2),
            T0 - dt.timedelta(days=1),
            reminder,
            0,
            0,
        )


def _seed(engine: Engine) -> None:
    """One unit, one author and the documents the steps hang off (foreign keys)."""
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO units (id, name, kind) VALUES ('bureau', 'Bureau', 'bureau')")
        )
        conn.execute(
            text(
                "INSERT INTO people (account, name, unit_id) VALUES ('author', 'Author', 'bureau')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO documents (kind, title, state, author, unit_id, version, fields,"
                " created_at, updated_at) VALUES ('qianbao', :t, 'reviewing', 'author',"
                " 'bureau', 1, '{}', :now, :now)"
            ),
            [{"t": f"doc {n}", "now": T0} for n in range(DOCUMENTS)],
        )


def _fill_sqlite(engine: Engine, start: int, count: int, due_now: int, due_later: int) -> None:
    columns = ", ".join(STEP_COLUMNS)
    marks = ", ".join("?" for _ in STEP_COLUMNS)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("BEGIN")
        batch: list[tuple[Any, ...]] = []
        for row in _rows(start, count, due_now, due_later):
            batch.append(
                (
                    *row[:5],
                    _sqlite_time(row[5]),
                    _sqlite_time(row[6]),
                    _sqlite_time(row[7]),
                    *row[8:],
                )
            )
            if len(batch) == CHUNK:
                cursor.executemany(f"INSERT INTO steps ({columns}) VALUES ({marks})", batch)
                batch.clear()
        if batch:
            cursor.executemany(f"INSERT INTO steps ({columns}) VALUES ({marks})", batch)
        cursor.execute("COMMIT")
        cursor.execute("ANALYZE")
    finally:
        raw.close()


def _fill_postgresql(engine: Engine, start: int, count: int, due_now: int, due_later: int) -> None:
    raw = engine.raw_connection()
    try:
        cursor: Any = raw.cursor()
        with cursor.copy(f"COPY steps ({', '.join(STEP_COLUMNS)}) FROM STDIN") as copy:
            for row in _rows(start, count, due_now, due_later):
                copy.write_row(row)
        raw.commit()
        cursor.execute("ANALYZE steps")
        raw.commit()
    finally:
        raw.close()


def _sweep_ms(engine: Engine, now: dt.datetime) -> tuple[float, float, int]:
    """One sweep at ``now`` as ``run_reminders`` does it, without the mail: the median time of
    its claim queries, of the whole (claim, move each step on, commit, per batch), and the
    number of steps claimed. The steps are put back after each run, outside the timing."""
    sessions = make_sessionmaker(engine)
    claims, sweeps, claimed = [], [], 0
    for _ in range(REPEAT):
        saved: list[dict[str, Any]] = []
        claim = 0.0
        started = time.perf_counter()
        while True:
            with sessions.begin() as session:
                before = time.perf_counter()
                steps = scheduler.claim_due_steps(session, now=now, limit=BATCH)
                claim += time.perf_counter() - before
                for step in steps:
                    saved.append({"sid": step.id, "at": step.next_reminder_at})
                    step.next_reminder_at = now + dt.timedelta(days=1)
            if len(steps) < BATCH:
                break
        sweeps.append((time.perf_counter() - started) * 1000)
        claims.append(claim * 1000)
        claimed = len(saved)
        with engine.begin() as conn:
            conn.execute(
                update(Step)
                .where(Step.id == bindparam("sid"))
                .values(next_reminder_at=bindparam("at")),
                saved,
            )
    return statistics.median(claims), statistics.median(sweeps), claimed


def measure(
    backend: str,
    engine: Engine,
    fill: Callable[[Engine, int, int, int, int], None],
    sizes: Sequence[int],
) -> list[Row]:
    """Fill in rounds up to each size in ``sizes`` and time the sweep after each round."""
    upgrade(engine)
    _seed(engine)
    rows: list[Row] = []
    filled = 0
    for size in sizes:
        started = time.perf_counter()
        # The due steps are all in the first round; later rounds only add open steps.
        first = filled == 0
        fill(engine, filled, size - filled, DUE_NOW if first else 0, DUE_LATER if first else 0)
        print(
            f"{backend}: filled {size:,} open steps ({time.perf_counter() - started:.1f} s)",
            file=sys.stderr,
            flush=True,
        )
        filled = size
        for now, due in ((T0, DUE_NOW), (LATER, DUE_NOW + DUE_LATER)):
            claim_ms, sweep_ms, claimed = _sweep_ms(engine, now)
            assert claimed == due, (claimed, due)
            rows.append(
                Row(backend=backend, open_steps=size, due=due, claim_ms=claim_ms, sweep_ms=sweep_ms)
            )
    return rows


@contextmanager
def sqlite_engine() -> Iterator[Engine]:
    """A migrated SQLite database in a temporary directory."""
    directory = tempfile.mkdtemp(prefix="yizhan-bench-")
    engine = make_engine(f"sqlite:///{directory}/bench.db")
    try:
        yield engine
    finally:
        engine.dispose()
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def postgresql_engine() -> Iterator[Engine]:
    """A temporary schema in the test database, dropped afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_BASE, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine = make_engine(f"{PG_BASE}?options=-csearch_path%3D{schema}")
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def format_table(rows: Sequence[Row]) -> str:
    """The result table, the 200 ms target checked on the claim of 1,000 due."""
    out = io.StringIO()
    out.write(f"{'backend':<11}{'open steps':>12}{'due':>8}{'claim ms':>11}{'sweep ms':>11}\n")
    for r in rows:
        mark = ""
        if r.due == DUE_NOW:
            mark = "  claim < 200 ms: ok" if r.claim_ms < 200 else "  claim OVER 200 ms"
        out.write(
            f"{r.backend:<11}{r.open_steps:>12,}{r.due:>8,}{r.claim_ms:>11.1f}{r.sweep_ms:>11.1f}"
            f"{mark}\n"
        )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    out.write(
        f"(median of {REPEAT}; batches of {BATCH}; load average {load:.1f} "
        f"on {os.cpu_count()} CPUs)\n"
    )
    return out.getvalue()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark on the chosen backends and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.sweep", description=__doc__)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--open", type=int, default=1_000_000, help="open steps (default 1e6)")
    args = parser.parse_args(argv)
    sizes = sorted({min(100_000, args.open), args.open})
    rows: list[Row] = []
    if args.backend in ("sqlite", "both"):
        with sqlite_engine() as engine:
            rows += measure("sqlite", engine, _fill_sqlite, sizes)
    if args.backend in ("postgresql", "both"):
        with postgresql_engine() as engine:
            rows += measure("postgresql", engine, _fill_postgresql, sizes)
    print(format_table(rows), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
