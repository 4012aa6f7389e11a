#!/usr/bin/env bash
# The system programs the tests need beyond Python: Debian's chromium and chromium-driver (the
# browser end-to-end test drives them). Installed with apt only when missing; sudo when not root.
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    exit 0
fi
as_root=""
if [ "$(id -u)" != 0 ]; then as_root="sudo"; fi
$as_root apt-get update -q
$as_root apt-get install -y -q --no-install-recommends chromium chromium-driver
