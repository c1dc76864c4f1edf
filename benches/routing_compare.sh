#!/usr/bin/env bash
# Token-aware routing in the Rust client (which libdkv's and the Python
# client wrap): a 5-node cluster (N=3, W=2, R=2, --fsync always), one
# client given every node sending COUNT sequential quorum SETs then GETs,
# with routing off (every request through node 1, which holds 3 keys in 5)
# and on (each key to one of its replicas). Prints requests/s and the peer
# messages the whole cluster sent per request (INFO cluster).
#
#   benches/routing_compare.sh            # COUNT=20000
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT=${COUNT:-20000}
BASE=${BASE:-17121}
. benches/lib.sh
cargo build --release --quiet --example routed_load

cluster_conf 5 "$BASE"
addrs=""
for i in 1 2 3 4 5; do addrs="$addrs 127.0.0.1:$((BASE + i - 1))"; done

sent() {
  local total=0
  for i in 1 2 3 4 5; do
    total=$((total + $(peer_counter $((BASE + i - 1)) peer_messages_sent)))
  done
  echo "$total"
}

printf '\n%s sequential quorum SETs then GETs from one Rust client given all 5 nodes (N=3), %s cores\n' "$COUNT" "$(nproc)"
printf '%-8s %10s %10s %18s\n' routing "SET/s" "GET/s" "peer msgs/request"
for mode in off on; do
  start_nodes target/release/dkv-node 5 "$BASE"
  before=$(sent)
  # shellcheck disable=SC2086
  read -r sets gets < <(target/release/examples/routed_load "$mode" "$COUNT" $addrs)
  after=$(sent)
  stop_all
  printf '%-8s %10s %10s %18.2f\n' "$mode" "$sets" "$gets" "$(awk -v d=$((after - before)) -v n="$COUNT" 'BEGIN { print d / (2 * n) }')"
done
