#!/usr/bin/env bash
# Sets up, checks the frontend (vitest specs, tsc, eslint) and the Python (ruff, mypy, no missing
# migration), starts a private Redis, and runs the whole test suite (unit, integration with a real
# Celery worker, browser tests in headless chromium), then the CLI contract. Extra arguments go
# to pytest, which then runs alone (no frontend or Python checks, no CLI contract). Every part
# runs even when an earlier one failed; the exit status is non-zero if any did.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev

status=0
# The frontend first: its checks take seconds, pytest takes many minutes.
frontend_check() {
  local name=$1 start=$SECONDS; shift
  if (cd frontend && "$@"); then
    printf '[test] frontend %s passed (%ss)\n' "$name" $((SECONDS - start))
  else
    printf '\033[1;31m[test] frontend %s FAILED\033[0m\n' "$name"
    status=1
  fi
}
python_check() {
  local name=$1 start=$SECONDS; shift
  if "$@"; then
    printf '[test] python %s passed (%ss)\n' "$name" $((SECONDS - start))
  else
    printf '\033[1;31m[test] python %s FAILED\033[0m\n' "$name"
    status=1
  fi
}
if [ $# -eq 0 ]; then
  frontend_check specs npm run --silent test
  frontend_check types npm run --silent typecheck
  frontend_check lint npm run --silent lint
  python_check lint .venv/bin/ruff check --quiet .
  python_check types .venv/bin/mypy   # files and settings: pyproject.toml
  python_check migrations .venv/bin/python manage.py makemigrations --check --dry-run
fi

source scripts/services.sh
trap stop_services EXIT

export EMPORTAL_VAR_DIR=${EMPORTAL_VAR_DIR:-$PWD/var/test}
export MEDIA_ROOT=$EMPORTAL_VAR_DIR/media
export EMPORTAL_FAST_PASSWORD_HASHER=1
rm -rf "$MEDIA_ROOT"; mkdir -p "$MEDIA_ROOT"
REDIS_PORT=${TEST_REDIS_PORT:-$(free_port 6391)}
export REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
start_redis "$REDIS_PORT" "$EMPORTAL_VAR_DIR/redis"

.venv/bin/python -m pytest "$@" || status=$?
if [ $# -eq 0 ] && [ -f ../shared/checks/cli_contract.sh ]; then
  PY=.venv/bin/python bash ../shared/checks/cli_contract.sh || status=1
fi
exit $status
