"""Two daemons on one PostgreSQL: the work is shared, nothing is done twice, a survivor finishes.

``python -m proofs.two_daemons`` (part of ``make proofs``) sets up the demo bureau on a scratch
PostgreSQL schema and starts two ``yizhan serve`` on one data directory (as
docs/operations.md describes, one SMTP port each). The load of ``proofs.crash`` is spread over
both; halfway, a few reminders fall due, so both daemons' reminder sweeps compete for them;
then one daemon is SIGKILLed and not restarted, and the load goes on against the other. When
the load stops, the survivor must finish everything, the dead daemon's leased work included:
a dead daemon is noticed only by its leases lapsing (inbound mail after five minutes,
deliveries after fifteen: yizhan/daemon/processor.py and outbound.py, LEASE). The checks are
those of ``proofs.crash`` (every 250 answered once, no step decided twice, no request or
reminder twice, registration numbers 1..N, queues drained), and it prints how many messages
each daemon processed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import create_engine, select

from proofs.crash import (
    Bureau,
    Load,
    check,
    drain,
    make_reminders_due,
    scratch_database,
    verdict,
)
from yizhan.mailstore.models import Inbound

#: The survivor takes the dead daemon's leased work once the leases lapse (fifteen minutes for
#: deliveries), then drains.
DRAIN_SECONDS = 20 * 60


def run(seconds: float) -> int:
    root = Path(tempfile.mkdtemp(prefix="yztwo"))
    with scratch_database(True, root) as url:
        first = Bureau(root, url)
        second = Bureau(root, url, name="second")
        for daemon in (first, second):
            daemon.start()
        for daemon in (first, second):
            daemon.wait_listening()
        load = Load(first, servers=[first, second])
        load.start()
        started = time.monotonic()
        try:
            time.sleep(seconds / 2)
            make_reminders_due(first)
            time.sleep(seconds / 4)
            print(f"killing the first daemon: {len(load.acknowledged)} acknowledged", flush=True)
            first.kill()
            time.sleep(seconds / 4)
        finally:
            load.stop()
        print(f"load stopped: {len(load.acknowledged)} acknowledged; draining", flush=True)
        drained = drain(second, timeout=DRAIN_SECONDS)
        elapsed = time.monotonic() - started
        second.stop()
        engine = create_engine(url)
        with engine.connect() as conn:
            owners = Counter(
                owner.rsplit(":", 1)[-1] if owner else "-"
                for owner in conn.execute(select(Inbound.lease_owner)).scalars()
            )
        engine.dispose()
        problems = check(first, load)
        if not drained:
            problems["the queues did not drain"].append(f"still busy after {DRAIN_SECONDS} s")
    names = {str(first.port): "first", str(second.port): "second"}
    shares = ", ".join(f"{names.get(port, port)} {n}" for port, n in owners.items())
    print(f"PostgreSQL, two daemons: {elapsed:.0f} s; processed by {shares}")
    return verdict(problems)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120)
    args = parser.parse_args(argv)
    return run(args.seconds)


if __name__ == "__main__":
    sys.exit(main())
