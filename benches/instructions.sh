#!/usr/bin/env bash
# Instructions a single dkv-node spends per request, under callgrind: the
# difference between a long and a short redis-benchmark run, divided by
# the difference in requests, so start-up and shutdown cancel out. Far
# steadier than ops/s on a shared 2-core machine.
#
#   benches/instructions.sh
#   BASELINE=/path/to/old/dkv-node benches/instructions.sh   # both builds
#   LONG=120000 SHORT=20000 benches/instructions.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }

LONG=${LONG:-120000}
SHORT=${SHORT:-20000}
PORT=${PORT:-17201}
BASELINE=${BASELINE:-}

. benches/lib.sh

# count <binary> <fsync> <test> <pipeline> <requests> -> instructions
count() {
  rm -rf "$work/data" "$work"/cg.*
  valgrind --tool=callgrind --callgrind-out-file="$work/cg.%p" \
    "$1" --port "$PORT" --data-dir "$work/data" --fsync "$2" >/dev/null 2>&1 &
  local pid=$!
  pids+=($pid)
  wait_port "$PORT"
  redis-benchmark -p "$PORT" -t "$3" -c 50 -d 64 -P "$4" -n "$5" -r 1000 -q >/dev/null 2>&1
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  pids=()
  awk '/^(summary|totals):/ { print $2; exit }' "$work"/cg.*
}

# per_request <binary> <fsync> <test> <pipeline>
per_request() {
  local long short
  long=$(count "$1" "$2" "$3" "$4" "$LONG")
  short=$(count "$1" "$2" "$3" "$4" "$SHORT")
  awk -v l="$long" -v s="$short" -v n=$((LONG - SHORT)) 'BEGIN { printf "%.0f", (l - s) / n }'
}

printf 'instructions per request, 50 clients, 64-byte values, 1,000 keys (%s minus %s requests)\n' "$LONG" "$SHORT"
printf '%-28s %10s %10s\n' "workload" "this" "baseline"
for row in "never set 16" "never get 16" "always set 1" "always set 16" "always get 16"; do
  read -r fsync test pipeline <<<"$row"
  new=$(per_request target/release/dkv-node "$fsync" "$test" "$pipeline")
  old="-"
  [ -n "$BASELINE" ] && old=$(per_request "$BASELINE" "$fsync" "$test" "$pipeline")
  printf '%-28s %10s %10s\n' "${test^^} -P $pipeline, fsync $fsync" "$new" "$old"
done
