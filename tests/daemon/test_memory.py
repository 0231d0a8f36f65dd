"""The daemon's memory (issue 16): what a processing worker loads, and the argon2 checks of
logins that come together. Each runs in a fresh interpreter, whose peak resident size (VmHWM)
is that of the code under test alone."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

#: Reads the process's resident size and its peak, MiB.
_STATUS = """
def status():
    found = {}
    for line in open("/proc/self/status"):
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0]) / 1024
    return found
"""


def run(code: str) -> dict[str, object]:
    """Run ``code`` in a new interpreter; it prints one JSON object, returned here."""
    done = subprocess.run(
        [sys.executable, "-c", _STATUS + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    found: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return found


def test_a_processing_worker_loads_no_verbs_migrations_or_pdf_libraries() -> None:
    # A worker is spawned: it imports the daemon's main module and the worker's own. Before,
    # it hashed a password at import (64 MiB of peak for nothing) and loaded every verb,
    # Alembic, pypdf and ReportLab (~35 MiB), none of which processing a command needs.
    found = run(
        """
        import json, sys
        import yizhan.__main__, yizhan.daemon.workers
        loaded = [m for m in ("yizhan.cli", "alembic", "pypdf", "reportlab") if m in sys.modules]
        print(json.dumps({**status(), "loaded": loaded}))
        """
    )
    assert found["loaded"] == []
    assert float(found["VmHWM"]) - float(found["VmRSS"]) < 16  # type: ignore[arg-type]


def test_logins_at_the_same_moment_check_one_password_at_a_time() -> None:
    # Eight mail clients log in together: each argon2 check takes 64 MiB for its moment, and
    # the daemon's peak must not grow by eight (or two) of them.
    found = run(
        """
        import json, threading
        from pathlib import Path
        from yizhan.mailstore import accounts
        stored = accounts._hasher.hash("Qingshui-River-88")
        accounts._verify(stored, "Qingshui-River-88")
        Path("/proc/self/clear_refs").write_text("5")
        before = status()["VmRSS"]
        results = []
        threads = [
            threading.Thread(target=lambda: results.append(
                accounts._verify(stored, "Qingshui-River-88")))
            for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        print(json.dumps({"rise": status()["VmHWM"] - before, "ok": results}))
        """
    )
    assert found["ok"] == [True] * 8
    assert 50 < float(found["rise"]) < 100  # type: ignore[arg-type]
