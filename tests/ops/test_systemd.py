"""Under systemd (Type=notify): the daemon says READY=1 once it accepts mail, pings the watchdog
while it runs and says STOPPING=1 on SIGTERM; a schema it does not know stops it with the
command to run. The units themselves are checked by `make lint` (systemd-analyze verify)."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def setup(tmp_path: Path, database_url: str) -> tuple[dict[str, str], int]:
    port = free_port()
    config = tmp_path / "yizhan.toml"
    config.write_text(
        f'[yizhan]\ndata_dir = "{tmp_path / "var"}"\n'
        f'[database]\nurl = "{database_url}"\n'
        f'[smtp]\nlisten = "127.0.0.1:{port}"\n[admin]\nlisten = "127.0.0.1:0"\n'
        '[imap]\nlisten = ""\n',
        encoding="utf-8",
    )
    env = {**os.environ, "YIZHAN_CONFIG": str(config)}
    subprocess.run(
        [sys.executable, "-m", "yizhan", "init"], env=env, check=True, capture_output=True
    )
    return env, port


def test_the_daemon_notifies_systemd(tmp_path: Path, database_url: str) -> None:
    env, port = setup(tmp_path, database_url)
    # The service manager's side: a datagram socket named in $NOTIFY_SOCKET.
    path = str(Path("/tmp") / f"yz-notify-{os.getpid()}-{port}")
    manager = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    manager.bind(path)
    manager.settimeout(60)
    env |= {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"}
    daemon = subprocess.Popen(
        [sys.executable, "-m", "yizhan", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        first = manager.recv(4096).decode()
        assert first.splitlines()[0] == "READY=1" and f"port {port}" in first
        # READY comes once the listener accepts mail.
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            assert client.noop()[0] == 250
        pings = [manager.recv(4096).decode() for _ in range(3)]
        assert pings == ["WATCHDOG=1"] * 3
        daemon.send_signal(signal.SIGTERM)
        said = []
        deadline = time.monotonic() + 30
        while "STOPPING=1" not in said and time.monotonic() < deadline:
            said.append(manager.recv(4096).decode())
        assert "STOPPING=1" in said
        assert daemon.wait(30) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
        manager.close()
        os.unlink(path)


def test_the_daemon_refuses_an_older_schema_naming_the_command(
    tmp_path: Path, database_url: str
) -> None:
    env, _port = setup(tmp_path, database_url)
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0015'"))
    engine.dispose()
    result = subprocess.run(
        [sys.executable, "-m", "yizhan", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "older than this Yizhan" in result.stderr and "`yizhan migrate`" in result.stderr
