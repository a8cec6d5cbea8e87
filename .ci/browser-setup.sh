#!/bin/sh
# Install Debian's Chromium for the browser tests (tests/browser), quietly and idempotently.
# Playwright drives /usr/bin/chromium; its own browser download ('playwright install') is never used.
# Without Chromium the browser tests skip and say why, so a failure here never fails CI by itself.
set -eu
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "browser-setup: not root, cannot apt-get install chromium; browser tests will skip" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }; then
    echo "browser-setup: apt-get install chromium failed; browser tests will skip" >&2
    exit 0
fi
echo "browser-setup: $(/usr/bin/chromium --version 2>/dev/null || echo chromium installed)"
