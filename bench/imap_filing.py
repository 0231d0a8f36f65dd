"""Measures filing step requests into 公文/待辦 over IMAP against writing them into Maildirs.

``python -m bench.imap_filing`` starts Yizhan's own Dovecot (as ``yizhan serve`` does, with
the admin page that answers its lookups) over a scratch data directory holding the demo
bureau, queues 1,000 step requests (each a 5 KB message asking for approval, with a genuine
reply token) for its 33 people, and times the couriers' work on the same 1,000 claimed
deliveries, as one round of the outbound worker sends them:

* IMAP: ``ImapCourier`` as Dovecot master user (a session per person, APPEND with UIDPLUS,
  fsynced by Dovecot); each person's messages in order, ``courier.PARALLEL`` people at a time;
* Maildir: ``_MaildirCourier``, direct delivery of the whole round at once
  (``maildir.deliver_many``: each person's files written and fsynced by a thread of their
  own, linked, then each ``new/`` directory fsynced once).

The target is IMAP filing at least half as fast (ratio ≥ 0.5). Then it measures how long a
request takes to reach 公文/已辦 after its step is decided: 200 steps are marked done one by
one, each with the wake-up the processor gives, and the time until the tidy pass has moved
the message (the server did it before the database says so) is taken; target p99 < 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Final

import uvicorn
from sqlalchemy import select, update

from yizhan.admin.app import create_app
from yizhan.daemon.config import parse_config
from yizhan.daemon.context import Context
from yizhan.daemon.imap.courier import PARALLEL, ImapFiling
from yizhan.daemon.imap.dovecot import DovecotSupervisor, layout_for
from yizhan.daemon.imap.folders import DONE
from yizhan.daemon.imap.pool import SessionPool, imap_target
from yizhan.daemon.imap.tidy import Tidier
from yizhan.daemon.outbound import OutboundWorker, _MaildirCourier
from yizhan.mailstore import outbox
from yizhan.mailstore.db import upgrade
from yizhan.mailstore.directory import import_directory, load_directory
from yizhan.mailstore.models import Document, Step
from yizhan.mailstore.models import ImapFiling as FilingRow
from yizhan.routing.directory import parse_org
from yizhan.routing.tokens import make_token

SECRET: Final = "bench-secret-0123456789abcdef"
BODY_KB: Final = 5


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 1 when a target is missed."""
    parser = argparse.ArgumentParser(prog="python -m bench.imap_filing", description=__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--decisions", type=int, default=200)
    args = parser.parse_args(argv)
    return asyncio.run(_run(args.requests, args.decisions))


async def _run(requests: int, decisions: int) -> int:
    base = Path(tempfile.mkdtemp(prefix="yzbench", dir="/tmp"))
    base.chmod(0o711)
    ctx = _context(base)
    stop = asyncio.Event()
    admin = uvicorn.Server(
        uvicorn.Config(
            create_app(ctx),
            host="127.0.0.1",
            port=ctx.config.admin_listen.port,
            log_level="warning",
            lifespan="off",
        )
    )
    admin_task = asyncio.create_task(admin.serve())
    listen = ctx.config.imap.listen
    assert listen is not None
    supervisor = DovecotSupervisor(
        ctx.config,
        listen,
        auth_url=f"http://127.0.0.1:{ctx.config.admin_listen.port}/internal/dovecot",
    )
    dovecot = asyncio.create_task(supervisor.run(stop))
    try:
        await asyncio.wait_for(supervisor.ready.wait(), 30)
        steps = await asyncio.to_thread(_steps, ctx, requests)
        print(
            f"{os.cpu_count()} CPUs; {requests} step requests of {BODY_KB} KB for "
            f"{len({a for a, _ in steps})} people; SQLite; Dovecot {listen}"
        )

        target = imap_target(ctx.config)
        assert target is not None
        pool = SessionPool(target)
        filing = ImapFiling(ctx.config, pool, clock=ctx.clock)
        # Rounds of the outbound worker's own size (BATCH claims each).
        worker = OutboundWorker(ctx, filing=filing)
        directory = await asyncio.to_thread(_directory, ctx)

        await asyncio.to_thread(_queue, ctx, steps, "imap")
        imap_seconds = await _rounds(worker, lambda: filing.courier(directory, others=None))
        await asyncio.to_thread(_queue, ctx, steps, "imap-serial")
        serial_seconds = await _rounds(
            worker, lambda: filing.courier(directory, others=None), prepare=False
        )
        maildir_root = base / "maildir-direct"
        await asyncio.to_thread(_queue, ctx, steps, "maildir")
        maildir_seconds = await _rounds(
            worker, lambda: _MaildirCourier(maildir_root, directory, ctx.config.domain)
        )

        ratio = maildir_seconds / imap_seconds
        print(
            f"IMAP filing (master user, APPEND):  {requests / imap_seconds:7.0f} requests/s "
            f"({imap_seconds:.2f} s; {PARALLEL} people at a time, as the outbound worker files)"
        )
        print(
            f"  one message at a time:           {requests / serial_seconds:7.0f} requests/s "
            f"({serial_seconds:.2f} s; ratio {maildir_seconds / serial_seconds:.2f})"
        )
        print(
            f"Maildir delivery (direct):          {requests / maildir_seconds:7.0f} requests/s "
            f"({maildir_seconds:.2f} s)"
        )
        met_ratio = ratio >= 0.5
        print(
            f"ratio IMAP/Maildir: {ratio:.2f} (target >= 0.5: {'met' if met_ratio else 'MISSED'})"
        )

        tidier = Tidier(ctx, pool, period=60.0, repair_period=1e9)
        tidier._repair_due = False
        tidy_task = asyncio.create_task(tidier.run(stop))
        latencies = []
        for _account, step_id in steps[:decisions]:
            started = time.perf_counter()
            await asyncio.to_thread(_decide, ctx, step_id)
            tidier.wake()
            while not await asyncio.to_thread(_in_done, ctx, step_id):
                await asyncio.sleep(0.002)
            latencies.append(time.perf_counter() - started)
        latencies.sort()
        p50 = statistics.median(latencies)
        p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)]
        met_latency = p99 < 1.0
        print(
            f"decision -> 公文/已辦 over {len(latencies)} steps: p50 {p50 * 1000:.0f} ms, "
            f"p99 {p99 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms "
            f"(target p99 < 1 s: {'met' if met_latency else 'MISSED'})"
        )
        stop.set()
        await tidy_task
        await pool.close()
        return 0 if met_ratio and met_latency else 1
    finally:
        stop.set()
        await dovecot
        admin.should_exit = True
        await admin_task
        ctx.close()
        shutil.rmtree(layout_for(ctx.config).runtime, ignore_errors=True)
        shutil.rmtree(base, ignore_errors=True)


async def _rounds(
    worker: OutboundWorker, make: Callable[[], Any], *, prepare: bool = True
) -> float:
    """Seconds the couriers spend on everything queued, in the worker's rounds: a round's
    claims, the courier's own preparation if it has one (IMAP files several people at once),
    then message by message. Claiming and recording are not counted."""
    spent = 0.0
    while claims := await worker.claim():
        courier = make()
        outcomes = []
        started = time.perf_counter()
        ahead = getattr(courier, "prepare", None) if prepare else None
        if ahead is not None:
            await ahead(claims)
        for claim in claims:
            outcomes += await courier.send([claim])
        spent += time.perf_counter() - started
        await courier.close()
        await worker.record(outcomes)
        assert all(o.result == "sent" for o in outcomes), {o.detail for o in outcomes}
    return spent


def _context(base: Path) -> Context:
    import socket

    def port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    config = parse_config(
        {
            "yizhan": {"data_dir": str(base / "var"), "secret": SECRET},
            "database": {"url": f"sqlite:///{base / 'var' / 'yizhan.db'}"},
            "admin": {"listen": f"127.0.0.1:{port()}"},
            "imap": {"listen": f"127.0.0.1:{port()}", "auth_failure_delay": 0},
        }
    )
    config.data_dir.mkdir(parents=True)
    ctx = Context.open(config)
    upgrade(ctx.engine)
    org = tomllib.loads((resources.files("yizhan.demo") / "bureau.toml").read_text("utf-8"))
    with ctx.sessions.begin() as session:
        import_directory(session, parse_org(org), actor="bench", now=ctx.clock())
    return ctx


def _steps(ctx: Context, count: int) -> list[tuple[str, int]]:
    """One document, and a waiting step for each request, spread over the people."""
    now = ctx.clock()
    with ctx.sessions.begin() as session:
        people = sorted(load_directory(session).people)
        document = Document(
            kind="qianbao",
            title="基準測試",
            state="review",
            author=people[0],
            unit_id="bureau",
            created_at=now,
            updated_at=now,
        )
        session.add(document)
        session.flush()
        rows = [
            Step(
                document_id=document.id,
                name="review",
                assignee=people[n % len(people)],
                action="approve",
                created_at=now,
            )
            for n in range(count)
        ]
        session.add_all(rows)
        session.flush()
        return [(row.assignee, row.id) for row in rows]


def _queue(ctx: Context, steps: list[tuple[str, int]], tag: str) -> None:
    body = ("請審批。" * 20 + "\n") * (BODY_KB * 1024 // 61)
    with ctx.sessions.begin() as session:
        document_id = session.scalar(select(Step.document_id).limit(1))
        for account, step_id in steps:
            token = make_token(
                SECRET, document_id=document_id or 0, step_id=step_id, account=account
            )
            data = (
                f"From: cmd@oa.example\r\nTo: {account}@oa.example\r\n"
                f"Subject: [請審批] 基準測試 {step_id}\r\nX-Yizhan-Doc: {document_id}\r\n"
                f"X-Yizhan-Kind: qianbao\r\nX-Yizhan-Step: review\r\nX-Yizhan-Action: approve\r\n"
                f"Reply-To: r+{token}@oa.example\r\nMIME-Version: 1.0\r\n"
                "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
                f"\r\n{body}"
            ).encode()
            outbox.enqueue(
                session,
                source=f"bench:{tag}:{step_id}",
                message=data,
                mail_from="cmd@oa.example",
                rcpts=[f"{account}@oa.example"],
                now=ctx.clock(),
                expires_after=dt.timedelta(days=1),
                domain="oa.example",
            )


def _directory(ctx: Context):  # type: ignore[no-untyped-def]
    with ctx.sessions() as session:
        return load_directory(session)


def _decide(ctx: Context, step_id: int) -> None:
    with ctx.sessions.begin() as session:
        session.execute(
            update(Step).where(Step.id == step_id).values(state="done", done_at=ctx.clock())
        )


def _in_done(ctx: Context, step_id: int) -> bool:
    with ctx.sessions() as session:
        return session.scalar(select(FilingRow.folder).where(FilingRow.step_id == step_id)) == DONE


if __name__ == "__main__":
    sys.exit(main())
