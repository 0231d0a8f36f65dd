"""Tests for `yizhan tool add|list|remove`, run as a program the way an administrator runs it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sqlalchemy import select

from tests.test_cli import yizhan
from yizhan.daemon.config import load_config
from yizhan.daemon.context import Context
from yizhan.mailstore.models import AuditEntry

pytest_plugins = ["tests.test_cli"]

#: The start of a Windows program: what the sniffer recognises by its bytes.
PROGRAM = b"MZ" + bytes(58) + b"\x80\x00\x00\x00" + bytes(64) + b"PE\x00\x00" + bytes(100)


def test_tool_add_list_replace_and_remove(initialised: Path, tmp_path: Path) -> None:
    # The administrator publishes an installer from the console (as IT does by mail with
    # TOOLS ADD), replaces it with a new version, and takes it down; each step is audited
    # under the console, and every failure is one line on stderr with a non-zero exit.
    installer = tmp_path / "vpn-setup.exe"
    installer.write_bytes(PROGRAM)
    added = yizhan(
        initialised, "tool", "add", "vpn-client", str(installer), "--description", "VPN 客戶端"
    )
    assert added.returncode == 0, added.stderr
    assert "version 1" in added.stdout and "application/x-msdos-program" in added.stdout

    listed = json.loads(yizhan(initialised, "tool", "list", "--json").stdout)
    assert [
        (t["name"], t["version"], t["filename"], t["size"], t["description"]) for t in listed
    ] == [("vpn-client", 1, "vpn-setup.exe", len(PROGRAM), "VPN 客戶端")]
    assert listed[0]["sha256"] == hashlib.sha256(PROGRAM).hexdigest()

    installer.write_bytes(PROGRAM + b"v2")
    again = yizhan(
        initialised, "tool", "add", "VPN-Client", str(installer), "--description", "新版"
    )
    assert again.returncode == 0 and "version 2" in again.stdout
    table = yizhan(initialised, "tool", "list")
    assert table.returncode == 0 and "VPN-Client" in table.stdout and "v2" in table.stdout

    removed = yizhan(initialised, "tool", "remove", "vpn-client")
    assert removed.returncode == 0 and "removed" in removed.stdout
    assert json.loads(yizhan(initialised, "tool", "list", "--json").stdout) == []
    assert "no tools" in yizhan(initialised, "tool", "list").stdout

    twice = yizhan(initialised, "tool", "remove", "vpn-client")
    assert twice.returncode != 0 and "no published tool" in twice.stderr
    assert len(twice.stderr.strip().splitlines()) == 1
    numeric = yizhan(initialised, "tool", "add", "123", str(installer), "--description", "x")
    assert numeric.returncode != 0 and "document ids" in numeric.stderr
    assert len(numeric.stderr.strip().splitlines()) == 1
    missing = yizhan(initialised, "tool", "add", "x", str(tmp_path / "nope"), "--description", "x")
    assert missing.returncode != 0 and "cannot be read" in missing.stderr
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    nothing = yizhan(initialised, "tool", "add", "x", str(empty), "--description", "x")
    assert nothing.returncode != 0 and "empty" in nothing.stderr

    ctx = Context.open(load_config(initialised))
    try:
        with ctx.sessions() as session:
            trail = session.scalars(
                select(AuditEntry).where(AuditEntry.action.like("tool.%")).order_by(AuditEntry.id)
            ).all()
            assert [(e.actor, e.action, e.detail["version"]) for e in trail] == [
                ("console", "tool.publish", 1),
                ("console", "tool.publish", 2),
                ("console", "tool.remove", 2),
            ]
    finally:
        ctx.close()
