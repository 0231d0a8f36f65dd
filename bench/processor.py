"""The processor alone, in this process: CPU a command, and where it goes (issue 16).

``python -m bench.processor`` sets up the bureau ``bench.e2e`` uses (its accounts, the system
key), puts ``--commands`` HELP commands of 10 KB into the inbound table as the gateway and the
pickup leave them (raw bytes stored, the content rules' version current), and runs
``Processor.process_batch`` until none is left, as a processing worker does. It prints the CPU
a command of this process, of the gpg processes it waited for and of the key ring's
gpg-agent, each apart: the figure ``bench.e2e`` sums over the whole daemon, without the
gateway, the couriers and the scheduling noise of a loaded machine. With ``--profile FILE``
the measured commands run under cProfile and the stats are written to FILE (read them with
``python -m pstats FILE``); ``--top N`` prints the N costliest functions by their own and by
their cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.e2e import (
    DOMAIN,
    accounts,
    cpu_of,
    database_url,
    help_command,
    helper_pids,
    write_setup,
)


def _fill(ctx: object, commands: int, clients: int, first: int) -> None:
    """``commands`` HELP commands from the clients' accounts, accepted and not processed."""
    from yizhan.daemon.context import Context
    from yizhan.daemon.rules_file import content_rules_version
    from yizhan.mailstore.models import Inbound

    assert isinstance(ctx, Context)
    names = accounts(clients)
    version = content_rules_version(ctx.config.rules_file)
    now = ctx.clock()
    with ctx.sessions.begin() as session:
        for n in range(commands):
            account = names[n % clients]
            message_id, raw = help_command(account, first + n)
            stored = ctx.raw.write("inbound", raw, now)
            session.add(
                Inbound(
                    received_at=now,
                    path=stored.relative,
                    sha256=stored.sha256,
                    size=stored.size,
                    message_id=message_id,
                    mail_from=f"{account}@{DOMAIN}",
                    rcpt_tos=[f"cmd@{DOMAIN}"],
                    sender_account=account,
                    auth_method="smtp-auth",
                    peer="127.0.0.1:1",
                    state="accepted",
                    content_rules=version,
                )
            )


def run(
    database: str,
    *,
    commands: int,
    clients: int,
    base: Path,
    profile: Path | None,
    top: int,
) -> dict[str, float]:
    """Process ``commands`` commands on ``database``; CPU ms a command, by process."""
    from yizhan.daemon.config import load_config
    from yizhan.daemon.context import Context
    from yizhan.daemon.processor import Processor

    directory = Path(tempfile.mkdtemp(prefix=f"proc-{database}-", dir=base))
    with database_url(database, directory) as url:
        config_file = write_setup(directory, database=url, relay_port=1, clients=clients)
        ctx = Context.open(load_config(config_file))
        ctx.raw.prepare()
        try:
            processor = Processor(ctx)
            # The first commands load templates, catalogs, keys and the directory.
            _fill(ctx, 8, clients, 0)
            while processor.process_batch():
                pass
            _fill(ctx, commands, clients, 100)
            agents = helper_pids(str(directory), os.getpid())
            agents = [pid for pid in agents if pid not in _children()]
            own = time.process_time()
            children = _children_cpu()
            agent = cpu_of(agents)
            wall = time.monotonic()
            profiler = cProfile.Profile(time.process_time) if profile else None
            if profiler is not None:
                profiler.enable()
            done = 0
            while batch := processor.process_batch():
                done += batch
            if profiler is not None:
                profiler.disable()
            wall = time.monotonic() - wall
            own = time.process_time() - own
            children = _children_cpu() - children
            agent = cpu_of(agents) - agent
            print(f"signatures: {ctx.signatures.hits} reused, {ctx.signatures.misses} made")
        finally:
            ctx.close()
    shutil.rmtree(directory, ignore_errors=True)
    if profiler is not None and profile is not None:
        named = profile.with_name(f"{profile.stem}-{database}{profile.suffix}")
        profiler.dump_stats(named)
        if top:
            stats = pstats.Stats(str(named))
            stats.sort_stats("tottime").print_stats(top)
            stats.sort_stats("cumulative").print_stats(top)
    assert done == commands, f"{done} of {commands} processed"
    return {
        "processor": 1000 * own / done,
        "gpg": 1000 * children / done,
        "agent": 1000 * agent / done,
        "all": 1000 * (own + children + agent) / done,
        "per_s": done / wall,
    }


def _children() -> set[int]:
    pid = os.getpid()
    return {int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def _children_cpu() -> float:
    times = os.times()
    return times.children_user + times.children_system


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.processor", description=__doc__)
    parser.add_argument("--commands", type=int, default=300)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--profile", type=Path, help="cProfile the measured commands into this")
    parser.add_argument("--top", type=int, default=0, help="print the N costliest functions")
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="yizhan-proc-"))
    print(f"{'database':<12}{'processor':>10}{'gpg':>8}{'agent':>8}{'all':>8}{'per s':>8}")
    try:
        for database in ("sqlite", "postgresql"):
            if args.db not in (database, "both"):
                continue
            result = run(
                database,
                commands=args.commands,
                clients=args.clients,
                base=base,
                profile=args.profile,
                top=args.top,
            )
            print(
                f"{database:<12}{result['processor']:>10.2f}{result['gpg']:>8.2f}"
                f"{result['agent']:>8.2f}{result['all']:>8.2f}{result['per_s']:>8.1f}"
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
