"""The raw message store shared by several daemons (docs/operations.md, several daemons)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.conftest import make_config
from yizhan.daemon.context import Context
from yizhan.mailstore.rawstore import STALE_TMP_SECONDS, RawStore


def test_a_restart_removes_only_temporary_files_left_long_ago(tmp_path: Path) -> None:
    # A daemon starting after a crash clears what its crash left in tmp/, but not the file
    # another daemon on the same store is writing right now.
    store = RawStore(tmp_path / "mail")
    store.prepare()
    left = store.tmp / "left-by-a-crash.eml"
    writing = store.tmp / "being-written.eml"
    left.write_bytes(b"half a message")
    writing.write_bytes(b"half a message")
    long_ago = time.time() - STALE_TMP_SECONDS - 60
    os.utime(left, (long_ago, long_ago))
    assert store.remove_stale_tmp() == 1
    assert not left.exists() and writing.exists()


def test_daemons_sharing_a_data_directory_hold_leases_under_different_names(
    tmp_path: Path, database_url: str
) -> None:
    # Two daemons on one host and data directory (one per SMTP port): one taking back its own
    # leases after a crash must not take the other's.
    first = make_config(tmp_path, database_url, smtp={"listen": "127.0.0.1:2525"})
    second = make_config(tmp_path, database_url, smtp={"listen": "127.0.0.1:2526"})
    names = set()
    for config in (first, second):
        ctx = Context.open(config)
        names.add(ctx.instance)
        ctx.close()
    assert len(names) == 2
