#!/usr/bin/env bash
# Side-by-side redis-benchmark runs against redis-server and a single
# dkv-node on this machine, printing ops/s and dkv/redis ratios.
#
#   benches/redis_compare.sh            # full: -n 200000
#   N=50000 benches/redis_compare.sh    # quicker
#   BASELINE=/path/to/old/dkv-node benches/redis_compare.sh
#                                       # also an older build, in the same run
#   ROUNDS=5 benches/redis_compare.sh   # five interleaved rounds, medians
#
# Pairs compared (same workload, same machine, one after the other):
#   dkv --fsync never   vs redis --save "" --appendonly no
#   dkv --fsync always  vs redis --appendonly yes --appendfsync always
# With BASELINE, that binary runs the same workloads right after the new
# one, and the table adds its ops/s, its ratio to redis and new/old.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-200000}
CLIENTS=${CLIENTS:-50}
SIZE=${SIZE:-64}
REDIS_PORT=${REDIS_PORT:-16379}
DKV_PORT=${DKV_PORT:-17001}
BASELINE=${BASELINE:-}
ROUNDS=${ROUNDS:-1}

. benches/lib.sh

# bench <port> <pipeline> -> "SET_rps GET_rps"
bench() {
  redis-benchmark -h 127.0.0.1 -p "$1" -t set,get -c "$CLIENTS" -d "$SIZE" -n "$N" -P "$2" -r 100000 --csv 2>>"$work/bench.err" \
    | awk -F'","' '/^"SET/ {gsub(/"/,"",$2); set=$2} /^"GET/ {gsub(/"/,"",$2); get=$2} END {print set, get}'
}

start_redis() { # <mode: none|always>
  local dir="$work/redis-$1"; mkdir -p "$dir"
  if [ "$1" = always ]; then
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$dir" --save "" --appendonly yes --appendfsync always --daemonize no >/dev/null &
  else
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$dir" --save "" --appendonly no --daemonize no >/dev/null &
  fi
  pids+=($!); wait_port "$REDIS_PORT"
  # An append-only redis-server answers LOADING until its file is read.
  for _ in $(seq 1 200); do
    [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && return 0
    sleep 0.05
  done
}

start_dkv() { # <fsync> [binary]
  local bin=${2:-target/release/dkv-node}
  rm -rf "$work/dkv-$1"
  RUST_LOG=warn "$bin" --port "$DKV_PORT" --data-dir "$work/dkv-$1" --fsync "$1" >/dev/null &
  pids+=($!); wait_port "$DKV_PORT"
}


# Each round runs every server once, one after the other, so that drift in
# the machine hits all alike; a cell of the table is the median over rounds.
declare -A runs
for round in $(seq 1 "$ROUNDS"); do
  for mode in never always; do
    redis_mode=none; [ "$mode" = always ] && redis_mode=always
    start_redis "$redis_mode"
    for p in 1 16; do runs[redis,$mode,$p]+="$(bench "$REDIS_PORT" "$p");"; done
    stop_all
    start_dkv "$mode"
    for p in 1 16; do runs[dkv,$mode,$p]+="$(bench "$DKV_PORT" "$p");"; done
    stop_all
    if [ -n "$BASELINE" ]; then
      start_dkv "$mode" "$BASELINE"
      for p in 1 16; do runs[old,$mode,$p]+="$(bench "$DKV_PORT" "$p");"; done
      stop_all
    fi
  done
done

declare -A result
for key in "${!runs[@]}"; do result[$key]=$(median_rows "${runs[$key]}"); done

printf '\nredis-benchmark -t set,get -c %s -d %s -n %s on %s cores, median of %s round(s)\n' "$CLIENTS" "$SIZE" "$N" "$(nproc)" "$ROUNDS"
if [ -n "$BASELINE" ]; then
  printf '%-34s %4s %5s %12s %12s %7s %12s %7s %8s\n' "pair" "-P" "op" "redis ops/s" "dkv ops/s" "ratio" "old ops/s" "ratio" "new/old"
else
  printf '%-34s %4s %5s %12s %12s %7s\n' "pair" "-P" "op" "redis ops/s" "dkv ops/s" "ratio"
fi
for mode in never always; do
  label="dkv fsync=never vs redis no-persist"
  [ "$mode" = always ] && label="dkv fsync=always vs redis aof-always"
  for p in 1 16; do
    read -r rset rget <<<"${result[redis,$mode,$p]}"
    read -r dset dget <<<"${result[dkv,$mode,$p]}"
    read -r oset oget <<<"${result[old,$mode,$p]:-0 0}"
    for op in SET GET; do
      if [ "$op" = SET ]; then r=$rset; d=$dset; o=$oset; else r=$rget; d=$dget; o=$oget; fi
      ratio=$(awk -v d="$d" -v r="$r" 'BEGIN { if (r > 0) printf "%.2f", d / r; else print "n/a" }')
      if [ -n "$BASELINE" ]; then
        old_ratio=$(awk -v d="$o" -v r="$r" 'BEGIN { if (r > 0) printf "%.2f", d / r; else print "n/a" }')
        new_old=$(awk -v d="$d" -v o="$o" 'BEGIN { if (o > 0) printf "%.2f", d / o; else print "n/a" }')
        printf '%-34s %4s %5s %12.0f %12.0f %7s %12.0f %7s %8s\n' "$label" "$p" "$op" "$r" "$d" "$ratio" "$o" "$old_ratio" "$new_old"
      else
        printf '%-34s %4s %5s %12.0f %12.0f %7s\n' "$label" "$p" "$op" "$r" "$d" "$ratio"
      fi
    done
  done
done
