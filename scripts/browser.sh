#!/usr/bin/env bash
# Make sure Debian's chromium is installed for the browser tests (tests/admin/test_browser.py drives it with
# Playwright; no browser is ever downloaded). Installs it when missing, refreshing the package lists only if the
# install fails without them. Non-interactive (CI has no stdin). Fails loudly.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
  echo "browser: $(timeout 30 "$CHROMIUM" --version 2>/dev/null || echo chromium) at $CHROMIUM"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "browser: $CHROMIUM is missing and installing it needs root:" \
    "apt-get install -y --no-install-recommends chromium" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Wait for another apt (someone else's install on a shared machine) instead of failing on its lock.
APT=(apt-get -q -o DPkg::Lock::Timeout=300)
install_chromium() { "${APT[@]}" install -y --no-install-recommends chromium </dev/null; }

echo "browser: installing chromium"
if ! install_chromium; then
  echo "browser: the install failed; refreshing the package lists and trying again"
  "${APT[@]}" update </dev/null || { echo "browser: apt-get update failed" >&2; exit 1; }
  install_chromium || { echo "browser: apt-get install chromium failed" >&2; exit 1; }
fi
if [ ! -x "$CHROMIUM" ]; then
  echo "browser: chromium is installed but $CHROMIUM is missing" >&2
  exit 1
fi
echo "browser: $(timeout 30 "$CHROMIUM" --version 2>/dev/null || echo chromium) installed at $CHROMIUM"
