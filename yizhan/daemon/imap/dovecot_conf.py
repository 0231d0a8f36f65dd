"""Writes the Dovecot 2.3 configuration of Yizhan's own Dovecot, and its lua passdb.

One Dovecot per data directory serves ``<data_dir>/maildirs/<account>/`` (Maildir++; each
person's Maildir is the root of their mailbox, folders as ``.公文.待辦`` in modified UTF-7 on
disk, ``/`` as the separator clients see). It runs unprivileged: every service as one user,
sockets and state in a short runtime directory, no chroot. Staff log in with their Yizhan
account: the lua passdb asks Yizhan itself over loopback HTTP (``yizhan.admin.dovecot_auth``),
so the lockout counter, suspension and last login are Yizhan's. Yizhan's own filing logs in as
``account*<master user>`` through a passwd-file master passdb, which Yizhan's endpoint never
sees, so it never counts as the person logging in.

The syntax is Dovecot 2.3's; 2.4 renamed and removed settings used here, which is why
``dovecot.check_version`` refuses any other version.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = [
    "MASTER_SEPARATOR",
    "PASSDB_PATH",
    "DovecotLayout",
    "master_passwd_line",
    "render_config",
    "render_lua",
]

#: Between the account and the master user in a master login: ``wangfang*yizhan-master``.
MASTER_SEPARATOR: Final = "*"
#: Where on the admin page the lua passdb asks (``yizhan.admin.dovecot_auth``).
PASSDB_PATH: Final = "/internal/dovecot"


@dataclass(frozen=True, kw_only=True)
class DovecotLayout:
    """Where one Dovecot keeps everything, and who it runs as."""

    #: Short runtime directory: config, lua, master users, base_dir and state_dir.
    runtime: Path
    maildirs: Path
    user: str
    group: str
    uid: int
    gid: int
    instance: str

    @property
    def config_file(self) -> Path:
        """dovecot.conf."""
        return self.runtime / "dovecot.conf"

    @property
    def lua_file(self) -> Path:
        """The passdb script; it holds the endpoint's secret, so only Dovecot's user reads it."""
        return self.runtime / "passdb.lua"

    @property
    def master_users_file(self) -> Path:
        """The passwd-file of Yizhan's master user (a salted hash)."""
        return self.runtime / "master-users"

    @property
    def base_dir(self) -> Path:
        """Dovecot's sockets and pid file (``master.pid``)."""
        return self.runtime / "run"

    @property
    def state_dir(self) -> Path:
        """Dovecot's state."""
        return self.runtime / "state"

    @property
    def pid_file(self) -> Path:
        """The master process's pid, as Dovecot writes it."""
        return self.base_dir / "master.pid"

    @property
    def auth_client_socket(self) -> Path:
        """Dovecot SASL for an MTA in front (Postfix ``smtpd_sasl_path``)."""
        return self.base_dir / "auth-client"

    @property
    def lmtp_socket(self) -> Path:
        """LMTP delivery into the Maildirs (Postfix ``mailbox_transport``)."""
        return self.base_dir / "lmtp"


def render_config(
    layout: DovecotLayout,
    *,
    host: str,
    port: int,
    loopback: bool,
    auth_failure_delay: int,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
) -> str:
    """dovecot.conf. Plain text IMAP only on loopback; elsewhere TLS is required."""
    if loopback:
        ssl = "ssl = no\ndisable_plaintext_auth = no\n"
    else:
        if tls_cert is None or tls_key is None:
            raise ValueError("IMAP off loopback needs a TLS certificate and key")
        ssl = (
            f"ssl = required\nssl_cert = <{tls_cert}\nssl_key = <{tls_key}\n"
            "disable_plaintext_auth = yes\n"
        )
    # Dovecot's own per-address penalty doubles each failed login's wait up to 15 s; with the
    # delay set to 0 (tests), it goes too, so that Yizhan's lockout is the one policy.
    penalty = (
        "  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n"
        if auth_failure_delay == 0
        else ""
    )
    return f"""\
# Written by Yizhan (yizhan/daemon/imap/dovecot_conf.py) at every start, for Dovecot 2.3.
protocols = imap lmtp
listen = {host}
base_dir = {layout.base_dir}
state_dir = {layout.state_dir}
instance_name = {layout.instance}
log_path = /dev/stderr
info_log_path = /dev/stderr
default_internal_user = {layout.user}
default_internal_group = {layout.group}
default_login_user = {layout.user}
first_valid_uid = {layout.uid}
first_valid_gid = {layout.gid}
{ssl}auth_mechanisms = plain login
auth_failure_delay = {auth_failure_delay}s
auth_master_user_separator = {MASTER_SEPARATOR}
mail_location = maildir:{layout.maildirs}/%u
# No statistics: nothing reads them, and each session's events cost its processes messages
# to the stats process (Dovecot's CPU for a filing login went from 0.85 to 0.60 ms without;
# under load the stats process fell behind and logins logged "Timeout waiting for handshake
# response").
stats_writer_socket_path =
# A handful of folders each: the mailbox list index would cost each APPEND one more fsync.
mailbox_list_index = no
mail_uid = {layout.uid}
mail_gid = {layout.gid}

namespace inbox {{
  inbox = yes
  separator = /
  prefix =
  # The OA folders exist and are subscribed from a person's first login (clients hide
  # folders that are not subscribed).
  mailbox "公文/待辦" {{
    auto = subscribe
  }}
  mailbox "公文/已辦" {{
    auto = subscribe
  }}
  mailbox "公文/公告" {{
    auto = subscribe
  }}
}}

passdb {{
  driver = passwd-file
  master = yes
  args = {layout.master_users_file}
}}
passdb {{
  driver = lua
  args = file={layout.lua_file} blocking=yes
}}
userdb {{
  driver = static
  args = uid={layout.uid} gid={layout.gid} home={layout.maildirs}/%u
}}

service imap-login {{
  chroot =
  # Login processes serve many connections each (Dovecot's high-performance mode) instead
  # of one new process per connection: a sealed document filed for a thousand people logs
  # in a thousand times, and the process made for each login was half of its cost.
  service_count = 0
  process_min_avail = 2
  process_limit = 1024
  inet_listener imap {{
    address = {host}
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  chroot =
}}
service submission-login {{
  chroot =
}}
service anvil {{
  chroot =
{penalty}}}
service auth {{
  user = $default_internal_user
}}
service auth-worker {{
  user = $default_internal_user
}}
service imap {{
  # One process per session: staff's clients and Yizhan's own filing sessions. A process
  # serves up to 100 sessions one after the other, and a few wait ready, rather than one
  # new process each (most of a filing login's time): every mailbox belongs to one user,
  # {layout.user}, so a process cannot reach anything another session's could not.
  service_count = 100
  process_min_avail = 4
  process_limit = 1024
}}
protocol imap {{
  mail_max_userip_connections = 50
}}
"""


def render_lua(*, url: str, secret: str) -> str:
    """The passdb script: each login and user lookup is a POST to Yizhan's endpoint."""
    return f"""\
-- Written by Yizhan (yizhan/daemon/imap/dovecot_conf.py): staff log in with their Yizhan
-- account; Yizhan counts failures, locks, and refuses suspended and revoked accounts.
local url = "{url}"
local secret = "{secret}"
local client = nil
local login_services = {{imap = true, pop3 = true, submission = true}}

function script_init()
  client = dovecot.http.client({{
    request_timeout_msecs = 15000,
    connect_timeout_msecs = 5000,
    max_attempts = 2,
    user_agent = "dovecot-yizhan",
  }})
  return 0
end

local function form(s)
  return (string.gsub(s or "", "[^%w%-%._~]", function(c)
    return string.format("%%%02X", string.byte(c))
  end))
end

local function ask(path, body)
  local request = client:request({{url = url .. path, method = "POST"}})
  request:add_header("Content-Type", "application/x-www-form-urlencoded")
  request:add_header("X-Yizhan-Dovecot", secret)
  request:set_payload(body)
  local response = request:submit()
  if response:status() ~= 200 then
    return nil, "Yizhan answered " .. response:status()
  end
  return string.match(response:payload(), "^(%a+)\\t?([^\\n]*)")
end

function auth_password_verify(req, pass)
  local verdict, detail = ask("/verify", "account=" .. form(req.user) .. "&password=" ..
    form(pass) .. "&service=" .. form(req.service) .. "&rip=" .. form(req.remote_ip))
  if verdict == "ok" then
    return dovecot.auth.PASSDB_RESULT_OK, {{user = detail}}
  elseif verdict == "refused" and login_services[req.service] then
    -- A login process refuses "nologin" and shows the person the reason.
    return dovecot.auth.PASSDB_RESULT_OK, {{nologin = "y", reason = detail}}
  elseif verdict == "refused" then
    -- Postfix's SASL ("smtp") knows no "nologin": it would let a locked account send.
    return dovecot.auth.PASSDB_RESULT_USER_DISABLED, detail
  elseif verdict == "fail" then
    return dovecot.auth.PASSDB_RESULT_PASSWORD_MISMATCH, detail
  end
  return dovecot.auth.PASSDB_RESULT_INTERNAL_FAILURE, detail or "no answer from Yizhan"
end

-- Lookups only (a master login's target, LMTP's userdb check): passwords are always checked
-- by auth_password_verify above, as only PLAIN and LOGIN are offered. Without "nopassword"
-- Dovecot fails the lookup for want of a password, and LMTP cannot deliver.
function auth_passdb_lookup(req)
  local verdict, detail = ask("/lookup", "account=" .. form(req.user))
  if verdict == "ok" then
    return dovecot.auth.PASSDB_RESULT_OK, {{user = detail, nopassword = "y"}}
  elseif verdict == "unknown" then
    return dovecot.auth.PASSDB_RESULT_USER_UNKNOWN, detail
  end
  return dovecot.auth.PASSDB_RESULT_INTERNAL_FAILURE, detail or "no answer from Yizhan"
end
"""


def master_passwd_line(user: str, password: str) -> str:
    """A passwd-file line for the master user: Dovecot's salted SHA-512 ({SSHA512})."""
    salt = secrets.token_bytes(16)
    digest = hashlib.sha512(password.encode("utf-8") + salt).digest()
    return f"{user}:{{SSHA512}}{base64.b64encode(digest + salt).decode('ascii')}\n"
