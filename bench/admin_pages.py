"""Measures every admin page's server time with 10,000 people and 100,000 documents.

``python -m bench.admin_pages`` (``make bench-admin``) builds a scratch SQLite database
migrated like production (``--postgresql`` uses a temporary schema in ``$YIZHAN_TEST_PG``'s
database instead), loads the demo bureau plus generated units and people up to 10,000, and
100,000 documents with their steps (a fifth still waiting, some overdue), trail entries and
search index, written with bulk inserts, then ANALYZEd (VACUUM ANALYZE on PostgreSQL, as
autovacuum would have left it). It then logs in through the login form, as the office's
clerk, an IT clerk and a unit head, and requests each page ``--runs`` times in process (the
ASGI app through Starlette's test client, so the time is the server's plus a fraction of a
millisecond), printing p50 and p95 per page. Target: every page under 100 ms.

``--keep PATH`` keeps the filled database between runs (a SQLite file, or with ``--postgresql``
a schema of that name): filled on the first run, used as it is afterwards (filling takes
minutes). ``--only TEXT`` measures only the pages whose path contains TEXT.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, insert, select, text
from starlette.testclient import TestClient

from yizhan.admin.app import create_app
from yizhan.daemon import heap
from yizhan.daemon.config import parse_config
from yizhan.daemon.context import Context
from yizhan.mailstore import accounts
from yizhan.mailstore.db import upgrade
from yizhan.mailstore.directory import import_directory
from yizhan.mailstore.models import (
    Account,
    AuditEntry,
    Document,
    Person,
    Role,
    SearchPosting,
    SearchText,
    Step,
    Unit,
)
from yizhan.mailstore.search import index_rows
from yizhan.routing.directory import parse_org

PASSWORD = "Bench-pass-2026"
TOPICS = (
    "口岸檢疫",
    "冷鏈食品",
    "進口水果",
    "設備採購",
    "人員培訓",
    "安全生產",
    "信息化建設",
    "財務預算",
)
KINDS = ("qianbao", "fawen", "hanjian", "shouwen")
BATCH = 20_000


def _demo_org() -> dict[str, Any]:
    import tomllib
    from importlib import resources

    return tomllib.loads((resources.files("yizhan.demo") / "bureau.toml").read_text("utf-8"))


@contextmanager
def _database(postgresql: bool, tmp: Path, keep: str | None) -> Iterator[str]:
    """The database's URL: a scratch one, or the one ``keep`` names (left in place)."""
    if not postgresql:
        yield f"sqlite:///{Path(keep).absolute() if keep else tmp / 'bench.db'}"
        return
    base = os.environ.get("YIZHAN_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    if keep and not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", keep):
        raise SystemExit(f"--keep {keep!r}: a PostgreSQL schema name (a-z, 0-9, _)")
    schema = keep or f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
    try:
        yield f"{base}?options=-csearch_path%3D{schema}"
    finally:
        if not keep:
            with admin.connect() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def _filled(ctx: Context, people: int, documents: int) -> bool:
    """Whether the database already holds the bureau ``fill`` makes of this size."""
    with ctx.engine.connect() as conn:
        have_people = conn.scalar(select(func.count()).select_from(Person))
        have_documents = conn.scalar(select(func.count()).select_from(Document))
    if not have_people and not have_documents:
        return False
    if (have_people, have_documents) != (max(people, 33), documents):
        raise SystemExit(
            f"the kept database holds {have_people} people and {have_documents} documents, "
            f"not {people} and {documents}: remove it or name another"
        )
    return True


def _chunks(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), BATCH):
        yield rows[start : start + BATCH]


def fill(ctx: Context, people: int, documents: int, now: dt.datetime) -> None:
    """The demo bureau, then generated people and documents up to the given numbers."""
    rng = random.Random(14)
    with ctx.sessions.begin() as session:
        import_directory(session, parse_org(_demo_org()), actor="bench", now=now)
        accounts.set_password(
            session,
            "wangfang",
            PASSWORD,
            temporary=False,
            actor="bench",
            now=now,
            policy=ctx.login_policy,
        )
        hashed = accounts.get_account(session, "wangfang").password_hash
        for account in ("mali", "liangguoqiang"):
            row = accounts.get_account(session, account)
            row.password_hash, row.password_temporary, row.password_changed_at = hashed, False, now
    units = [
        {"id": f"u{n:03d}", "name": f"第{n}科", "kind": "department", "parent_id": "bureau"}
        for n in range(60)
    ]
    generated = max(0, people - 33)
    person_rows = [
        {"account": f"p{n:05d}", "name": f"員工{n}", "unit_id": units[n % len(units)]["id"]}
        for n in range(generated)
    ]
    account_rows = [
        {
            "account": p["account"],
            "state": "active",
            "password_temporary": True,
            "failed_logins": 0,
            "created_at": now,
        }
        for p in person_rows
    ]
    role_rows = [{"account": p["account"], "role": "staff"} for p in person_rows]
    authors = [p["account"] for p in person_rows] + ["xiewenbin", "hanxue", "songjia"]
    unit_of = {p["account"]: p["unit_id"] for p in person_rows} | {
        "xiewenbin": "inspection",
        "hanxue": "inspection",
        "songjia": "inspection",
    }
    docs, steps, trail, grams, texts = [], [], [], [], []
    for n in range(1, documents + 1):
        author = rng.choice(authors)
        created = now - dt.timedelta(days=rng.random() * 365)
        # One in a hundred is a bulletin on the board, one a supervision task still open.
        kind = {0: "gonggao", 1: "duban"}.get(n % 100, rng.choice(KINDS))
        title = f"關於{rng.choice(TOPICS)}工作的請示第{n}號"
        waiting = rng.random() < 0.2 or kind == "duban"
        fields: dict[str, Any] = {"body": "正文"}
        if kind == "gonggao":
            fields |= {
                "published_at": created.isoformat(),
                "expires": "2099-12-31",
                "recipients": rng.sample(authors, 50),
            }
        to_units = rng.sample([u["id"] for u in units], 3) if kind == "duban" else []
        if to_units:
            fields |= {
                "to_units": to_units,
                "deadline": (created + dt.timedelta(days=20)).isoformat(),
            }
        docs.append(
            {
                "id": n,
                "kind": kind,
                "title": title,
                "state": {"gonggao": "closed", "duban": "supervising"}.get(
                    kind, "reviewing" if waiting else "closed"
                ),
                "author": author,
                "unit_id": unit_of[author],
                "version": 1,
                "fields": fields,
                "created_at": created,
                "updated_at": created,
            }
        )
        head = "liangguoqiang" if unit_of[author] == "inspection" else rng.choice(authors)
        for unit in to_units or [None]:
            steps.append(
                {
                    "document_id": n,
                    "name": "progress" if unit else "review",
                    "assignee": head,
                    "unit": unit,
                    "action": "progress" if unit else "approve",
                    "state": "waiting" if waiting else "done",
                    "created_at": created,
                    "due_at": created + dt.timedelta(days=2),
                    "done_at": None if waiting else created + dt.timedelta(hours=5),
                    "done_by": None if waiting else head,
                    "reminders_sent": 0,
                    "escalation": 0,
                }
            )
        trail.append(
            {
                "at": created,
                "actor": author,
                "action": "doc.open",
                "target": f"doc:{n}",
                "detail": {"opinion": title},
            }
        )
        title_texts, title_grams = index_rows(n, {"title": title})
        texts.extend(title_texts)
        grams.extend(title_grams)
    with ctx.engine.begin() as conn:
        conn.execute(insert(Unit), units)
        for table, rows in (
            (Person, person_rows),
            (Account, account_rows),
            (Role, role_rows),
            (Document, docs),
            (Step, steps),
            (AuditEntry, trail),
            (SearchText, texts),
            (SearchPosting, grams),
        ):
            for chunk in _chunks(rows):
                conn.execute(insert(table), chunk)
    if ctx.engine.dialect.name == "postgresql":
        with ctx.engine.begin() as conn:
            conn.execute(
                text("SELECT setval(pg_get_serial_sequence('documents', 'id'), :n)"),
                {"n": documents},
            )
        # As autovacuum leaves a database that grew to this size over months: the visibility
        # map set, so that index-only scans read no table pages (ANALYZE alone does not).
        with ctx.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        with ctx.engine.begin() as conn:
            conn.execute(text("ANALYZE"))


def _client(app: Any, account: str) -> TestClient:
    client = TestClient(app, base_url="http://127.0.0.1")
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    response = client.post(
        "/login",
        data={"account": account, "password": PASSWORD, "csrf_token": token[1]},
        follow_redirects=False,
    )
    assert response.status_code == 303, (account, response.status_code, response.text[:300])
    return client


def measure(client: TestClient, path: str, runs: int) -> tuple[float, float, int]:
    """p50 and p95 in ms of ``runs`` requests (after one warm-up), and the status."""
    status = client.get(path).status_code
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        status = client.get(path).status_code
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)], status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--postgresql", action="store_true")
    parser.add_argument("--keep", metavar="PATH", help="keep the filled database here and reuse it")
    parser.add_argument("--only", metavar="TEXT", help="measure only the pages whose path has it")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="yzbench"))
    try:
        with _database(args.postgresql, tmp, args.keep) as url:
            config = parse_config(
                {
                    "yizhan": {"data_dir": str(tmp / "var"), "secret": "bench-secret-0123456789"},
                    "database": {"url": url},
                    "signing": {"gnupg_home": str(tmp / "g")},
                }
            )
            ctx = Context.open(config)
            upgrade(ctx.engine)
            now = dt.datetime.now(dt.UTC)
            started = time.perf_counter()
            if _filled(ctx, args.people, args.documents):
                print(f"kept database: {args.keep} ({ctx.engine.dialect.name})", flush=True)
            else:
                fill(ctx, args.people, args.documents, now)
                print(
                    f"filled {args.people} people, {args.documents} documents in "
                    f"{time.perf_counter() - started:.0f} s ({ctx.engine.dialect.name})",
                    flush=True,
                )
            app = create_app(ctx)
            # As the daemon does once it has started (yizhan/daemon/heap.py).
            heap.settle()
            office, it, head = (
                _client(app, "wangfang"),
                _client(app, "mali"),
                _client(app, "liangguoqiang"),
            )
            with ctx.sessions() as session:
                waiting = session.scalar(
                    text(
                        "SELECT document_id FROM steps WHERE assignee = 'liangguoqiang' "
                        "AND state = 'waiting' LIMIT 1"
                    )
                )
            pages = [
                (office, "/"),
                (office, "/account"),
                (head, "/account"),
                (office, "/documents"),
                (head, "/documents"),
                (office, "/documents?q=冷鏈食品"),
                (head, "/documents?q=口岸檢疫 請示"),
                (office, f"/documents/{args.documents // 2}"),
                (head, f"/documents/{waiting}"),
                (head, "/unit"),
                (it, "/people"),
                (it, "/people?q=員工42"),
                (it, "/queue"),
                (it, "/quarantine"),
                (it, "/content"),
                (office, "/rules"),
                (office, "/audit"),
                (office, "/audit?actor=xiewenbin"),
                (office, "/audit.csv?actor=hanxue&action=doc."),
                (office, "/help"),
                (office, "/bulletins"),
                (office, "/supervision"),
            ]
            names = {id(office): "office", id(it): "it", id(head): "unit head"}
            print(f"{'page':<40} {'as':<10} {'p50 ms':>8} {'p95 ms':>8}")
            worst = 0.0
            for client, path in pages:
                if args.only and args.only not in path:
                    continue
                p50, p95, status = measure(client, path, args.runs)
                worst = max(worst, p95)
                flag = "" if status == 200 else f"  (HTTP {status})"
                print(f"{path:<40} {names[id(client)]:<10} {p50:8.1f} {p95:8.1f}{flag}", flush=True)
            print(f"worst p95: {worst:.1f} ms (target < 100 ms)")
            ctx.close()
            heap.release()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
