#!/usr/bin/env bash
# Installs the Dovecot that `yizhan serve` runs over <data_dir>/maildirs (idempotent; quiet when
# present): Debian 12's dovecot-core, dovecot-imapd, dovecot-lmtpd and dovecot-auth-lua (the
# lua passdb asks Yizhan itself over loopback HTTP; its dovecot.http client is in dovecot-core);
# and Postfix with swaks for the tests that put a real Postfix in front of Yizhan.
#
# Yizhan writes Dovecot 2.3 configuration; Dovecot 2.4 changed the syntax and removed settings
# it uses, so any other version is refused here with a clear message. The system's own Dovecot
# service is not started: Yizhan starts a private one, unprivileged, on a loopback port; as
# root, it adds the system user yizhan-mail that this Dovecot runs as.
set -euo pipefail

need=()
command -v dovecot >/dev/null 2>&1 || need+=(dovecot-core)
[ -x /usr/lib/dovecot/imap ] || need+=(dovecot-imapd)
[ -x /usr/lib/dovecot/lmtp ] || need+=(dovecot-lmtpd)
ls /usr/lib/dovecot/modules/auth/libauthdb_lua.so >/dev/null 2>&1 || need+=(dovecot-auth-lua)
# setpriv drops root to Dovecot's own user when the daemon runs as root.
command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
# The organisation's MTA in the integration tests (tests/daemon/postfix), and swaks, the SMTP
# client they submit with. Each test starts its own Postfix from its own configuration
# directory; the package's own instance stays unconfigured and stopped.
[ -x /usr/sbin/postfix ] || need+=(postfix)
command -v swaks >/dev/null 2>&1 || need+=(swaks)

if [ ${#need[@]} -ne 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "mailservers: missing ${need[*]}; install them with: sudo apt-get install ${need[*]}" >&2
    exit 1
  fi
  echo "mailservers: installing ${need[*]}"
  # "No configuration": no /etc/postfix/main.cf, so the system's Postfix does not start.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  # Another engineer's or job's apt may hold the lock: wait for it instead of failing.
  for attempt in $(seq 1 60); do
    if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      -o DPkg::Lock::Timeout=120 "${need[@]}" >/dev/null; then
      break
    fi
    [ "$attempt" -eq 60 ] && { echo "mailservers: apt-get install ${need[*]} failed" >&2; exit 1; }
    sleep 5
  done
fi

# Started by root, `yizhan serve` runs its Dovecot as this user, who owns <data_dir>/maildirs.
if [ "$(id -u)" -eq 0 ] && ! id yizhan-mail >/dev/null 2>&1; then
  echo "mailservers: adding the system user yizhan-mail (Yizhan's Dovecot and the Maildirs)"
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin yizhan-mail
fi

version=$(dovecot --version 2>/dev/null | awk '{print $1}')
case "$version" in
  2.3.*) ;;
  *)
    echo "mailservers: Dovecot ${version:-(none)} found; Yizhan's Dovecot configuration is" \
      "written for 2.3 (Debian 12's 2.3.19). Install dovecot-core 2.3, or set" \
      '[imap] listen = "" and file into an existing Dovecot with [imap] server.' >&2
    exit 1
    ;;
esac
