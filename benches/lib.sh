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
