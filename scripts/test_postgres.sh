#!/usr/bin/env bash
# Runs the test suite against PostgreSQL 15 started in a temporary data directory.
set -euo pipefail
cd "$(dirname "$0")/.."
EMPORTAL_NEED_POSTGRES=1 bash scripts/setup.sh --dev
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
DATA=$(mktemp -d)
PGPORT=${PGPORT:-54329}
RUNAS=""
if [ "$(id -u)" = 0 ]; then chown postgres "$DATA"; RUNAS="runuser -u postgres --"; fi
cleanup() { $RUNAS "$BIN/pg_ctl" -D "$DATA" -m fast stop >/dev/null 2>&1 || true; rm -rf "$DATA"; }
trap cleanup EXIT
$RUNAS "$BIN/initdb" -D "$DATA" -U emportal --auth=trust >/dev/null
$RUNAS "$BIN/pg_ctl" -D "$DATA" -o "-p $PGPORT -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off" -w start >/dev/null
export DATABASE_URL="postgres://emportal@127.0.0.1:$PGPORT/emportal"
"$BIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U emportal emportal
bash scripts/test.sh "$@"
