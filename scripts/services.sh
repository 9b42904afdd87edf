# Shell functions to start the services EM Portal needs; sourced by run.sh and test.sh.
# Every process started here is remembered and stopped by stop_services.
PIDS=()

free_port() {  # free_port FIRST: prints the first port >= FIRST that nothing listens on
  python3 - "$1" <<'PY'
import socket, sys
port = int(sys.argv[1])
while True:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            break
        except OSError:
            port += 1
print(port)
PY
}

start_redis() {  # start_redis PORT DIR: a private Redis; refuses a port another run holds
  local dir
  if redis-cli -p "$1" ping >/dev/null 2>&1; then
    echo "port $1 already serves a Redis this run did not start; choose another port" >&2
    return 1
  fi
  dir=$(mkdir -p "$2" && cd "$2" && pwd)  # absolute: redis changes into --dir before opening its log
  redis-server --port "$1" --bind 127.0.0.1 --dir "$dir" --save "" --appendonly no \
    --daemonize no --logfile "$dir/redis.log" &
  PIDS+=($!)
  for _ in $(seq 50); do
    redis-cli -p "$1" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "redis did not start on port $1; see $2/redis.log" >&2
  return 1
}

stop_services() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
}
