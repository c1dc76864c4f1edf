#!/usr/bin/env bash
# System calls and peer messages per acknowledged write on a 3-node
# cluster (N=3, W=2, R=2, --fsync always), counted by `perf stat` on the
# syscall tracepoints of all three processes while redis-benchmark sends
# SETs to node 1, at each depth of PIPELINES; against the floor
# 2 + 4(N-1)/K + 2N/G, with K the peer messages per peer-link write and G
# the WAL records per fdatasync measured in the same run (cluster-wide: 2
# for the client's request and reply, 4 per other replica for the
# coordinator's send and receive and the replica's, 2 per replica for its
# WAL write and fdatasync).
#
#   benches/cluster_syscalls.sh                 # -n 50000, -P 1 and -P 16
#   BASELINE=/path/to/old/dkv-node benches/cluster_syscalls.sh
#                                               # an older build too (K
#                                               # needs INFO's peer_* lines)
#   NODE_ARGS="--fsync-window-us 1000" benches/cluster_syscalls.sh
#                                               # node flags for this build
#                                               # (BASELINE_ARGS for the other)
#
# Needs perf with tracepoint access (root, or perf_event_paranoid <= -1).
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-50000}
CLIENTS=${CLIENTS:-50}
SIZE=${SIZE:-64}
BASE=${BASE:-17111}
PIPELINES=${PIPELINES:-1 16}

. benches/lib.sh
command -v perf >/dev/null || { echo "needs perf (apt-get install linux-perf)" >&2; exit 1; }

cluster_conf 3 "$BASE"

events="raw_syscalls:sys_enter,syscalls:sys_enter_fdatasync,syscalls:sys_enter_writev,syscalls:sys_enter_write,syscalls:sys_enter_sendto,syscalls:sys_enter_recvfrom,syscalls:sys_enter_read,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_futex"

# run <binary> <label> [node flags...]: one row per pipeline depth.
run() {
  for p in $PIPELINES; do
    start_nodes "$1" 3 "$BASE" "${@:3}"
    local before_sent=0 before_writes=0
    for i in 1 2 3; do
      before_sent=$((before_sent + $(peer_counter $((BASE + i - 1)) peer_messages_sent)))
      before_writes=$((before_writes + $(peer_counter $((BASE + i - 1)) peer_socket_writes)))
    done
    local stats=()
    for i in 1 2 3; do
      perf stat -x, -e "$events" -p "${pids[$((i - 1))]}" -o "$work/stat.$i" &
      stats+=($!)
    done
    sleep 0.5
    redis-benchmark -h 127.0.0.1 -p "$BASE" -t set -c "$CLIENTS" -d "$SIZE" -n "$N" -P "$p" -r 100000 -q >/dev/null 2>&1
    kill -INT "${stats[@]}" 2>/dev/null || true
    wait "${stats[@]}" 2>/dev/null || true
    local sent=0 writes=0
    for i in 1 2 3; do
      sent=$((sent + $(peer_counter $((BASE + i - 1)) peer_messages_sent)))
      writes=$((writes + $(peer_counter $((BASE + i - 1)) peer_socket_writes)))
    done
    stop_all
    cat "$work"/stat.[123] | awk -F, -v n="$N" -v p="$p" -v label="$2" -v r=3 \
      -v sent=$((sent - before_sent)) -v pw=$((writes - before_writes)) '
      NF > 3 { name = $3; sub(/^.*sys_enter_?/, "", name); if (name == "") name = "all"; c[name] += $1 }
      END {
        k = pw > 0 ? sent / pw : 0
        g = c["fdatasync"] > 0 ? n * r / c["fdatasync"] : 0
        floor = (k > 0 && g > 0) ? sprintf("%.2f", 2 + 4 * (r - 1) / k + 2 * r / g) : "n/a"
        printf "%-10s %3s %8.2f %8.2f %8.2f %8.3f %7.2f %7.2f %8.2f %6.1f %6.1f %7s\n", label, p,
          c["all"] / n, (c["writev"] + c["write"] + c["sendto"]) / n, (c["read"] + c["recvfrom"]) / n,
          c["fdatasync"] / n, c["epoll_wait"] / n, c["futex"] / n, sent / n, k, g, floor
      }'
  done
}

printf '\nSET, redis-benchmark -c %s -d %s -n %s to node 1 of 3 (N=3 W=2 R=2, fsync always), %s cores; per acknowledged write, all three nodes together\n' "$CLIENTS" "$SIZE" "$N" "$(nproc)"
printf 'node flags: current "%s", baseline "%s"\n' "${NODE_ARGS:-}" "${BASELINE_ARGS:-}"
printf '%-10s %3s %8s %8s %8s %8s %7s %7s %8s %6s %6s %7s\n' build -P syscalls writes reads fdatasync epoll futex peer-msg K G floor
run target/release/dkv-node current ${NODE_ARGS:-}
[ -n "${BASELINE:-}" ] && run "$BASELINE" baseline ${BASELINE_ARGS:-}
exit 0
