#!/usr/bin/env bash
# Makes sure the dashboard's browser tests (services/gateway/tests/browser) can run: Debian's
# Chromium and its WebDriver at /usr/bin/chromium and /usr/bin/chromedriver (apt, when missing),
# and the pinned npm packages (axe-core) in services/gateway/tests/browser/node_modules, installed
# with `npm ci` from the committed lockfile when missing or older than the lockfile.
# Used by `make test`. Set MEISA_SKIP_DEPS=1 to manage all of this yourself.
set -euo pipefail

[ "${MEISA_SKIP_DEPS:-0}" = 1 ] && exit 0

cd "$(dirname "$0")/.."
say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  echo "need root to install $*; install them yourself, or run as root" >&2; exit 1; fi; }

apt_updated=0
apt_install() {
  if ! command -v apt-get >/dev/null; then
    echo "apt-get not found: install $* yourself (Chromium at /usr/bin/chromium, its chromedriver at /usr/bin/chromedriver, Node 18+ with npm)" >&2
    exit 1
  fi
  if [ "$apt_updated" = 0 ]; then say "apt-get update"; as_root apt-get update -qq; apt_updated=1; fi
  say "installing $* with apt (a large download the first time: a few minutes)"
  # Without recommends: they add udev, upower, a printer setup and a notification daemon, none of
  # which a headless browser uses. apt's own progress lines, one per package, so a long install
  # does not look stuck.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" \
    | grep --line-buffered -E '^(Get:|Setting up|Need to get)' >&2 || true
}

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  apt_install "${missing[@]}"
  for bin in /usr/bin/chromium /usr/bin/chromedriver; do
    [ -x "$bin" ] || { echo "$bin is still missing after installing ${missing[*]}" >&2; exit 1; }
  done
fi
say "browser: $(/usr/bin/chromium --version 2>/dev/null || echo 'chromium (version unknown)'); $(/usr/bin/chromedriver --version | cut -d' ' -f1-2)"

# node_modules is current when it was installed from this very lockfile: `npm ci` leaves a stamp.
dir=services/gateway/tests/browser
stamp="$dir/node_modules/.meisa-lock.sha256"
want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "npm ci in $dir (axe-core, pinned by package-lock.json)"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$stamp"
fi
say "axe-core $(node -p "require('./$dir/node_modules/axe-core/package.json').version") ready"
