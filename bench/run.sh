#!/usr/bin/env bash
# Load benchmark: starts the release build on loopback and fires hooks with a
# new connection per request (as fail2ban's curl does) at high concurrency,
# then prints events/s, p50/p99 latency, the daemon's peak RSS, events per
# sync, and its CPU use over 30 s of idle.
#
#   bench/run.sh [CONCURRENCY] [SECONDS] [IDLE_SECONDS]    (defaults 64 10 30)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh
concurrency=${1:-64}
seconds=${2:-10}
idle_seconds=${3:-30}

cargo build --release --quiet --bin banlight --example loadgen
work=$(mktemp -d /tmp/banlight-bench.XXXXXX)
port=$(free_port)
cat > "$work/banlight.toml" <<TOML
listen = "127.0.0.1:$port"
state_dir = "$work/state"
dedupe_window = "${DEDUPE:-10m}"
# all load comes from 127.0.0.1
max_connections_per_client = 1024
[panel]
backend = "record"
record_path = "/dev/null"
TOML
trap cleanup EXIT
start_daemon "$work/banlight.toml" "$work/daemon.log"

ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)

echo "== idle: ${idle_seconds}s with no traffic"
t0=$(ticks); sleep "$idle_seconds"; t1=$(ticks)
idle_cpu=$(python3 -c "print(f'{($t1-$t0)/$hz/$idle_seconds*100:.3f}')")
echo "idle_cpu_percent: $idle_cpu  (cpu ticks used: $((t1 - t0)))"

echo "== load: $concurrency concurrent clients, ${seconds}s, new connection per request"
status() { curl -sf "http://127.0.0.1:$port/api/status"; }
before=$(status)
target/release/examples/loadgen "127.0.0.1:$port" "$concurrency" "$seconds" | tee "$work/load.txt"
after=$(status)
python3 - "$before" "$after" <<'PY'
import json, sys
b, a = (json.loads(x)["store"] for x in sys.argv[1:3])
commits = a["commits"] - b["commits"]
events = a["events"] - b["events"]
print(f"commits: {commits}")
print(f"events_per_sync: {events / max(commits, 1):.1f}")
PY
echo "peak_rss_kib: $(awk '/VmHWM/ {print $2}' "/proc/$pid/status")"
echo "total_counted: $(echo "$after" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')"
if command -v strace >/dev/null; then
    echo "== cross-check: are commits syncs? A second daemon under strace counts fsync/fdatasync"
    echo "   (tracing slows the daemon, so its events/s and batch sizes are not representative)"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    # a fresh state dir, so the replayed addresses are not deduplicated
    sed "s|$work/state|$work/state2|" "$work/banlight.toml" > "$work/banlight2.toml"
    RUST_LOG=warn strace -f --seccomp-bpf -c -e trace=fsync,fdatasync -o "$work/strace.txt" \
        target/release/banlight --config "$work/banlight2.toml" 2>>"$work/daemon.log" &
    spid=$!
    pid=$spid  # cleanup stops strace (and its daemon with it) if we fail from here
    wait_ready "$port"
    target/release/examples/loadgen "127.0.0.1:$port" "$concurrency" 5 > "$work/load2.txt"
    commits2=$(status | python3 -c 'import json,sys; print(json.load(sys.stdin)["store"]["commits"])')
    pkill -TERM -P "$spid" banlight || true
    wait "$spid" 2>/dev/null || true
    syncs=$(awk '$NF ~ /^(fsync|fdatasync)$/ {s += $4} END {print s + 0}' "$work/strace.txt")
    counted=$(awk '/^counted:/ {print $2}' "$work/load2.txt")
    echo "strace: $counted events in $commits2 commits took $syncs fsync/fdatasync calls: $(python3 -c "print(f'{$syncs/max($commits2,1):.2f}')") syncs per commit"
else
    echo "(strace not installed: events per sync above is from the daemon's own commit counter)"
fi
