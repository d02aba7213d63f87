#!/usr/bin/env bash
# Installs Debian's Chromium for the webchat browser test when it is missing (needs root and apt-get).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium is not installed and cannot be installed here (needs root + apt-get); the browser test will skip" >&2
  exit 0
fi
echo "installing chromium (Debian package) for the webchat browser test..." >&2
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
