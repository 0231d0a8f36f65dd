"""Monitoring: /metrics counts what the daemon does, /healthz and /readyz say whether it can work,
and the JSON log names the Message-ID of the mail each line is about."""

from __future__ import annotations

import json
import os
import smtplib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from tests.conftest import make_config, seed_keyring
from tests.daemon.conftest import Files
from tests.daemon.test_flows import Daemon, reply, start_daemon
from yizhan.admin.app import create_app
from yizhan.cli.setup import DEMO_PASSWORD
from yizhan.daemon.context import Context
from yizhan.mailstore.db import upgrade

TOKEN = "scrape-token-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@pytest.fixture
def monitored(
    tmp_path: Path, database_url: str, system_key_home: Path, clamd_socket: str
) -> Iterator[tuple[Daemon, str]]:
    port = free_port()
    config = make_config(
        tmp_path,
        database_url,
        signing={"require_signature": []},
        admin={"listen": f"127.0.0.1:{port}"},
        metrics={"token": TOKEN},
    )
    seed_keyring(config, system_key_home)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    config.rules_file.write_text(f'[content.scanner]\nsocket = "{clamd_socket}"\n')
    ctx = Context.open(config)
    upgrade(ctx.engine)
    daemon = start_daemon(ctx)
    yield daemon, f"http://127.0.0.1:{port}"
    daemon.stop()
    ctx.close()


def test_metrics_count_mail_steps_jobs_and_latency(monitored: tuple[Daemon, str]) -> None:
    daemon, base = monitored
    status, text = get(base + "/metrics")
    assert status == 200
    before = samples(text)
    refused_key = (
        "yizhan_smtp_refused_total",
        (("code", "550"), ("stage", "RCPT"), ("status", "5.1.1")),
    )

    # Staff send a report (accepted) and mail to nobody (refused at RCPT, 5.1.1).
    daemon.send("xiewenbin", "qianbao@oa.example", "關於購置設備的請示", "擬購置一台。")
    daemon.inbox("xiewenbin")
    (ask,) = daemon.inbox("liangguoqiang")
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        daemon.send("wangfang", "nobody-here@oa.example", "x", "y")
    # An infected attachment is refused at DATA by the virus rule (clamd).
    with pytest.raises(smtplib.SMTPDataError):
        daemon.send("wangfang", "lijun@oa.example", "材料", "見附件", files={"a.png": Files.eicar})

    after = samples(get(base + "/metrics")[1])

    def grew(name: str) -> float:
        return after[(name, ())] - before[(name, ())]

    assert grew("yizhan_smtp_accepted_total") >= 1
    assert after[refused_key] == before.get(refused_key, 0) + 1
    virus = ("yizhan_content_refused_total", (("rule", "virus"),))
    assert after[virus] == before.get(virus, 0) + 1
    # The report waits on the head of the author's unit (inspection in the demo bureau).
    waiting = {k[1]: v for k, v in after.items() if k[0] == "yizhan_steps_waiting"}
    assert waiting == {(("unit", "inspection"),): 1}
    assert after[("yizhan_steps_overdue", (("unit", "inspection"),))] == 0
    assert after[("yizhan_queue_depth", (("queue", "inbound"),))] == 0
    assert ("yizhan_queue_oldest_age_seconds", (("queue", "outbound"),)) in after
    assert grew("yizhan_signing_seconds_count") > 0
    assert grew("yizhan_delivery_seconds_count") > 0
    assert after[("yizhan_job_runs_total", (("job", "reminders"),))] >= 1
    assert any(k[0] == "yizhan_job_last_run_timestamp_seconds" for k in after)

    reply(daemon, "liangguoqiang", ask, "同意")
    daemon.inbox("liangguoqiang")


def test_metrics_need_loopback_or_the_token(monitored: tuple[Daemon, str]) -> None:
    daemon, _base = monitored
    outside = TestClient(create_app(daemon.ctx), client=("192.0.2.7", 40000))
    assert outside.get("/metrics").status_code == 403
    assert outside.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert outside.get("/readyz").status_code == 403
    scraped = outside.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert scraped.status_code == 200 and "yizhan_queue_depth" in scraped.text
    assert outside.get("/healthz").json() == {"status": "alive"}


def test_readyz_names_the_part_that_is_down(monitored: tuple[Daemon, str], tmp_path: Path) -> None:
    daemon, base = monitored
    status, text = get(base + "/readyz")
    body = json.loads(text)
    assert status == 200, body
    assert {n for n, c in body["checks"].items() if c["ok"]} == {
        "database",
        "clamd",
        "gpg",
        "dovecot",
    }

    # clamd goes away (here: the rules name a socket nobody listens on).
    daemon.ctx.config.rules_file.write_text(
        f'[content.scanner]\nsocket = "{tmp_path / "gone.sock"}"\n'
    )
    status, text = get(base + "/readyz")
    body = json.loads(text)
    assert status == 503 and body["status"] == "not ready"
    assert not body["checks"]["clamd"]["ok"] and body["checks"]["database"]["ok"]
    assert get(base + "/healthz")[0] == 200


def test_json_log_names_the_message_id(tmp_path: Path, database_url: str) -> None:
    port = free_port()
    config = tmp_path / "yizhan.toml"
    config.write_text(
        f'[yizhan]\ndata_dir = "{tmp_path / "var"}"\n'
        f'[database]\nurl = "{database_url}"\n'
        f'[smtp]\nlisten = "127.0.0.1:{port}"\n[admin]\nlisten = "127.0.0.1:0"\n'
        '[imap]\nlisten = ""\n[log]\nformat = "json"\n',
        encoding="utf-8",
    )
    env = {**os.environ, "YIZHAN_CONFIG": str(config)}
    for verb in ("init", "demo"):
        subprocess.run(
            [sys.executable, "-m", "yizhan", verb], env=env, check=True, capture_output=True
        )
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "yizhan", "serve"], env=env, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
                    msg = EmailMessage()
                    msg["From"], msg["To"], msg["Subject"] = (
                        "wangfang@bureau.example",
                        "lijun@oa.example",
                        "材料",
                    )
                    msg["Message-ID"] = "<json-log-test@bureau.example>"
                    msg.set_content("請查收。")
                    client.login("wangfang", DEMO_PASSWORD)
                    client.send_message(msg)
                break
            except OSError:
                time.sleep(0.2)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and b"delivered" not in log.read_bytes():
            time.sleep(0.2)
    finally:
        daemon.terminate()
        daemon.wait(30)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    about = [line for line in lines if line["message_id"] == "<json-log-test@bureau.example>"]
    said = " | ".join(line["message"] for line in about)
    assert "accepted" in said and "processing" in said, log.read_text()[-3000:]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
