"""Prints the files an organisation's own Dovecot needs to let Yizhan file into it.

``[imap] server`` points Yizhan at an existing Dovecot (docs/deploy.md): that Dovecot checks
Yizhan's master user against a passwd-file and its staff against Yizhan itself, through the
same lua passdb Yizhan's own Dovecot uses. Run on the Yizhan host, with its configuration::

    python -m yizhan.daemon.imap.org_dovecot lua URL > /etc/dovecot/yizhan-passdb.lua
    python -m yizhan.daemon.imap.org_dovecot master-users > /etc/dovecot/yizhan-master-users

URL is where that Dovecot reaches Yizhan's admin page (``http://host:8080``). The lua file
holds the secret Yizhan's endpoint asks for; keep both files readable by Dovecot only.
"""

from __future__ import annotations

import sys

from yizhan.daemon.config import ConfigError, load_config
from yizhan.daemon.imap.dovecot import passdb_secret
from yizhan.daemon.imap.dovecot_conf import PASSDB_PATH, master_passwd_line, render_lua

__all__ = ["main"]

USAGE = "usage: python -m yizhan.daemon.imap.org_dovecot lua URL | master-users"


def main(argv: list[str]) -> int:
    """Print the requested file; 2 with the usage on a bad command line."""
    try:
        config = load_config()
    except ConfigError as exc:
        print(f"yizhan: {exc}", file=sys.stderr)
        return 1
    if len(argv) == 2 and argv[0] == "lua":
        url = argv[1].rstrip("/") + PASSDB_PATH
        sys.stdout.write(render_lua(url=url, secret=passdb_secret(config)))
        return 0
    if argv == ["master-users"]:
        imap = config.imap
        if not imap.master_user or imap.master_password_file is None:
            print("yizhan: set [imap] master_user and master_password_file first", file=sys.stderr)
            return 1
        password = imap.master_password_file.read_text(encoding="utf-8").strip()
        sys.stdout.write(master_passwd_line(imap.master_user, password))
        return 0
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
