#!/usr/bin/env bash
# A 3-node dkv cluster (N=3, W=2, R=2, --fsync always, three processes)
# against redis-server with appendfsync always, same machine, same
# redis-benchmark workloads: clients on one node, then spread over all
# three; each at every pipeline depth of PIPELINES (-P 1 and -P 16 by
# default). Prints ops/s, p50 and p99 latency, and the dkv/redis ratio.
#
#   benches/cluster_compare.sh          # -n 100000
#   PIPELINES=16 benches/cluster_compare.sh  # -P 16 only
#   N=20000 benches/cluster_compare.sh  # quicker
#   BASELINE=/path/to/old/dkv-node benches/cluster_compare.sh
#                                       # also a cluster of an older build
#   ROUNDS=5 benches/cluster_compare.sh # five interleaved rounds, medians
#   NODE_ARGS="--fsync-window-us 1000" BASELINE=target/release/dkv-node \
#     benches/cluster_compare.sh        # the same build with a flag and
#                                       # without (BASELINE_ARGS for the other)
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-100000}
CLIENTS=${CLIENTS:-50}
SIZE=${SIZE:-64}
REDIS_PORT=${REDIS_PORT:-16379}
BASE=${BASE:-17101}
ROUNDS=${ROUNDS:-1}
PIPELINES=${PIPELINES:-1 16}

. benches/lib.sh

# csv <port> <test> <clients> <requests> <pipeline> -> "rps p50 p99"
csv() {
  redis-benchmark -h 127.0.0.1 -p "$1" -t "$2" -c "$3" -d "$SIZE" -n "$4" -P "$5" -r 100000 --csv 2>/dev/null \
    | awk -F'","' 'NR > 1 { gsub(/"/, "", $2); gsub(/"/, "", $5); gsub(/"/, "", $7); print $2, $5, $7 }'
}

# spread <test> <pipeline>: clients split over the three nodes, run at
# once; "sum_rps max_p50 max_p99".
spread() {
  local per=$((CLIENTS / 3)) n=$((N / 3)) outs=()
  for i in 1 2 3; do
    csv $((BASE + i - 1)) "$1" "$per" "$n" "$2" >"$work/spread.$i" &
    outs+=($!)
  done
  wait "${outs[@]}"
  cat "$work"/spread.[123] | awk '{ rps += $1; if ($2 > p50) p50 = $2; if ($3 > p99) p99 = $3 } END { print rps, p50, p99 }'
}

declare -A runs result
run_redis() {
  rm -rf "$work/redis"; mkdir -p "$work/redis"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$work/redis" --save "" --appendonly yes --appendfsync always >/dev/null &
  pids+=($!); wait_port "$REDIS_PORT"
  for p in $PIPELINES; do
    for t in set get; do runs[redis,$p,$t]+="$(csv "$REDIS_PORT" "$t" "$CLIENTS" "$N" "$p");"; done
  done
  stop_all
}

cluster_conf 3 "$BASE"

# run_cluster <binary> <name> [node flags...]: the two workloads against a
# fresh cluster.
run_cluster() {
  start_nodes "$1" 3 "$BASE" "${@:3}"
  for p in $PIPELINES; do
    for t in set get; do
      runs[$2one,$p,$t]+="$(csv "$BASE" "$t" "$CLIENTS" "$N" "$p");"
      runs[$2spread,$p,$t]+="$(spread "$t" "$p");"
    done
  done
  stop_all
}

# Each round runs redis and each build once; the builds swap places every
# round so that drift in the machine hits them alike. A cell of the table
# is the median over rounds.
for round in $(seq 1 "$ROUNDS"); do
  run_redis
  if [ -n "${BASELINE:-}" ] && [ $((round % 2)) -eq 0 ]; then
    run_cluster "$BASELINE" old ${BASELINE_ARGS:-}
    run_cluster target/release/dkv-node "" ${NODE_ARGS:-}
  else
    run_cluster target/release/dkv-node "" ${NODE_ARGS:-}
    [ -n "${BASELINE:-}" ] && run_cluster "$BASELINE" old ${BASELINE_ARGS:-}
  fi
done
for key in "${!runs[@]}"; do result[$key]=$(median_rows "${runs[$key]}"); done

printf '\nredis-benchmark -c %s -d %s -n %s on %s cores; dkv: 3 processes, N=3 W=2 R=2, fsync always; median of %s round(s)\n' "$CLIENTS" "$SIZE" "$N" "$(nproc)" "$ROUNDS"
printf 'node flags: this build "%s", baseline "%s"\n' "${NODE_ARGS:-}" "${BASELINE_ARGS:-}"
printf '%-40s %4s %5s %10s %8s %8s %7s\n' "target" "-P" "op" "ops/s" "p50 ms" "p99 ms" "ratio"
for p in $PIPELINES; do
for t in set get; do
  read -r rr rp50 rp99 <<<"${result[redis,$p,$t]}"
  whos="redis one spread"
  [ -n "${BASELINE:-}" ] && whos="$whos oldone oldspread"
  for who in $whos; do
    read -r r p50 p99 <<<"${result[$who,$p,$t]}"
    case $who in
      redis) label="redis-server appendfsync always" ;;
      one) label="dkv cluster, clients on node 1" ;;
      spread) label="dkv cluster, clients on all 3 nodes" ;;
      oldone) label="baseline cluster, clients on node 1" ;;
      oldspread) label="baseline cluster, clients on all 3" ;;
    esac
    ratio=$(awk -v d="$r" -v b="$rr" 'BEGIN { printf "%.2f", d / b }')
    printf '%-40s %4s %5s %10.0f %8s %8s %7s\n' "$label" "$p" "${t^^}" "$r" "$p50" "$p99" "$ratio"
  done
done
done
