#!/usr/bin/env bash
# Instructions each node of a 3-node cluster (N=3 W=2 R=2, --fsync always,
# --fsync-window-us 1000) spends per request, under callgrind, with
# redis-benchmark's clients on node 1 (the coordinator): the difference
# between a long and a short run, divided by the difference in requests,
# so start-up, the handshakes and shutdown cancel out. User-space
# instructions only (callgrind sees no kernel), and far steadier than
# ops/s on a shared 2-core machine: runs of one build differ by about
# 100 instructions per write.
#
#   benches/cluster_instructions.sh
#   BASELINE=/path/to/old/dkv-node benches/cluster_instructions.sh
#   LONG=60000 SHORT=10000 benches/cluster_instructions.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }

LONG=${LONG:-60000}
SHORT=${SHORT:-10000}
BASE=${BASE:-17301}
BASELINE=${BASELINE:-}

. benches/lib.sh

cluster_conf 3 "$BASE"

# count <binary> <test> <pipeline> <requests> -> "node1 node2 node3"
# instructions. A GET run first writes the keys it reads.
count() {
  rm -rf "$work"/node-* "$work"/cg.*
  for i in 1 2 3; do
    RUST_LOG=error valgrind --tool=callgrind --callgrind-out-file="$work/cg.$i" \
      "$1" --node-id "$i" --cluster-conf "$work/cluster.conf" --data-dir "$work/node-$i" \
      --fsync always --fsync-window-us 1000 >/dev/null 2>&1 &
    pids+=($!)
  done
  for i in 1 2 3; do wait_port $((BASE + i - 1)); done
  sleep 3 # the peers connect and hear each other's clocks
  if [ "$2" = get ]; then
    redis-benchmark -p "$BASE" -t set -c 20 -d 64 -n 20000 -P 16 -r 10000 -q >/dev/null 2>&1
  fi
  redis-benchmark -p "$BASE" -t "$2" -c 20 -d 64 -n "$4" -P "$3" -r 10000 -q >/dev/null 2>&1
  stop_all
  for i in 1 2 3; do awk '/^(summary|totals):/ { print $2; exit }' "$work/cg.$i"; done | tr '\n' ' '
}

# per_request <binary> <test> <pipeline> -> "node1 node2 node3 total"
per_request() {
  local long short
  long=$(count "$1" "$2" "$3" "$LONG")
  short=$(count "$1" "$2" "$3" "$SHORT")
  awk -v l="$long" -v s="$short" -v n=$((LONG - SHORT)) 'BEGIN {
    split(l, a, " "); split(s, b, " "); t = 0
    for (i = 1; i <= 3; i++) { d = (a[i] - b[i]) / n; t += d; printf "%.0f ", d }
    printf "%.0f", t }'
}

printf 'instructions per request on each node, clients on node 1: 20 clients, 64-byte values, 10,000 keys (%s minus %s requests)\n' "$LONG" "$SHORT"
printf '%-10s %-12s %8s %8s %8s %8s\n' "workload" "build" "node 1" "node 2" "node 3" "total"
for row in "set 16" "get 16" "set 1"; do
  read -r test pipeline <<<"$row"
  builds=("this target/release/dkv-node")
  [ -n "$BASELINE" ] && builds+=("baseline $BASELINE")
  for build in "${builds[@]}"; do
    read -r name bin <<<"$build"
    read -r n1 n2 n3 total <<<"$(per_request "$bin" "$test" "$pipeline")"
    printf '%-10s %-12s %8s %8s %8s %8s\n' "${test^^} -P $pipeline" "$name" "$n1" "$n2" "$n3" "$total"
  done
done
