"""A real Postfix as the organisation's MTA in front of Yizhan (issue 13, parts 5 and 8).

Each test module gets its own Postfix instance: its own configuration directory, queue and
log under a fresh directory in /tmp, and free loopback ports, so that engineers' and CI's runs
side by side share nothing. ``postfix start`` needs root (its master binds the ports and hands
them to daemons that run as ``mail_owner``); every Postfix daemon runs as the user Yizhan's
Dovecot runs as (``yizhan-mail`` under root), which is what lets smtpd reach Dovecot's SASL
socket and the lmtp client its LMTP socket without loosening their modes. The configuration is
the one docs/deploy.md shows ("Postfix in front"):

* port "mx" (25 in production): mail from the world; the OA domain is routed to Yizhan by the
  transport map, the people's mailbox domain goes to Dovecot over LMTP, and nobody may use an
  address of either domain as the sender without logging in (``reject_sender_login_mismatch``);
* port "submission" (587): staff's mail clients, SMTP AUTH through Dovecot's SASL (so Yizhan's
  account policy decides), the same sender check against the login;
* port "yizhan": where Yizhan relays out (``[relay] host``), for this host only;
* every smtpd asks Yizhan's policy service (``[smtp] policy_listen``) at DATA, which prepends
  the signed ``X-Yizhan-Login`` header naming the SASL login.
"""

from __future__ import annotations

import os
import shutil
import smtplib
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.daemon.imap.conftest import free_port, imap_daemon, reachable_dir
from tests.daemon.test_flows import PASSWORD, Daemon
from yizhan.daemon.imap.dovecot import MASTER_USER, layout_for
from yizhan.daemon.imap.dovecot_conf import DovecotLayout
from yizhan.mailstore import accounts
from yizhan.mailstore.models import Account, Inbound

#: The domain of the people's own mailboxes, delivered by Postfix into Dovecot (bureau.toml).
MAILBOX_DOMAIN = "bureau.example"
OA_DOMAIN = "oa.example"
MTA_HOSTNAME = "mta.bureau.example"


@dataclass(frozen=True, kw_only=True)
class Ports:
    """The loopback ports of one Postfix instance."""

    mx: int
    submission: int
    yizhan: int

    @classmethod
    def free(cls) -> Ports:
        return cls(mx=free_port(), submission=free_port(), yizhan=free_port())


def main_cf(
    base: Path, *, user: str, yizhan_port: int, policy_port: int, dovecot: DovecotLayout
) -> str:
    """main.cf of one instance (the lines docs/deploy.md shows, with this instance's paths)."""
    return f"""\
compatibility_level = 3.6
queue_directory = {base}/queue
data_directory = {base}/data
mail_owner = {user}
myhostname = {MTA_HOSTNAME}
mydomain = {MAILBOX_DOMAIN}
myorigin = $mydomain
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
maillog_file = {base}/maillog
maillog_file_prefixes = {base}
smtputf8_enable = yes
biff = no
# Tests want mail to move at once.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
bounce_queue_lifetime = 0
# The OA domain is Yizhan's: the transport map sends it to Yizhan's SMTP port.
relay_domains = {OA_DOMAIN}
transport_maps = texthash:{base}/conf/transport
# A test MTA delivers nowhere off this host: any other domain bounces at once.
default_transport = error:5.1.2 no mail system for this domain on the test host
# The sealed login is for Yizhan alone: stripped from every other delivery.
smtp_header_checks = regexp:{base}/conf/login_header
lmtp_header_checks = regexp:{base}/conf/login_header
# People's own mailboxes: Dovecot, over LMTP.
virtual_mailbox_domains = {MAILBOX_DOMAIN}
virtual_transport = lmtp:unix:{dovecot.lmtp_socket}
# SASL through Dovecot, which asks Yizhan (one account, one policy).
smtpd_sasl_type = dovecot
smtpd_sasl_path = {dovecot.auth_client_socket}
smtpd_sasl_auth_enable = yes
# Which login owns which sender address: an account owns <account>@ of both domains.
smtpd_sender_login_maps = regexp:{base}/conf/sender_logins
smtpd_sender_restrictions = reject_sender_login_mismatch
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
# Yizhan's policy service signs the SASL login into X-Yizhan-Login; without it, no mail.
smtpd_data_restrictions = check_policy_service {{ inet:127.0.0.1:{policy_port},
    default_action=DEFER_IF_PERMIT }}
"""


def master_cf(ports: Ports) -> str:
    """master.cf: the three listeners and the daemons they need, none chrooted."""
    return f"""\
127.0.0.1:{ports.mx} inet n - n - - smtpd
127.0.0.1:{ports.submission} inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
127.0.0.1:{ports.yizhan} inet n - n - - smtpd
  -o syslog_name=postfix/from-yizhan
  -o smtpd_client_restrictions=permit_mynetworks,reject
  -o smtpd_sender_restrictions=
  -o smtpd_relay_restrictions=permit_mynetworks,reject
  -o smtpd_reject_unlisted_recipient=no
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
yizhan    unix  - - n - - smtp
  -o smtp_header_checks=
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
lmtp      unix  - - n - - lmtp
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


class Postfix:
    """One running Postfix instance; see the module docstring."""

    def __init__(self, base: Path, ports: Ports) -> None:
        self.base = base
        self.ports = ports
        self.conf = base / "conf"

    @property
    def log(self) -> str:
        """Postfix's log so far."""
        path = self.base / "maillog"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def postfix(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["postfix", "-c", str(self.conf), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    def wait_log(self, needle: str, *, timeout: float = 20) -> str:
        """Wait until the log holds ``needle``; the log."""
        deadline = time.monotonic() + timeout
        while needle not in (text := self.log):
            if time.monotonic() > deadline:
                raise AssertionError(f"Postfix never logged {needle!r}; its log:\n{text[-3000:]}")
            time.sleep(0.1)
        return text


@contextmanager
def running_postfix(
    *, ports: Ports, yizhan_port: int, policy_port: int, dovecot: DovecotLayout
) -> Iterator[Postfix]:
    """Write one instance's configuration, start it, and stop it afterwards."""
    if shutil.which("postfix") is None and not Path("/usr/sbin/postfix").exists():
        raise AssertionError("Postfix is not installed: run scripts/mailservers.sh")
    if os.geteuid() != 0:
        pytest.skip("Postfix's master process must be started by root")
    base = Path(tempfile.mkdtemp(prefix="yzpfx", dir="/tmp"))
    base.chmod(0o755)
    instance = Postfix(base, ports)
    conf = instance.conf
    conf.mkdir()
    (base / "queue").mkdir()
    data = base / "data"
    data.mkdir()
    shutil.chown(data, user=dovecot.user, group=dovecot.group)
    (conf / "main.cf").write_text(
        main_cf(
            base,
            user=dovecot.user,
            yizhan_port=yizhan_port,
            policy_port=policy_port,
            dovecot=dovecot,
        ),
        encoding="utf-8",
    )
    (conf / "master.cf").write_text(master_cf(ports), encoding="utf-8")
    (conf / "transport").write_text(
        f"{OA_DOMAIN} yizhan:[127.0.0.1]:{yizhan_port}\n", encoding="utf-8"
    )
    (conf / "login_header").write_text("/^X-Yizhan-Login:/ IGNORE\n", encoding="utf-8")
    (conf / "sender_logins").write_text(
        f"/^([^@+]+)@({OA_DOMAIN}|{MAILBOX_DOMAIN})$/ ${{1}}\n".replace(".", r"\."),
        encoding="utf-8",
    )
    started = instance.postfix("start")
    try:
        if started.returncode != 0:
            raise AssertionError(
                f"postfix start failed: {started.stdout}{started.stderr}{instance.log}"
            )
        instance.wait_log("daemon started")
        yield instance
    finally:
        instance.postfix("abort" if started.returncode == 0 else "status")
        deadline = time.monotonic() + 10
        while (data / "master.lock").exists() and _locked(data / "master.lock"):
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        shutil.rmtree(base, ignore_errors=True)


def _locked(path: Path) -> bool:
    # The master holds its lock file while it runs; "postfix status" would need the config.
    try:
        pid = int(path.read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return False
    return True


class Site:
    """Yizhan with its Dovecot, behind the organisation's Postfix."""

    def __init__(self, daemon: Daemon, postfix: Postfix) -> None:
        self.daemon = daemon
        self.postfix = postfix

    def swaks(self, *args: str, port: int | None = None) -> subprocess.CompletedProcess[str]:
        """swaks against Postfix (the submission port unless told otherwise)."""
        port = port or self.postfix.ports.submission
        return subprocess.run(
            ["swaks", "--server", f"127.0.0.1:{port}", "--timeout", "30", *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    def submit(self, account: str, message: EmailMessage) -> None:
        """Send as a mail client set up for Postfix's submission port would."""
        with smtplib.SMTP("127.0.0.1", self.postfix.ports.submission, timeout=30) as client:
            client.login(account, PASSWORD)
            client.send_message(message)

    def account(self, account: str) -> Account:
        with self.daemon.ctx.sessions() as session:
            return accounts.get_account(session, account)

    def inbound(self, subject_marker: str) -> list[Inbound]:
        """The inbound rows whose stored message contains ``subject_marker`` (ASCII)."""
        ctx = self.daemon.ctx
        with ctx.sessions() as session:
            rows = list(session.scalars(select(Inbound).order_by(Inbound.id)))
        return [r for r in rows if subject_marker.encode() in ctx.raw.read(r.path)]


@contextmanager
def postfix_site(system_key_home: Path, *, file_over_imap: bool) -> Iterator[Site]:
    """Yizhan with its Dovecot behind a Postfix of its own. ``file_over_imap``: Yizhan files
    people's mail into the Dovecot as master user (``[imap] server``); otherwise it relays
    people's mail out through Postfix, which delivers it into the Dovecot over LMTP."""
    ports, policy_port, imap_port = Ports.free(), free_port(), free_port()
    base = reachable_dir()
    # With a relay, people's own mail goes out through Postfix; filing, Yizhan files people's
    # mail into the same Dovecot as the organisation's IMAP server (``[imap] server``).
    filing = {
        "server": f"127.0.0.1:{imap_port}",
        "master_user": MASTER_USER,
        "master_password_file": str(base / "var" / "imap-master-password"),
    }
    with (
        imap_daemon(
            system_key_home,
            port=imap_port,
            base=base,
            smtp={"trusted_relays": ["127.0.0.1"], "policy_listen": f"127.0.0.1:{policy_port}"},
            relay={"host": "127.0.0.1", "port": ports.yizhan},
            imap=filing if file_over_imap else {},
        ) as daemon,
        running_postfix(
            ports=ports,
            yizhan_port=daemon.port,
            policy_port=policy_port,
            dovecot=layout_for(daemon.ctx.config),
        ) as postfix,
    ):
        yield Site(daemon, postfix)
