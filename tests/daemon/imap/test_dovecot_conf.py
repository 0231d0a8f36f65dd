"""Yizhan's Dovecot configuration is valid Dovecot 2.3 and says what the design needs, and the
``[imap]`` and ``[fetch]`` keys are checked like every other key."""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

import pytest

from yizhan.daemon.config import ConfigError, HostPort, parse_config
from yizhan.daemon.imap.dovecot import check_version
from yizhan.daemon.imap.dovecot_conf import DovecotLayout, render_config
from yizhan.daemon.imap.pool import imap_target


def layout(tmp_path: Path) -> DovecotLayout:
    entry = pwd.getpwuid(os.geteuid())
    return DovecotLayout(
        runtime=tmp_path / "rt",
        maildirs=tmp_path / "maildirs",
        user=entry.pw_name,
        group=entry.pw_name,
        uid=entry.pw_uid,
        gid=entry.pw_gid,
        instance="yizhan-test",
    )


def test_the_configuration_is_what_dovecot_2_3_reads(tmp_path: Path) -> None:
    # `dovecot -n` parses the file as the installed Dovecot (2.3) does; a syntax it does
    # not know, or a setting it lacks, fails here.
    assert check_version().startswith("2.3.")
    where = layout(tmp_path)
    text = render_config(where, host="127.0.0.1", port=11430, loopback=True, auth_failure_delay=0)
    conf = tmp_path / "dovecot.conf"
    conf.write_text(text, encoding="utf-8")
    shown = subprocess.run(
        ["dovecot", "-n", "-c", str(conf)], capture_output=True, text=True, check=False
    )
    assert shown.returncode == 0, shown.stderr
    assert "ssl = no" in shown.stdout
    assert "separator = /" in shown.stdout
    assert f"mail_location = maildir:{where.maildirs}/%u" in shown.stdout
    assert "auto = subscribe" in shown.stdout


def test_off_loopback_tls_is_required(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        render_config(
            layout(tmp_path), host="0.0.0.0", port=993, loopback=False, auth_failure_delay=2
        )
    text = render_config(
        layout(tmp_path),
        host="0.0.0.0",
        port=143,
        loopback=False,
        auth_failure_delay=2,
        tls_cert=tmp_path / "c.pem",
        tls_key=tmp_path / "k.pem",
    )
    assert "ssl = required" in text and "disable_plaintext_auth = yes" in text


def test_imap_keys_default_and_checked() -> None:
    # The default serves IMAP on 127.0.0.1:1143 and files into it; "" turns it off.
    config = parse_config({})
    assert config.imap.listen == HostPort(host="127.0.0.1", port=1143)
    target = imap_target(config)
    assert target is not None and target.own and target.port == 1143
    assert imap_target(parse_config({"imap": {"listen": ""}})) is None
    # With a relay, people's mail goes to their own mailboxes, not into Yizhan's Dovecot.
    assert imap_target(parse_config({"relay": {"host": "mx.example"}})) is None
    server = parse_config(
        {
            "imap": {
                "listen": "",
                "server": "imap.bureau.example:143",
                "master_user": "yizhan",
                "master_password_file": "/etc/yizhan/imap-master",
            }
        }
    )
    target = imap_target(server)
    assert target is not None and not target.own
    assert target.login("lijun") == "lijun*yizhan"
    for raw, key in [
        ({"imap": {"server": "imap.example:143"}}, "imap.server"),
        ({"imap": {"listen": "127.0.0.1:0"}}, "imap.listen"),
        ({"imap": {"auth_failure_delay": 99}}, "imap.auth_failure_delay"),
        ({"imap": {"bogus": 1}}, "imap.bogus"),
        ({"fetch": {"server": "imap.example:143"}}, "fetch.server"),
        ({"fetch": {"folder": "INBOX", "processed_folder": "INBOX"}}, "fetch.processed_folder"),
    ]:
        with pytest.raises(ConfigError) as refused:
            parse_config(raw)
        assert refused.value.key == key


def test_admin_public_url_defaults_to_the_listen_address() -> None:
    # Kept with its final "/", so that mails can name pages under it (…/help).
    assert parse_config({}).admin_public_url == "http://127.0.0.1:8080/"
    assert parse_config({"admin": {"listen": "0.0.0.0:9000"}}).admin_public_url == (
        "http://127.0.0.1:9000/"
    )
    shown = parse_config({"admin": {"public_url": "https://oa.bureau.example"}})
    assert shown.admin_public_url == "https://oa.bureau.example/"
