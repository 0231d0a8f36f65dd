"""Times ``maildir.deliver_many`` alone: a sealed document's 1,000 copies into warm Maildirs.

``python -m bench.maildir_rounds --before /work/main/yizhan/mailstore/maildir.py`` runs the
``deliver_many`` of that file and of this tree alternately, each time into 1,000 fresh Maildirs
(made and synced before the clock starts), in two rounds of 500 as the outbound worker claims
them; each letter is a head of its own and the shared 283 KB body of ``bench.fanout``'s copies.
It prints each run's seconds and process CPU, then the median and the fastest of each. Without
the database, the seal and the worker, what is left is the writing and syncing of the files.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

#: A copy of bench.fanout's distribution: the 200 KB PDF in base64 inside the signed body.
BODY_BYTES = 283 * 1024
ROUND = 500


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison and print it."""
    parser = argparse.ArgumentParser(prog="python -m bench.maildir_rounds", description=__doc__)
    parser.add_argument("--before", type=Path, help="a maildir.py to compare with this tree's")
    parser.add_argument("--runs", type=int, default=5, help="runs of each")
    parser.add_argument("--copies", type=int, default=1000)
    parser.add_argument("--body", type=int, default=BODY_BYTES, help="bytes of the shared body")
    parser.add_argument("--dir", type=Path, default=None, help="where the Maildirs go")
    args = parser.parse_args(argv)
    here = Path(__file__).resolve().parent.parent / "yizhan" / "mailstore" / "maildir.py"
    modules = [_load("after", here)]
    if args.before is not None:
        modules.insert(0, _load("before", args.before))
    body = os.urandom(args.body)
    base = Path(tempfile.mkdtemp(prefix="yzm-", dir=args.dir))
    times: dict[str, list[float]] = {m.__name__: [] for m in modules}
    try:
        for run in range(args.runs):
            for module in modules:
                seconds, cpu = _once(module, base / f"{module.__name__}-{run}", body, args.copies)
                times[module.__name__].append(seconds)
                print(
                    f"{module.__name__:<7} {seconds:6.3f} s   CPU {cpu:5.3f} s   "
                    f"load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    for name, values in times.items():
        print(f"{name:<7} median {statistics.median(values):.3f} s, fastest {min(values):.3f} s")
    return 0


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # The dataclasses in it look their module up here.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _once(module: ModuleType, root: Path, body: bytes, copies: int) -> tuple[float, float]:
    accounts = [f"clerk{n:04d}" for n in range(copies)]
    for account in accounts:
        for sub in ("tmp", "new", "cur"):
            (root / account / sub).mkdir(parents=True)
    os.sync()
    cpu, start = time.process_time(), time.perf_counter()
    for first in range(0, copies, ROUND):
        letters = [
            module.Letter(
                account=account,
                parts=(
                    f"To: {account}@oa.example\r\nMessage-ID: <{n}@oa.example>\r\n\r\n".encode(),
                    body,
                ),
                unique=f"{n}-{root.name}",
                mail_from="cmd@oa.example",
                maybe_delivered=False,
            )
            for n, account in enumerate(accounts[first : first + ROUND], start=first)
        ]
        done = module.deliver_many(root, letters)
        if not all(isinstance(path, Path) for path in done):
            raise SystemExit(f"not delivered: {[d for d in done if not isinstance(d, Path)][:3]}")
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    shutil.rmtree(root)
    return seconds, cpu


if __name__ == "__main__":
    sys.exit(main())
