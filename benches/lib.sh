# Shared by the benchmark scripts: checks for redis tools, builds
# dkv-node, makes a work directory, and stops every started process on exit.
# Source it after `cd` to the repository root; append pids to `pids`.

for tool in redis-server redis-benchmark; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install redis-server redis-tools)" >&2; exit 1; }
done
cargo build --release --quiet --bin dkv-node
work=$(mktemp -d "${TMPDIR:-/tmp}/dkv-bench.XXXXXX")
pids=()

stop_all() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}

cleanup() {
  stop_all
  [ -s "$work/bench.err" ] && cat "$work/bench.err" >&2
  rm -rf "$work"
}
trap cleanup EXIT

# wait_port <port>: until something listens on 127.0.0.1:<port> (10 s at most).
wait_port() {
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "port $1 never opened" >&2
  exit 1
}

# median_rows <"a b c;a b c;..."> -> the median of each column over the rows.
median_rows() {
  tr ';' '\n' <<<"$1" | awk 'BEGIN { n = 0; cols = 0 } NF > 0 { if (NF > cols) cols = NF; for (c = 1; c <= NF; c++) v[c, n] = $c; n++ }
    function med(c,   i, j, t, a) {
      for (i = 0; i < n; i++) a[i] = v[c, i]
      for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
      return n % 2 ? a[int(n / 2)] : (a[n / 2 - 1] + a[n / 2]) / 2
    }
    END { if (!n) { print 0; exit } out = ""; for (c = 1; c <= cols; c++) out = out (c > 1 ? " " : "") med(c); print out }'
}

# peer_counter <port> <name>: a peer_* counter of INFO cluster (0 if absent).
peer_counter() {
  redis-cli -p "$1" info cluster 2>/dev/null | tr -d '\r' | awk -F: -v k="$2" '$1 == k { v = $2 } END { print v + 0 }'
}

# cluster_conf <nodes> <base port>: writes $work/cluster.conf for that many
# nodes on 127.0.0.1 from the base port (N=3, W=2, R=2).
cluster_conf() {
  {
    echo "cluster_name = bench"
    echo "replication_factor = 3"; echo "write_quorum = 2"; echo "read_quorum = 2"
    for i in $(seq 1 "$1"); do echo "node $i 127.0.0.1:$(($2 + i - 1))"; done
  } >"$work/cluster.conf"
}

# start_nodes <binary> <nodes> <base port> [node flags...]: fresh data
# directories, every node of $work/cluster.conf started with --fsync always
# and the flags given (pids in `pids`), and a second for them to connect
# and see each other up.
start_nodes() {
  local bin=$1 count=$2 base=$3
  shift 3
  rm -rf "$work"/node-*
  for i in $(seq 1 "$count"); do
    RUST_LOG=warn "$bin" --node-id "$i" --cluster-conf "$work/cluster.conf" --data-dir "$work/node-$i" --fsync always "$@" >/dev/null &
    pids+=($!)
  done
  for i in $(seq 1 "$count"); do wait_port $((base + i - 1)); done
  sleep 1
}
