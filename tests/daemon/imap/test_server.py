"""``[imap] server``: Yizhan files into an organisation's existing Dovecot as a master user.

The organisation's Dovecot here is a second, separate Dovecot configured with the lines
docs/deploy.md gives (read from that page), its lua passdb asking the daemon's admin page.
"""

from __future__ import annotations

import contextlib
import email
import imaplib
import os
import pwd
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from email import policy
from pathlib import Path

import pytest

from tests.conftest import fresh_database, make_config, seed_keyring
from tests.daemon.imap.conftest import free_port, reachable_dir, wait_until
from tests.daemon.test_flows import PASSWORD, Daemon, start_daemon
from yizhan.daemon.context import Context
from yizhan.daemon.imap.folders import TODO
from yizhan.daemon.imap.mutf7 import encode
from yizhan.mailstore.accounts import get_account
from yizhan.mailstore.db import upgrade

ROOT = Path(__file__).resolve().parents[3]


def deploy_lines(etc: Path) -> str:
    """The Dovecot lines of docs/deploy.md, with /etc/dovecot/ put at ``etc``."""
    page = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```dovecot\n(.*?)```", page, re.S)
    return block.replace("/etc/dovecot/", f"{etc}/")


def org_config(base: Path, port: int, user: str) -> str:
    """An organisation's Dovecot 2.3, unprivileged on loopback, plus the deploy.md lines."""
    return f"""\
protocols = imap
listen = 127.0.0.1
base_dir = {base}/run
state_dir = {base}/state
instance_name = org-{port}
log_path = {base}/dovecot.log
default_internal_user = {user}
default_internal_group = {user}
default_login_user = {user}
ssl = no
disable_plaintext_auth = no
auth_failure_delay = 0
mail_location = maildir:{base}/mail/%u
namespace inbox {{
  inbox = yes
  prefix =
}}
userdb {{
  driver = static
  args = uid={user} gid={user} home={base}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service auth {{
  user = $default_internal_user
}}
service auth-worker {{
  user = $default_internal_user
}}
{deploy_lines(base)}"""


@contextlib.contextmanager
def org_dovecot(base: Path, port: int) -> Iterator[None]:
    user = "yizhan-mail" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    for sub in ("run", "state", "mail"):
        (base / sub).mkdir(exist_ok=True)
    (base / "dovecot.conf").write_text(org_config(base, port, user), encoding="utf-8")
    command = ["dovecot", "-F", "-c", str(base / "dovecot.conf")]
    if os.geteuid() == 0:
        for path in base.rglob("*"):
            shutil.chown(path, user, user)
        shutil.chown(base, user, user)
        command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *command]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        yield
    finally:
        process.terminate()
        process.wait(15)


def yizhan_tool(config_file: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "yizhan.daemon.imap.org_dovecot", *args],
        env={**os.environ, "YIZHAN_CONFIG": str(config_file)},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def test_filing_into_an_existing_dovecot_as_master_user(system_key_home: Path) -> None:
    # The unit head logs in to the organisation's Dovecot with the Yizhan password and
    # finds the request Yizhan filed there in 公文/待辦.
    base, org = reachable_dir(), reachable_dir()
    org_port, admin_port = free_port(), free_port()
    (base / "master-password").write_text("org-master-secret-2026\n")
    sections = {
        "signing": {"require_signature": []},
        "admin": {"listen": f"127.0.0.1:{admin_port}"},
        "imap": {
            "listen": "",
            "server": f"127.0.0.1:{org_port}",
            "master_user": "yizhan",
            "master_password_file": str(base / "master-password"),
        },
        "relay": {"first_retry_seconds": 1},
    }
    with fresh_database(base) as url:
        config = make_config(base, url, **sections)
        config_file = base / "yizhan.toml"
        config_file.write_text(
            f'[yizhan]\ndata_dir = "{config.data_dir}"\nsecret = "{config.secret}"\n'
            f'[imap]\nlisten = ""\nmaster_user = "yizhan"\n'
            f'master_password_file = "{base / "master-password"}"\n',
            encoding="utf-8",
        )
        (org / "yizhan-passdb.lua").write_text(
            yizhan_tool(config_file, "lua", f"http://127.0.0.1:{admin_port}")
        )
        (org / "yizhan-master-users").write_text(yizhan_tool(config_file, "master-users"))
        seed_keyring(config, system_key_home)
        ctx = Context.open(config)
        upgrade(ctx.engine)
        with org_dovecot(org, org_port):
            daemon: Daemon = start_daemon(ctx)
            try:
                daemon.send("xiewenbin", "qianbao@oa.example", "關於外網接入的請示", "請審批。")

                def request() -> list[str]:
                    client = imaplib.IMAP4("127.0.0.1", org_port, timeout=10)
                    try:
                        client.login("liangguoqiang", PASSWORD)
                        kind, _ = client.select(f'"{encode(TODO)}"', readonly=True)
                        if kind != "OK":
                            return []
                        _, data = client.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
                        return [
                            str(email.message_from_bytes(item[1], policy=policy.default)["Subject"])
                            for item in data
                            if isinstance(item, tuple)
                        ]
                    finally:
                        client.logout()

                (subject,) = wait_until(request, timeout=30, what="the request")
                assert subject.endswith("關於外網接入的請示")
                # A wrong password at the organisation's Dovecot is Yizhan's failure count.
                with pytest.raises(imaplib.IMAP4.error):
                    imaplib.IMAP4("127.0.0.1", org_port).login("liangguoqiang", "wrong")
                with ctx.sessions() as session:
                    assert get_account(session, "liangguoqiang").failed_logins == 1
            finally:
                daemon.stop()
                ctx.close()
    shutil.rmtree(base, ignore_errors=True)
    shutil.rmtree(org, ignore_errors=True)
