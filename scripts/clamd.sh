#!/usr/bin/env bash
# Starts a clamd for the test suite, with a signature database made here (idempotent).
#
# Signature downloads (freshclam) are not reachable from the build machines, and the official
# database takes a minute to load, so this clamd loads only the signatures written below: the
# EICAR test file by its MD5 (a .hdb line, "md5:size:name"). It listens on a unix socket with a
# short path (sun_path holds 107 bytes) and answers PING with PONG when it is ready.
#
#   scripts/clamd.sh           start (or find running) and wait until it answers
#   scripts/clamd.sh stop      stop the one this script started
#
# The tests find it through YIZHAN_TEST_CLAMD, the socket path printed on the last line.
set -euo pipefail

base=${YIZHAN_CLAMD_DIR:-/tmp/yizhan-clamd}
socket=$base/clamd.sock
conf=$base/clamd.conf
pidfile=$base/clamd.pid

ping_clamd() {
  # PING -> PONG over the socket (clamd's z-prefixed form: NUL-terminated command and reply).
  python3 - "$socket" <<'EOF' 2>/dev/null
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(2)
s.connect(sys.argv[1])
s.sendall(b"zPING\0")
sys.exit(0 if s.recv(16).rstrip(b"\0") == b"PONG" else 1)
EOF
}

if [[ ${1:-start} == stop ]]; then
  if [[ -f $pidfile ]]; then
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  fi
  exit 0
fi

if ! command -v clamd >/dev/null 2>&1; then
  echo "clamd: installing clamav-daemon"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clamav-daemon clamav >/dev/null
fi

if ping_clamd; then
  echo "clamd: ready on $socket"
  echo "$socket"
  exit 0
fi

mkdir -p "$base/db"
# EICAR's test string is 68 bytes with this MD5 (https://www.eicar.org); the string itself is
# not written here, so that no scanner quarantines this script.
echo "44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test-Signature" >"$base/db/yizhan-test.hdb"

cat >"$conf" <<EOF
LocalSocket $socket
LocalSocketMode 660
FixStaleSocket yes
PidFile $pidfile
DatabaseDirectory $base/db
LogFile $base/clamd.log
LogTime yes
Foreground no
# Archives and mail are unpacked by clamd too; the gateway's own limits refuse bombs first.
ScanArchive yes
ScanMail yes
StreamMaxLength 64M
MaxThreads 4
ReadTimeout 30
CommandReadTimeout 30
SelfCheck 0
EOF
# Run as the invoking user (no User line), so the socket and files stay ours.

rm -f "$socket"
echo "clamd: starting (database $base/db)"
clamd --config-file="$conf"
for _ in $(seq 1 60); do
  ping_clamd && break
  sleep 0.5
done
if ! ping_clamd; then
  echo "clamd: not answering on $socket; see $base/clamd.log" >&2
  tail -n 20 "$base/clamd.log" >&2 || true
  exit 1
fi
echo "clamd: ready on $socket"
echo "$socket"
