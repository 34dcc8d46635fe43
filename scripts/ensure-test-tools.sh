#!/usr/bin/env bash
# Installs what the browser tests need: Debian's chromium and axe-core from npm (package-lock.json).
set -euo pipefail
apt_install() {
  if [ "$(id -u)" = "0" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "$@" >/dev/null
  else
    echo "Missing: $*. Install them with: sudo apt-get install $*" >&2
    exit 1
  fi
}
[ -x /usr/bin/chromium ] || apt_install chromium
command -v npm >/dev/null || apt_install nodejs npm
if [ ! -f node_modules/axe-core/axe.min.js ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --silent
fi
