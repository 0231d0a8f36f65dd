#!/usr/bin/env bash
# Installs the Debian packages Yizhan needs beside Python: gpg (seals and signatures), a
# TrueType CJK font for the official PDF (ReportLab cannot embed Noto CJK's CFF outlines), and
# poppler-utils (the tests read the PDFs back), Chromium (the admin page's browser tests) and
# systemd-analyze (the units' check).
# Idempotent; quiet when all are present.
set -euo pipefail

need=()
command -v gpg >/dev/null 2>&1 || need+=(gnupg)
command -v gpgconf >/dev/null 2>&1 || need+=(gnupg)
[ -e /usr/share/fonts/truetype/arphic/uming.ttc ] || need+=(fonts-arphic-uming)
command -v pdftotext >/dev/null 2>&1 || need+=(poppler-utils)
# The admin page's browser tests drive Debian's Chromium (Playwright cannot download one here).
[ -x /usr/bin/chromium ] || need+=(chromium)
# `make lint` checks the systemd units with systemd-analyze verify.
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "system packages missing: ${need[*]}; install them with: sudo apt-get install ${need[*]}" >&2
  exit 1
fi
echo "installing ${need[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
