#!/usr/bin/env bash
# Runs the loader tests against a redis-server of its own: loopback, a free port, a temporary
# folder, no persistence; stopped on exit, whatever happens.
#   apps/cache/redis_loader_test.sh <loader_test binary> [gtest args]
set -euo pipefail
bin=$1
shift
if ! command -v redis-server >/dev/null; then
  echo "redis_loader_test: redis-server is not installed (scripts/setup); Redis cases skip" >&2
  exec "$bin" "$@"
fi
dir=$(mktemp -d /tmp/cohort-redis-XXXXXX)
pid=
cleanup() {
  if [[ -n "$pid" ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --save '' --appendonly no \
  --daemonize no --logfile "$dir/redis.log" &
pid=$!
for _ in $(seq 100); do
  if redis-cli -p "$port" ping >/dev/null 2>&1; then break; fi
  sleep 0.05
done
redis-cli -p "$port" ping >/dev/null || { echo "redis_loader_test: redis-server did not start" >&2; cat "$dir/redis.log" >&2; exit 1; }
COHORT_REDIS_PORT=$port "$bin" "$@"
