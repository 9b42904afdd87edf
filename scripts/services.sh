# Shell functions to start the services EM Portal needs; sourced by run.sh and test.sh.
# Every process started here is remembered and stopped by stop_services.
PIDS=()

start_redis() {  # start_redis PORT DIR
  local dir
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
