#!/usr/bin/env bash
# The cache over real processes (issue 7): a redis-server of its own on loopback (free port,
# temporary folder, no persistence), 3 cache_worker members over shm reading and writing a
# shared working set, member 2 SIGKILLed mid-run. Each worker checks every value it gets against
# the writes it knows it delivered (cache_worker.cc); the survivors must go on serving after the
# kill. Ends with one summary line.
#   tests/integration/cache_redis_test.sh <cache_worker binary>
set -euo pipefail
worker=$1
if ! command -v redis-server >/dev/null; then
  echo "cache_redis_test: SKIP: redis-server is not installed (scripts/setup)"
  exit 77
fi
dir=$(mktemp -d /tmp/cohort-cache-redis-XXXXXX)
shm=$(mktemp -d /dev/shm/cohort-cache-redis-XXXXXX)
pids=()
redis_pid=
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  if [[ -n "$redis_pid" ]]; then kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi
  rm -rf "$dir" "$shm"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --save '' --appendonly no \
  --logfile "$dir/redis.log" &
redis_pid=$!
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
keys=60
for ((k = 0; k < keys; k++)); do echo "SET k$k 0"; done | redis-cli -p "$port" >/dev/null

run_ms=5000
"$worker" "$shm" 0 1 "$port" "$run_ms" "$keys" >"$dir/w0.out" 2>"$dir/w0.err" &
pids+=($!)
sleep 0.3
"$worker" "$shm" 1 0 "$port" "$run_ms" "$keys" >"$dir/w1.out" 2>"$dir/w1.err" &
pids+=($!)
"$worker" "$shm" 2 0 "$port" "$run_ms" "$keys" >"$dir/w2.out" 2>"$dir/w2.err" &
pids+=($!)
sleep 2
kill -9 "${pids[2]}"
status=0
for i in 0 1; do
  if ! wait "${pids[$i]}"; then
    status=1
    echo "cache_redis_test: worker $i failed; the end of its stderr:" >&2
    tail -n 20 "$dir/w$i.err" >&2
  fi
done
cat "$dir/w0.out" "$dir/w1.out"
grep -h STALE "$dir"/w*.err >&2 || true
summary=$(cat "$dir/w0.out" "$dir/w1.out" | awk '{g+=$4; l+=$6; s+=$8; p+=$12; st+=$14; w+=$16; r+=$18} END {printf "gets %d late_gets %d stale %d peer %d store %d puts %d read_in_place %d", g, l, s, p, st, w, r}')
# Peers' values read in place (their shm mirrors, on by default) must be part of what is tested.
reads=$(cat "$dir/w0.out" "$dir/w1.out" | awk '{r+=$18} END {print r+0}')
if [[ "$reads" -eq 0 ]]; then
  echo "cache_redis_test: no peer's value was read in place (apps/cache/NOTES.md, Peer reads)" >&2
  status=1
fi
late0=$(awk '{print $6}' "$dir/w0.out")
late1=$(awk '{print $6}' "$dir/w1.out")
if [[ -z "$late0" || -z "$late1" || "$late0" -eq 0 || "$late1" -eq 0 ]]; then
  echo "cache_redis_test: a survivor stopped serving after the kill" >&2
  for i in 0 1; do
    echo "cache_redis_test: the end of worker $i's stderr:" >&2
    tail -n 20 "$dir/w$i.err" >&2
  done
  status=1
fi
echo "cache_redis_test: 3 members over shm + redis, n2 SIGKILLed at 2.3 s: $summary: $([[ $status -eq 0 ]] && echo ok || echo FAILED)"
exit $status
