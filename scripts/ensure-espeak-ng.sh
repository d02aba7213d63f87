#!/usr/bin/env bash
# Installs Debian's espeak-ng, the offline voice pipeline's speech synthesiser (chorus/voice/offline_tts.py),
# when it is missing (needs root and apt-get); without it the voice tests say what to install.
set -euo pipefail
if command -v espeak-ng >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "espeak-ng is not installed and cannot be installed here (needs root + apt-get): apt-get install espeak-ng" >&2
  exit 0
fi
echo "installing espeak-ng (Debian package) for the offline voice pipeline..." >&2
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng >/dev/null
