#!/usr/bin/env bash
# Sets up and runs EM Portal at http://127.0.0.1:8000 with the demo project loaded:
# Redis, a Celery worker (queues default and gpu, with the job reaper) and Daphne.
# Ctrl-C stops all of them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/services.sh
trap 'echo; echo "stopping EM Portal"; stop_services' EXIT
trap 'exit 130' INT TERM

PORT=${PORT:-8000}
# REDIS_URL names a Redis you run yourself; otherwise a private one starts on REDIS_PORT
# (default: the first free port from 6379), never one another run started.
if [ -z "${REDIS_URL:-}" ]; then
  REDIS_PORT=${REDIS_PORT:-$(free_port 6379)}
  export REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
  start_redis "$REDIS_PORT" var/redis
fi
.venv/bin/python manage.py load_demo
.venv/bin/celery -A emportal worker -Q default,gpu -c 2 -B -s var/celerybeat-schedule --loglevel=INFO \
  >var/worker.log 2>&1 &
PIDS+=($!)
.venv/bin/daphne -b 127.0.0.1 -p "$PORT" emportal.asgi:application &
PIDS+=($!)
echo "EM Portal runs at http://127.0.0.1:$PORT  (user demo; worker log in var/worker.log; Ctrl-C stops)"
wait -n "${PIDS[@]}"
