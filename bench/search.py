"""Times SEARCH over a million documents: two-character Chinese words, p50 and p95 per database.

``python -m bench.search`` (``make bench-search``) generates a corpus (default 1,000,000
documents) into a scratch database migrated like production, on SQLite and on PostgreSQL (a
schema of its own in ``$YIZHAN_TEST_PG``'s database), then times ``Finder.find``, the function
the SEARCH command (and ziliao@'s) calls, for two-character words that are common, middling
and rare, as two people: the office's clerk, who sees every document, and a unit's clerk, who
is on their unit's twentieth of them. Target: p95 under 50 ms.

The corpus: titles and short bodies built from the two-character words of the regulations
(``/work/shared/seed/regulations.txt``, or the demo's rules text), drawn with a Zipf-like
frequency so that a few words are in a large share of the documents and most in few; one
document in a hundred a bulletin, each with a done review step. Rows are written in bulk
(``index_rows`` gives the same index rows ``index_document`` writes), then ANALYZEd.

``--keep DIR`` keeps the SQLite file in DIR, and the PostgreSQL schema, and uses them again
when run with the same ``--documents``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import math
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, func, insert, select, text

from yizhan.daemon import heap
from yizhan.daemon.config import parse_config
from yizhan.daemon.context import Context
from yizhan.daemon.desk.search import Finder
from yizhan.mailstore.db import upgrade
from yizhan.mailstore.directory import import_directory, load_directory
from yizhan.mailstore.models import Account, Document, Person, Role, SearchPosting, Step, Unit
from yizhan.mailstore.search import index_rows
from yizhan.routing.directory import parse_org
from yizhan.routing.search import fold

SEED_TEXT = Path("/work/shared/seed/regulations.txt")
UNITS = 20
KINDS = ("qianbao", "fawen", "hanjian", "shouwen")
ENDINGS = ("通知", "請示", "報告", "批復", "意見")
#: Documents generated and written at a time.
CHUNK = 20_000
#: Words of each class timed.
PER_CLASS = 12
#: Columns of the table printed (negative: right-aligned).
WIDTHS = (11, 10, 10, -5, -9, -9, -9, -9)
#: The two people searching: the office's clerk (every document) and one unit's clerk.
VIEWERS = (("office", "wangfang"), ("one unit", "clerk07"))


def _demo_org() -> dict[str, Any]:
    import tomllib
    from importlib import resources

    return tomllib.loads((resources.files("yizhan.demo") / "bureau.toml").read_text("utf-8"))


def vocabulary() -> list[str]:
    """The character pairs of the seed text, most frequent first (辦公, 系統, 文件 …): the
    order of their Zipf rank."""
    if SEED_TEXT.exists():
        source = SEED_TEXT.read_text("utf-8")
    else:
        from importlib import resources

        source = "".join(
            f.read_text("utf-8")
            for f in (resources.files("yizhan.demo")).iterdir()
            if f.name.endswith((".toml", ".txt", ".md"))
        )
    pairs: Counter[str] = Counter()
    for run in re.findall("[\u4e00-\u9fff]+", source):
        pairs.update(run[i : i + 2] for i in range(len(run) - 1))
    return sorted(pairs, key=lambda w: (-pairs[w], w))


class Corpus:
    """Draws titles and bodies; word ``r`` (from 0) is drawn with weight 1 / (r + 1)."""

    def __init__(self, words: list[str]) -> None:
        self.words = words
        weights = [1 / (r + 1) ** 1.05 for r in range(len(words))]
        total = sum(weights)
        self.cumulative = []
        running = 0.0
        for w in weights:
            running += w / total
            self.cumulative.append(running)

    def draw(self, rng: random.Random, k: int) -> list[str]:
        """``k`` words."""
        return rng.choices(self.words, cum_weights=self.cumulative, k=k)

    def title(self, rng: random.Random) -> str:
        """A title: 關於 …… 的通知."""
        return f"關於{''.join(self.draw(rng, rng.randint(2, 4)))}的{rng.choice(ENDINGS)}"

    def body(self, rng: random.Random) -> str:
        """A short body: a few clauses of words."""
        clauses = ["".join(self.draw(rng, rng.randint(3, 5))) for _ in range(rng.randint(2, 4))]
        return "，".join(clauses) + "。"

    def queries(self) -> dict[str, list[str]]:
        """The words timed: the most common, some of middling rank, the rarest."""
        v = len(self.words)
        middle = v // 8
        return {
            "common": self.words[:PER_CLASS],
            "middling": self.words[middle : middle + PER_CLASS],
            "rare": self.words[v - PER_CLASS :],
        }


# -- the database ----------------------------------------------------------------------------


@contextmanager
def database(db: str, documents: int, keep: Path | None, tmp: Path) -> Iterator[tuple[str, bool]]:
    """The URL of the database to fill (or, kept, filled already), and whether it is filled."""
    if db == "sqlite":
        path = (keep or tmp) / f"search-{documents}.db"
        yield f"sqlite:///{path}", path.exists()
        return
    base = os.environ.get("YIZHAN_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    schema = f"bench_search_{documents}" if keep else f"bench_search_tmp_{os.getpid()}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        there = conn.scalar(
            text("SELECT count(*) FROM pg_namespace WHERE nspname = :s"), {"s": schema}
        )
        if not there:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{base}?options=-csearch_path%3D{schema}", bool(there)
    finally:
        if keep is None:
            with admin.connect() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def fill(ctx: Context, corpus: Corpus, documents: int, now: dt.datetime) -> None:
    """The demo bureau, twenty units with a clerk and a head each, and ``documents``."""
    engine = ctx.engine
    with ctx.sessions.begin() as session:
        import_directory(session, parse_org(_demo_org()), actor="bench", now=now)
    units = [
        {"id": f"u{n:02d}", "name": f"第{n}科", "kind": "department", "parent_id": "bureau"}
        for n in range(UNITS)
    ]
    people = [
        {"account": f"{role}{n:02d}", "name": f"{role}{n}", "unit_id": f"u{n:02d}"}
        for n in range(UNITS)
        for role in ("clerk", "unit_head")
    ]
    with engine.begin() as conn:
        conn.execute(insert(Unit), units)
        conn.execute(insert(Person), people)
        conn.execute(
            insert(Account),
            [
                {
                    "account": p["account"],
                    "state": "active",
                    "password_temporary": True,
                    "failed_logins": 0,
                    "created_at": now,
                }
                for p in people
            ],
        )
        conn.execute(
            insert(Role),
            [
                {
                    "account": p["account"],
                    "role": "clerk" if "clerk" in p["account"] else "unit_head",
                }
                for p in people
            ],
        )
    rng = random.Random(1_000_000)
    postgresql = engine.dialect.name == "postgresql"
    if postgresql:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE search_postings DROP CONSTRAINT pk_search_postings"))
    started = time.perf_counter()
    for start in range(1, documents + 1, CHUNK):
        docs, steps, texts, postings = [], [], [], []
        for n in range(start, min(start + CHUNK, documents + 1)):
            unit = n % UNITS
            created = now - dt.timedelta(minutes=documents - n)
            bulletin = n % 100 == 0
            title, body = corpus.title(rng), corpus.body(rng)
            fields: dict[str, Any] = {"body": body}
            if bulletin:
                fields |= {
                    "published_at": created.isoformat(),
                    "expires": "2099-12-31",
                    "recipients": [f"clerk{u:02d}" for u in rng.sample(range(UNITS), 3)],
                }
            docs.append(
                {
                    "id": n,
                    "kind": "gonggao" if bulletin else rng.choice(KINDS),
                    "title": title,
                    "state": "closed",
                    "author": "wangfang" if bulletin else f"clerk{unit:02d}",
                    "unit_id": "office" if bulletin else f"u{unit:02d}",
                    "version": 1,
                    "fields": fields,
                    "created_at": created,
                    "updated_at": created,
                }
            )
            steps.append(
                {
                    "document_id": n,
                    "name": "review",
                    "assignee": f"unit_head{unit:02d}",
                    "unit": None,
                    "action": "approve",
                    "state": "done",
                    "created_at": created,
                    "due_at": created + dt.timedelta(days=2),
                    "done_at": created + dt.timedelta(hours=5),
                    "done_by": f"unit_head{unit:02d}",
                    "reminders_sent": 0,
                    "escalation": 0,
                }
            )
            t, p = index_rows(n, {"title": title, "body": body, "attachment": ""})
            texts.extend(t)
            postings.extend(p)
        with engine.begin() as conn:
            conn.execute(insert(Document), docs)
            conn.execute(insert(Step), steps)
            _bulk(conn, "search_texts", ("document_id", "field", "text"), texts)
            _bulk(
                conn,
                "search_postings",
                ("gram", "document_id", "in_title", "in_body", "in_attachment"),
                postings,
            )
        done = min(start + CHUNK - 1, documents)
        if done % 100_000 < CHUNK or done == documents:
            print(f"  {done:,} documents, {time.perf_counter() - started:.0f} s", flush=True)
    with engine.begin() as conn:
        if postgresql:
            conn.execute(text("SET maintenance_work_mem = '1GB'"))
            conn.execute(
                text(
                    "ALTER TABLE search_postings ADD CONSTRAINT pk_search_postings PRIMARY KEY "
                    "(gram, document_id) INCLUDE (in_title, in_body, in_attachment)"
                )
            )
            conn.execute(
                text("SELECT setval(pg_get_serial_sequence('documents', 'id'), :n)"),
                {"n": documents},
            )
    # VACUUM: PostgreSQL's index-only scans need the visibility map; both need statistics.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE" if postgresql else "ANALYZE"))


def _bulk(conn: Any, table: str, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    """Rows written through the driver: COPY on PostgreSQL, executemany on SQLite."""
    raw = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        buffer = io.StringIO()
        for row in rows:
            buffer.write(
                "\t".join(
                    str(row[c]).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
                    for c in columns
                )
            )
            buffer.write("\n")
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            copy.write(buffer.getvalue())
        return
    cursor = raw.cursor()
    cursor.executemany(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
        [tuple(row[c] for c in columns) for row in rows],
    )


# -- timing ----------------------------------------------------------------------------------


def percentile(times: list[float], share: float) -> float:
    """The ``share`` percentile of ``times`` (nearest rank)."""
    ordered = sorted(times)
    return ordered[max(0, math.ceil(len(ordered) * share) - 1)]


def measure(
    ctx: Context, corpus: Corpus, runs: int
) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """Milliseconds of each ``Finder.find`` by (viewer, class), after one warm-up pass: the
    wall clock's, and this process's CPU (SQLite's work, not PostgreSQL's server's)."""
    finder = Finder(ctx)
    with ctx.sessions() as session:
        directory = load_directory(session)
        for cls, words in corpus.queries().items():
            held = [
                session.scalar(select(func.count()).where(SearchPosting.gram == fold(w)))
                for w in words
            ]
            print(
                f"  {cls:<9} words {' '.join(words)}: in {min(held):,}–{max(held):,} documents",
                flush=True,
            )
    heap.settle()  # as a processing worker does once started
    times: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for run in range(runs + 1):
        for name, account in VIEWERS:
            for cls, words in corpus.queries().items():
                for word in words:
                    with ctx.sessions() as session:
                        started, cpu = time.perf_counter(), time.process_time()
                        found = finder.find(session, account, word, directory)
                        took = (time.perf_counter() - started) * 1000
                        used = (time.process_time() - cpu) * 1000
                        session.rollback()
                    if run:
                        times.setdefault((name, cls), []).append((took, used))
                    elif not found.hits and cls != "rare":
                        print(f"  (no hits for {word} as {name})", flush=True)
    return times


def run_one(db: str, documents: int, runs: int, keep: Path | None) -> list[float]:
    """Fill (unless kept) and time one database; prints its table, returns every time."""
    corpus = Corpus(vocabulary())
    tmp = Path(tempfile.mkdtemp(prefix="yzsearch"))
    try:
        with database(db, documents, keep, tmp) as (url, filled):
            config = parse_config(
                {
                    "yizhan": {"data_dir": str(tmp / "var"), "secret": "bench-secret-0123456789"},
                    "database": {"url": url},
                    "signing": {"gnupg_home": str(tmp / "g")},
                }
            )
            ctx = Context.open(config)
            if filled:
                print(f"{db}: using the kept database ({documents:,} documents)", flush=True)
            else:
                upgrade(ctx.engine)
                started = time.perf_counter()
                print(f"{db}: generating {documents:,} documents", flush=True)
                fill(ctx, corpus, documents, dt.datetime.now(dt.UTC))
                print(
                    f"{db}: generated and indexed in {time.perf_counter() - started:.0f} s; "
                    f"{_size(ctx.engine, url)}",
                    flush=True,
                )
            times = measure(ctx, corpus, runs)
            ctx.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    every: list[tuple[float, float]] = []
    head = ("", "viewer", "words", "n", "p50 ms", "p95 ms", "CPU p50", "CPU p95")
    print(
        "".join(f"{h:<{w}}" if w > 0 else f"{h:>{-w}}" for h, w in zip(head, WIDTHS, strict=True))
    )
    for (viewer, cls), values in times.items():
        every.extend(values)
        print(f"{db:<11}{viewer:<10}{cls:<10}" + _figures(values))
    print(f"{db:<11}{'all':<20}" + _figures(every), flush=True)
    return [wall for wall, _ in every]


def _figures(values: list[tuple[float, float]]) -> str:
    walls = [wall for wall, _ in values]
    cpus = [cpu for _, cpu in values]
    return (
        f"{len(values):>5}{statistics.median(walls):>9.1f}{percentile(walls, 0.95):>9.1f}"
        f"{statistics.median(cpus):>9.1f}{percentile(cpus, 0.95):>9.1f}"
    )


def _size(engine: Engine, url: str) -> str:
    if engine.dialect.name == "sqlite":
        path = Path(url.removeprefix("sqlite:///"))
        return f"database {path.stat().st_size / 2**30:.1f} GiB"
    with engine.connect() as conn:
        size = conn.scalar(
            text(
                "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relkind = 'r'"
            )
        )
        postings = conn.scalar(text("SELECT pg_total_relation_size('search_postings')"))
    return f"schema {int(size or 0) / 2**30:.1f} GiB, postings {int(postings or 0) / 2**30:.1f} GiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=1_000_000)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--runs", type=int, default=3, help="timed passes over the words")
    parser.add_argument("--keep", type=Path, help="keep (and reuse) the generated databases")
    args = parser.parse_args(argv)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    print(
        f"bench.search {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, "
        f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        flush=True,
    )
    worst = 0.0
    for db in ("sqlite", "postgresql") if args.db == "both" else (args.db,):
        every = run_one(db, args.documents, args.runs, args.keep)
        worst = max(worst, percentile(every, 0.95))
        print(flush=True)
    print(f"worst p95: {worst:.1f} ms (target < 50 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
