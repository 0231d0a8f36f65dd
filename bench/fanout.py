"""Measures a sealed distribution end to end: one document sealed for 1,000 clerks, from the
custodian's signed SEAL until every copy is in its reader's mailbox (issue 16, target 4).

``python -m bench.fanout`` works in a fresh temporary directory holding a bureau of N clerks
(default 1,000) and the seal custodian, a GnuPG home with the system key and the bureau's
seal, and a database (SQLite, or a fresh schema in PostgreSQL's ``test`` database). It starts
Yizhan's own Dovecot with the admin page that answers its lookups, as ``yizhan serve`` does,
and for each database and courier it times, in one run:

* **queued**: verify the SEAL, unlock the seal, sign the document once (seal and system
  key), then for each clerk the desk's ``Mailer.send`` with a shared ``Distribution`` (the
  X-Yizhan-* headers, a reply token for the clerk's 簽收 step, the head around the shared
  signed body) and ``Mailer.queue_distribution`` (the outbound rows and their deliveries),
  in one transaction, committed, as ``desk.notices`` distributes a sealed document;
* **delivered**: from the same start until the outbound worker's rounds have put every copy
  in its clerk's mailbox and marked it sent (``OutboundWorker.run_until_empty``):

  - ``imap``: filed over IMAP as Dovecot's master user into 公文/待辦 (a distributed copy
    asks the clerk to sign for it), the courier ``make run``'s demo uses (``[imap] listen``
    is set and no relay: ``imap_target``);
  - ``maildir``: written into ``<data_dir>/maildirs/<account>/new``, the courier without
    Dovecot.

The receive steps and the bureau's directory are made before the clock starts (the decision
that opens the steps is the processor's, not the distribution's). The target is under 1 s
delivered. Every copy must be delivered exactly once, or the run fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import uvicorn
from sqlalchemy import func, select

from bench.e2e import postgres_schema
from bench.signing import (
    CUSTODIAN,
    DOMAIN,
    _custodian_key,
    _signed_seal_command,
)
from yizhan.admin.app import create_app
from yizhan.daemon.config import parse_config
from yizhan.daemon.context import Context
from yizhan.daemon.desk.mailer import Distribution, Mailer, MailFile
from yizhan.daemon.imap import mutf7
from yizhan.daemon.imap.courier import ImapFiling
from yizhan.daemon.imap.dovecot import DovecotSupervisor, layout_for
from yizhan.daemon.imap.folders import TODO
from yizhan.daemon.imap.pool import SessionPool, imap_target
from yizhan.daemon.outbound import OutboundWorker
from yizhan.mailstore import outbox
from yizhan.mailstore.db import upgrade
from yizhan.mailstore.directory import import_directory
from yizhan.mailstore.models import Delivery, Document, Step
from yizhan.mailstore.models import ImapFiling as FilingRow
from yizhan.routing.directory import parse_org
from yizhan.routing.tokens import make_token
from yizhan.signing import pgpmime

SECRET: Final = "bench-secret-0123456789abcdef"
COURIERS: Final = ("imap", "maildir")


@dataclass(frozen=True, kw_only=True)
class Result:
    """One distribution's figures."""

    database: str
    courier: str
    recipients: int
    queued: float
    delivered: float
    stages: list[tuple[str, float]]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the figures; exit status 1 if the target is missed."""
    parser = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__)
    parser.add_argument("--recipients", type=int, default=1000)
    parser.add_argument(
        "--db", choices=("sqlite", "postgresql", "both"), default="both", help="which databases"
    )
    parser.add_argument(
        "--courier", choices=(*COURIERS, "both"), default="both", help="which couriers"
    )
    parser.add_argument("--pdf", type=int, default=200 * 1024, help="PDF size, bytes (0: none)")
    parser.add_argument("--target", type=float, default=1.0, help="seconds, seal to delivered")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="clerks who never had mail (no earlier request makes their folders first)",
    )
    args = parser.parse_args(argv)
    databases = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    couriers = COURIERS if args.courier == "both" else (args.courier,)
    print(
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; {args.recipients} clerks, "
        f"{args.pdf // 1024} KB PDF"
    )
    results = []
    for database in databases:
        for courier in couriers:
            results.append(
                asyncio.run(_one(database, courier, args.recipients, args.pdf, warm=not args.cold))
            )
            r = results[-1]
            print(
                f"{r.database:<10} {r.courier:<8} queued {r.queued:6.2f} s   "
                f"delivered {r.delivered:6.2f} s   ({r.recipients} copies)",
                flush=True,
            )
            for name, seconds in r.stages:
                print(f"    {name:<44} {seconds:7.3f} s")
    missed = [r for r in results if r.delivered >= args.target]
    print(
        f"target: delivered < {args.target:.1f} s: "
        + ("met" if not missed else "MISSED (" + ", ".join(_label(r) for r in missed) + ")")
    )
    return 1 if missed else 0


def _label(r: Result) -> str:
    return f"{r.database}/{r.courier} {r.delivered:.2f} s"


async def _one(database: str, courier: str, recipients: int, pdf: int, *, warm: bool) -> Result:
    base = Path(tempfile.mkdtemp(prefix="yzf-", dir="/tmp"))
    # Dovecot runs as this user too and must reach the Maildirs.
    base.chmod(0o711)
    with _database(database, base) as url:
        ctx = _context(base, url, own_dovecot=courier == "imap")
        client = base / "client"
        client.mkdir(mode=0o700)
        stop = asyncio.Event()
        admin: uvicorn.Server | None = None
        admin_task: asyncio.Task[None] | None = None
        dovecot: asyncio.Task[None] | None = None
        pool: SessionPool | None = None
        try:
            clerks, steps, document_id = await asyncio.to_thread(_bureau, ctx, client, recipients)
            filing = None
            if courier == "imap":
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
                await asyncio.wait_for(supervisor.ready.wait(), 30)
                target = imap_target(ctx.config)
                assert target is not None
                pool = SessionPool(target)
                filing = ImapFiling(ctx.config, pool, clock=ctx.clock)
            worker = OutboundWorker(ctx, filing=filing)
            if warm:
                # Each clerk has had a request before: their mailbox and 公文/待辦 exist, as
                # in a bureau at work. Not timed.
                await asyncio.to_thread(_earlier_requests, ctx, clerks, steps, document_id)
                await worker.run_until_empty()
            seal_command = _signed_seal_command(client)
            stages: list[tuple[str, float]] = []
            start = time.perf_counter()
            queued = await asyncio.to_thread(
                _seal_and_queue, ctx, seal_command, clerks, steps, document_id, pdf, stages
            )
            mark = time.perf_counter()
            own, machine = _cpu()
            server = _dovecot_cpu(ctx) if courier == "imap" else 0.0
            sent = await worker.run_until_empty()
            delivered = time.perf_counter() - start
            stages.append((f"deliver ({courier}, {sent} attempts)", time.perf_counter() - mark))
            own_after, machine_after = _cpu()
            stages.append(("  CPU of this process while delivering", own_after - own))
            if courier == "imap":
                stages.append(("  CPU of Dovecot while delivering", _dovecot_cpu(ctx) - server))
            stages.append(("  CPU of the whole machine (2 cores shared)", machine_after - machine))
            await asyncio.to_thread(_check, ctx, courier, clerks, 2 if warm else 1)
            return Result(
                database=database,
                courier=courier,
                recipients=recipients,
                queued=queued,
                delivered=delivered,
                stages=stages,
            )
        finally:
            stop.set()
            if pool is not None:
                await pool.close()
            if dovecot is not None:
                await dovecot
            if admin is not None and admin_task is not None:
                admin.should_exit = True
                await admin_task
            ctx.close()
            subprocess.run(
                ["gpgconf", "--homedir", str(client), "--kill", "gpg-agent"],
                check=False,
                capture_output=True,
            )
            shutil.rmtree(layout_for(ctx.config).runtime, ignore_errors=True)
            shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def _database(database: str, base: Path) -> Iterator[str]:
    if database == "sqlite":
        yield f"sqlite:///{base / 'yizhan.db'}"
    else:
        with postgres_schema() as url:
            yield url


def _cpu() -> tuple[float, float]:
    """CPU seconds used so far by this process (all threads), and by the whole machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    with open("/proc/stat", encoding="ascii") as stat:
        ticks = [int(t) for t in stat.readline().split()[1:]]
    # user nice system (idle iowait) irq softirq steal
    busy = sum(ticks[:3]) + sum(ticks[5:8])
    return usage.ru_utime + usage.ru_stime, busy / os.sysconf("SC_CLK_TCK")


def _dovecot_cpu(ctx: Context) -> float:
    """CPU seconds used by Yizhan's Dovecot: its master, its live processes, and those ended."""
    master = int(layout_for(ctx.config).pid_file.read_text().strip())
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        pid, ppid = int(entry), int(fields[1])
        if pid == master:
            # Its own time, and that of its children already ended and reaped.
            total += sum(int(t) for t in fields[11:15])
        elif ppid == master:
            total += sum(int(t) for t in fields[11:15])
    return total / tick


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _context(base: Path, url: str, *, own_dovecot: bool) -> Context:
    config = parse_config(
        {
            "yizhan": {"data_dir": str(base / "var"), "secret": SECRET, "domain": DOMAIN},
            "database": {"url": url},
            "admin": {"listen": f"127.0.0.1:{_port()}"},
            "imap": {
                "listen": f"127.0.0.1:{_port()}" if own_dovecot else "",
                "auth_failure_delay": 0,
            },
        }
    )
    config.data_dir.mkdir(parents=True)
    ctx = Context.open(config)
    upgrade(ctx.engine)
    return ctx


def _bureau(ctx: Context, client: Path, count: int) -> tuple[list[str], list[int], int]:
    """The bureau, its seal and custodian, N clerks and a waiting receive step for each."""
    org = {
        "unit": [
            {"id": "bureau", "name": "遼寧出入境檢驗檢疫局", "kind": "bureau", "prefix": "遼檢"}
        ],
        "person": [
            {
                "account": CUSTODIAN,
                "name": "周靜",
                "unit": "bureau",
                "roles": ["unit_head", "seal_custodian"],
                "email": "zhoujing@bureau.example",
            },
            *(
                {
                    "account": f"clerk{n:04d}",
                    "name": f"文書{n:04d}",
                    "unit": "bureau",
                    "roles": ["clerk"],
                }
                for n in range(count)
            ),
        ],
    }
    now = ctx.clock()
    keyring = ctx.keyring
    keyring.ensure_system_key(DOMAIN)
    keyring.create_seal("bureau", "遼寧出入境檢驗檢疫局", CUSTODIAN, DOMAIN)
    keyring.import_person_key(_custodian_key(client), CUSTODIAN, ["zhoujing@bureau.example"])
    clerks = [f"clerk{n:04d}" for n in range(count)]
    with ctx.sessions.begin() as session:
        import_directory(session, parse_org(org), actor="bench", now=now)
        document = Document(
            kind="fawen",
            title="關於開展2026年度安全檢查的通知",
            state="distributing",
            author=CUSTODIAN,
            unit_id="bureau",
            number="遼檢發〔2026〕42號",
            urgency="加急",
            created_at=now,
            updated_at=now,
        )
        session.add(document)
        session.flush()
        rows = [
            Step(
                document_id=document.id,
                name="receive",
                assignee=clerk,
                action="receive",
                unit="bureau",
                created_at=now,
            )
            for clerk in clerks
        ]
        session.add_all(rows)
        session.flush()
        return clerks, [row.id for row in rows], document.id


def _seal_and_queue(
    ctx: Context,
    seal_command: bytes,
    clerks: Sequence[str],
    steps: Sequence[int],
    document_id: int,
    pdf: int,
    stages: list[tuple[str, float]],
) -> float:
    """Seal the document and queue a copy for each clerk as the desk does; seconds taken."""
    start = mark = time.perf_counter()

    def stage(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        stages.append((name, now - mark))
        mark = now

    keyring = ctx.keyring
    mailer = Mailer(ctx)
    verification = pgpmime.verify_message(seal_command, keyring, account=CUSTODIAN)
    if not verification.ok:
        raise SystemExit(f"the SEAL did not verify: {verification.reason}")
    stage("verify the custodian's SEAL")
    attachments = (
        [
            MailFile(
                filename="遼檢發〔2026〕42號.pdf",
                content_type="application/pdf",
                data=os.urandom(pdf),
            )
        ]
        if pdf
        else []
    )
    people = mailer.ctx.config
    with ctx.sessions.begin() as session:
        document = session.get_one(Document, document_id)
        directory_people = _people(session)
        distribution = Distribution()
        with keyring.seal_signer("bureau", authorised_by=verification) as seal:
            signers = [seal, keyring.system_signer()]
            for n, (clerk, step_id) in enumerate(zip(clerks, steps, strict=True)):
                headers = mailer.document_headers(document, _StepFacts(), "receive")
                token = make_token(
                    people.secret, document_id=document_id, step_id=step_id, account=clerk
                )
                headers["Reply-To"] = f"r+{token}@{DOMAIN}"
                # Before Mailer.distribute (7 Dec 2026), the desk queued each copy with send.
                mail = getattr(mailer, "distribute", mailer.send)
                mail(
                    session,
                    source=f"bench:fanout:{document_id}:{n}",
                    to=directory_people[clerk],
                    template="document.txt",
                    language="zh_CN",
                    headers=headers,
                    document_id=document_id,
                    html="<html><body><h1>關於開展2026年度安全檢查的通知</h1></body></html>",
                    attachments=attachments,
                    signers=signers,
                    distribution=distribution,
                    body_key="distributed",
                    variables={
                        "label": "公文分發",
                        "doc": document,
                        "action": "receive",
                        "step": _StepFacts(),
                        "on_behalf_of": None,
                        "variables": {"opinion": None},
                        "trail": [],
                        "deadline": "",
                        "files": [],
                    },
                )
                if n == 0:
                    stage("unlock seal, sign once, first copy")
        if hasattr(mailer, "queue_distribution"):
            stage(f"Mailer.distribute x{len(clerks) - 1} more (a head each)")
            mailer.queue_distribution(session, distribution)
            stage(f"Mailer.queue_distribution ({len(clerks)} rows)")
        else:
            stage(f"Mailer.send x{len(clerks) - 1} more (a head and a row each)")
    stage("commit")
    return time.perf_counter() - start


class _StepFacts:
    name = "receive"
    due_at = None


def _people(session):  # type: ignore[no-untyped-def]
    from yizhan.mailstore.directory import load_directory

    return load_directory(session).people


def _earlier_requests(
    ctx: Context, clerks: Sequence[str], steps: Sequence[int], document_id: int
) -> None:
    """A small step request for each clerk, queued as any other mail is."""
    with ctx.sessions.begin() as session:
        for clerk, step_id in zip(clerks, steps, strict=True):
            token = make_token(SECRET, document_id=document_id, step_id=step_id, account=clerk)
            data = (
                f"From: cmd@{DOMAIN}\r\nTo: {clerk}@{DOMAIN}\r\nSubject: earlier request\r\n"
                f"X-Yizhan-Doc: {document_id}\r\nX-Yizhan-Kind: fawen\r\n"
                "X-Yizhan-Step: receive\r\nX-Yizhan-Action: receive\r\n"
                f"Reply-To: r+{token}@{DOMAIN}\r\n\r\nPlease sign for it.\r\n"
            ).encode()
            outbox.enqueue(
                session,
                source=f"bench:earlier:{clerk}",
                message=data,
                mail_from=f"cmd@{DOMAIN}",
                rcpts=[f"{clerk}@{DOMAIN}"],
                now=ctx.clock(),
                expires_after=dt.timedelta(days=1),
                domain=DOMAIN,
            )


def _check(ctx: Context, courier: str, clerks: Sequence[str], expected: int) -> None:
    """Every copy delivered, once: the queue says sent, and each mailbox holds one."""
    with ctx.sessions() as session:
        sent = session.scalar(select(func.count()).where(Delivery.state == "sent"))
        filed = session.scalar(select(func.count()).select_from(FilingRow))
    if sent != expected * len(clerks):
        raise SystemExit(f"{sent} of {expected * len(clerks)} deliveries marked sent")
    root = ctx.config.maildir_root
    for clerk in clerks:
        if courier == "imap":
            folder = root / clerk / ("." + mutf7.encode(TODO).replace("/", "."))
            found = sum(len(os.listdir(folder / sub)) for sub in ("new", "cur"))
        else:
            found = len(os.listdir(root / clerk / "new"))
        if found != expected:
            raise SystemExit(f"{clerk}: {found} copies in the mailbox")
    if courier == "imap" and filed != expected * len(clerks):
        raise SystemExit(f"{filed} filings recorded for {len(clerks)} copies")


if __name__ == "__main__":
    sys.exit(main())
