#!/usr/bin/env bash
# Print the path of Debian's chromium for the dashboard's browser test, installing it if missing and we are root.
set -euo pipefail
if [ -n "${TWB_CHROMIUM:-}" ]; then echo "$TWB_CHROMIUM"; exit 0; fi
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then echo "chromium is not installed; run: sudo apt-get install -y chromium" >&2; exit 1; fi
  echo "installing Debian's chromium ..." >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
fi
command -v chromium
