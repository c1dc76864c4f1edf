#!/usr/bin/env bash
# CPU time (user and system, from /proc/<pid>/stat) that a 3-node cluster
# (N=3 W=2 R=2, --fsync always) spends per request, against redis-server
# with appendfsync always serving the same redis-benchmark run: the cost
# of a request including the kernel's part, which callgrind does not see,
# and steadier than ops/s on a shared machine, since a busy hour slows a
# run more than it changes what each request costs. Clients on node 1.
# Rounds interleave the builds; each figure is the median over them.
#
#   benches/cluster_cpu.sh
#   BASELINE=/path/to/old/dkv-node ROUNDS=5 N=200000 benches/cluster_cpu.sh
#   NODE_ARGS="--fsync-window-us 1000" benches/cluster_cpu.sh
#   ROWS="set:16" benches/cluster_cpu.sh     # only these workloads
set -eu
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
ROWS=${ROWS:-set:1 set:16 get:16}
N=${N:-200000}
BASE=${BASE:-17401}
REDIS_PORT=${REDIS_PORT:-17499}
BASELINE=${BASELINE:-}
NODE_ARGS=${NODE_ARGS:---fsync-window-us 1000}
BASELINE_ARGS=${BASELINE_ARGS:-$NODE_ARGS}

. benches/lib.sh

cluster_conf 3 "$BASE"
ticks=$(getconf CLK_TCK)

# cpu_ticks <pid>: "user system" clock ticks the process (all its threads)
# has used so far.
cpu_ticks() {
  awk '{ sub(/^.*\) /, ""); print $12, $13 }' "/proc/$1/stat"
}

# measure <port> <test> <pipeline> <pid...> -> "user_us system_us" of CPU
# per request, summed over the pids, for one redis-benchmark run.
measure() {
  local port=$1 test=$2 pipeline=$3
  shift 3
  local before=() after=() pid
  for pid in "$@"; do before+=("$(cpu_ticks "$pid")"); done
  redis-benchmark -p "$port" -t "$test" -c 50 -d 64 -n "$N" -P "$pipeline" -r 100000 -q \
    >/dev/null 2>>"$work/bench.err"
  for pid in "$@"; do after+=("$(cpu_ticks "$pid")"); done
  local i user=0 sys=0
  for i in "${!before[@]}"; do
    read -r u0 s0 <<<"${before[$i]}"
    read -r u1 s1 <<<"${after[$i]}"
    user=$((user + u1 - u0))
    sys=$((sys + s1 - s0))
  done
  awk -v u="$user" -v s="$sys" -v t="$ticks" -v n="$N" \
    'BEGIN { printf "%.2f %.2f", u * 1e6 / t / n, s * 1e6 / t / n }'
}

# redis_row <test> <pipeline> -> "user system"
redis_row() {
  rm -rf "$work/redis"
  mkdir -p "$work/redis"
  redis-server --port "$REDIS_PORT" --save "" --appendonly yes --appendfsync always \
    --dir "$work/redis" --daemonize no >/dev/null 2>&1 &
  pids+=($!)
  local pid=$!
  wait_port "$REDIS_PORT"
  [ "$1" = get ] && redis-benchmark -p "$REDIS_PORT" -t set -c 50 -d 64 -n 100000 -P 16 -r 100000 -q >/dev/null 2>&1
  measure "$REDIS_PORT" "$1" "$2" "$pid"
  stop_all
}

# cluster_row <binary> <flags> <test> <pipeline> -> "user system"
cluster_row() {
  local bin=$1 flags=$2
  # shellcheck disable=SC2086 # the flags are words
  start_nodes "$bin" 3 "$BASE" $flags
  sleep 2 # every peer's clock heard
  [ "$3" = get ] && redis-benchmark -p "$BASE" -t set -c 50 -d 64 -n 100000 -P 16 -r 100000 -q >/dev/null 2>&1
  measure "$BASE" "$3" "$4" "${pids[@]}"
  stop_all
}

printf 'CPU per request, microseconds (user + system over every process of the target), redis-benchmark -c 50 -d 64 -n %s, median of %s round(s)\n' "$N" "$ROUNDS"
printf 'node flags: this build "%s"%s\n' "$NODE_ARGS" "${BASELINE:+, baseline \"$BASELINE_ARGS\"}"
printf '%-40s %4s %5s %8s %8s %8s %7s\n' target -P op user system total ratio
for row in $ROWS; do
  read -r test pipeline <<<"${row/:/ }"
  redis="" this="" base=""
  for _ in $(seq 1 "$ROUNDS"); do
    redis+="$(redis_row "$test" "$pipeline");"
    this+="$(cluster_row target/release/dkv-node "$NODE_ARGS" "$test" "$pipeline");"
    [ -n "$BASELINE" ] && base+="$(cluster_row "$BASELINE" "$BASELINE_ARGS" "$test" "$pipeline");"
  done
  read -r ru rs <<<"$(median_rows "$redis")"
  rt=$(awk -v u="$ru" -v s="$rs" 'BEGIN { print u + s }')
  print_row() {
    awk -v name="$1" -v p="$pipeline" -v op="${test^^}" -v u="$2" -v s="$3" -v rt="$rt" \
      'BEGIN { t = u + s; printf "%-40s %4s %5s %8.2f %8.2f %8.2f %7.2f\n", name, p, op, u, s, t, (rt > 0 ? t / rt : 0) }'
  }
  print_row "redis-server appendfsync always" "$ru" "$rs"
  read -r u s <<<"$(median_rows "$this")"
  print_row "dkv cluster (3 nodes), this build" "$u" "$s"
  if [ -n "$BASELINE" ]; then
    read -r u s <<<"$(median_rows "$base")"
    print_row "dkv cluster (3 nodes), baseline" "$u" "$s"
  fi
done
