#!/usr/bin/env bash
# Sets up, starts a private Redis, and runs the whole test suite (unit, integration
# with a real Celery worker, browser tests in headless chromium), then the CLI contract.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/services.sh
trap stop_services EXIT

export EMPORTAL_VAR_DIR=${EMPORTAL_VAR_DIR:-$PWD/var/test}
export MEDIA_ROOT=$EMPORTAL_VAR_DIR/media
export EMPORTAL_FAST_PASSWORD_HASHER=1
rm -rf "$MEDIA_ROOT"; mkdir -p "$MEDIA_ROOT"
REDIS_PORT=${TEST_REDIS_PORT:-$(free_port 6391)}
export REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
start_redis "$REDIS_PORT" "$EMPORTAL_VAR_DIR/redis"

status=0
.venv/bin/python -m pytest "$@" || status=$?
if [ $# -eq 0 ] && [ -f ../shared/checks/cli_contract.sh ]; then
  PY=.venv/bin/python bash ../shared/checks/cli_contract.sh || status=1
fi
exit $status
