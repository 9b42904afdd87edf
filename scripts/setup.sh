#!/usr/bin/env bash
# Installs everything EM Portal needs and prepares the database. Idempotent and quick
# when nothing changed: each step keeps a stamp of what it installed.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }

# Debian packages: Redis for Celery and websockets, chromium for the browser tests.
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ "${EMPORTAL_NEED_POSTGRES:-0}" = 1 ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  say "installing Debian packages: ${need[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
fi

# Python: a venv with the pinned runtime requirements (torch pinned to the CPU wheel); with
# --dev (scripts/test.sh) also the test and check tools of requirements-dev.txt.
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $PYTHON"
  "$PYTHON" -m venv .venv
fi
kind=runtime; req=requirements.txt
[ "${1:-}" = --dev ] && { kind=dev; req=requirements-dev.txt; }
req_sum=$(cat requirements.txt requirements-dev.txt constraints.txt | sha256sum | cut -d' ' -f1)
have=$(cat .venv/.requirements.sha 2>/dev/null || true)
# A dev install holds the runtime too, so it satisfies either kind.
if [ "$have" != "$req_sum dev" ] && [ "$have" != "$req_sum $kind" ]; then
  say "installing Python packages ($req)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r "$req"
  echo "$req_sum $kind" > .venv/.requirements.sha
fi

# Frontend: npm packages and the Vite build, redone only when the sources changed.
if [ -f frontend/package.json ]; then
  lock_sum=$(cat frontend/package.json frontend/package-lock.json 2>/dev/null | sha256sum | cut -d' ' -f1)
  if [ ! -d frontend/node_modules ] || [ "$(cat frontend/node_modules/.emportal.sha 2>/dev/null)" != "$lock_sum" ]; then
    say "installing npm packages"
    (cd frontend && npm ci --no-audit --no-fund --loglevel=error)
    echo "$lock_sum" > frontend/node_modules/.emportal.sha
  fi
  src_sum=$(find frontend/src frontend/package.json frontend/vite.config.* frontend/tsconfig*.json -type f \
            -exec sha256sum {} + 2>/dev/null | sort | sha256sum | cut -d' ' -f1)
  # The templates find the content-hashed bundles through Vite's manifest (emportal/vite_assets.py).
  if [ "$(cat frontend/dist/.emportal.sha 2>/dev/null)" != "$src_sum" ] || [ ! -f frontend/dist/.vite/manifest.json ]; then
    say "building the frontend"
    (cd frontend && npm run build --silent)
    echo "$src_sum" > frontend/dist/.emportal.sha
  fi
fi

say "migrating the database"
.venv/bin/python manage.py migrate --noinput -v 0
