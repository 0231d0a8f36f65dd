"""Measures the audit hash chain: verifying a million rows, and what sealing costs a commit.

``python -m bench.audit`` builds a scratch database per backend (a temporary SQLite file; a
temporary schema in ``$YIZHAN_TEST_PG``'s database, as the tests do), migrated like production:

* verify: ``--rows`` (1,000,000) audit rows, chained and sealed as the daemon seals them, are
  loaded in bulk; then ``auditverify.verify_database`` walks them all (streamed, one snapshot),
  timed once per run, with the rows a second it checks.
* commit: ``--commits`` (500) transactions that each write two audit rows through
  ``audit.record``, by ``--threads`` (1 and 4; SQLite only 1, its writers take turns anyway)
  threads at once, through Yizhan's session factory
  (the rows are sealed at commit, under the chain head's lock) and through a plain SQLAlchemy
  one (the rows stay unsealed: the cost without the chain). Printed: milliseconds a transaction
  (wall time / transactions).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final

from sqlalchemy import Engine, create_engine, insert, text, update
from sqlalchemy.orm import Session, sessionmaker

from yizhan.mailstore import audit, auditchain
from yizhan.mailstore.auditchain import AUDIT, GENESIS, HEAD, ChainRow
from yizhan.mailstore.auditverify import verify_database
from yizhan.mailstore.db import make_engine, make_sessionmaker, upgrade

PG_BASE: Final = os.environ.get(
    "YIZHAN_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
KEY: Final = auditchain.key_from_secret("bench-secret-0123456789") or b""
T0: Final = dt.datetime(2026, 11, 27, 1, 0, tzinfo=dt.UTC)
CHUNK: Final = 20_000
COLUMNS: Final = (
    "id",
    "at",
    "actor",
    "action",
    "target",
    "on_behalf_of",
    "detail",
    "seq",
    "prev_hash",
    "hash",
)


def _rows(count: int) -> Iterator[dict[str, Any]]:
    """``count`` audit rows like the daemon's, chained and sealed under KEY."""
    prev = GENESIS
    for n in range(1, count + 1):
        row = ChainRow(
            id=n,
            at=T0 + dt.timedelta(seconds=n),
            actor=f"p{n % 500}",
            action="doc.approve" if n % 3 else "doc.create",
            target=f"doc:{n // 7}",
            on_behalf_of=None,
            detail={"opinion": "同意，請辦公室辦理", "step": n % 5, "via": "reply"},
            seq=n,
            prev_hash=prev,
            hash=None,
        )
        digest = auditchain.row_hash(KEY, row, n, prev)
        yield {**row._asdict(), "hash": digest}
        prev = digest


def _fill(engine: Engine, count: int) -> None:
    last = GENESIS
    if engine.dialect.name == "postgresql":
        raw = engine.raw_connection()
        try:
            cursor: Any = raw.cursor()
            with cursor.copy(f"COPY audit ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for row in _rows(count):
                    copy.write_row(
                        [json.dumps(row[c]) if c == "detail" else row[c] for c in COLUMNS]
                    )
                    last = row["hash"]
            raw.commit()
            cursor.execute("ANALYZE audit")
            raw.commit()
        finally:
            raw.close()
    else:
        with engine.begin() as conn:
            batch: list[dict[str, Any]] = []
            for row in _rows(count):
                batch.append(row)
                last = row["hash"]
                if len(batch) == CHUNK:
                    conn.execute(insert(AUDIT), batch)
                    batch.clear()
            if batch:
                conn.execute(insert(AUDIT), batch)
    with engine.begin() as conn:
        conn.execute(
            update(HEAD).values(
                seq=count,
                hash=last,
                seal=auditchain.head_seal(KEY, count, last),
                key_id=auditchain.key_id(KEY),
            )
        )
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT setval('audit_id_seq', :n)"), {"n": count})


def _commits_ms(sessions: sessionmaker[Session], commits: int, threads: int) -> float:
    """Milliseconds a transaction: ``commits`` of two audit rows each, by ``threads`` threads."""
    barrier = threading.Barrier(threads)

    def work() -> None:
        barrier.wait()
        for n in range(commits // threads):
            with sessions.begin() as session:
                for step in range(2):
                    audit.record(
                        session,
                        at=T0,
                        actor="bench",
                        action="doc.approve",
                        target=f"doc:{n}",
                        detail={"step": step},
                    )

    pool = [threading.Thread(target=work) for _ in range(threads)]
    started = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return (time.perf_counter() - started) * 1000 / commits


@contextmanager
def _scratch(backend: str) -> Iterator[Engine]:
    if backend == "sqlite":
        folder = tempfile.mkdtemp(prefix="bench-audit-")
        engine = make_engine(f"sqlite:///{folder}/audit.db")
        try:
            yield engine
        finally:
            engine.dispose()
            shutil.rmtree(folder, ignore_errors=True)
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_BASE, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine = make_engine(f"{PG_BASE}?options=-csearch_path%3D{schema}", pool_size=8)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def run(
    backend: str, rows: int, commits: int, threads: Sequence[int], say: Callable[[str], None]
) -> None:
    """Print the figures of one backend."""
    with _scratch(backend) as engine:
        upgrade(engine)
        started = time.perf_counter()
        _fill(engine, rows)
        say(f"{backend}: loaded {rows} chained rows in {time.perf_counter() - started:.0f} s")
        started = time.perf_counter()
        verdict = verify_database(engine, KEY)
        took = time.perf_counter() - started
        assert verdict.ok and verdict.rows == rows, verdict.summary()
        say(f"{backend}: verify {rows} rows: {took:.1f} s ({rows / took:,.0f} rows/s)")
        sealed = make_sessionmaker(engine, audit_key=KEY)
        plain = sessionmaker(engine, expire_on_commit=False)
        for n in threads:
            if backend == "sqlite" and n > 1:
                continue
            with_chain = _commits_ms(sealed, commits, n)
            without = _commits_ms(plain, commits, n)
            say(
                f"{backend}: {n} thread(s), a transaction of 2 audit rows: {with_chain:.2f} ms "
                f"sealed, {without:.2f} ms unsealed"
            )


def main() -> None:
    """Run the benchmark on the backends asked for."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--commits", type=int, default=500)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 4])
    parser.add_argument(
        "--backend", choices=["sqlite", "postgresql"], nargs="+", default=["sqlite", "postgresql"]
    )
    args = parser.parse_args()
    for backend in args.backend:
        run(backend, args.rows, args.commits, args.threads, lambda line: print(line, flush=True))


if __name__ == "__main__":
    main()
