#!/usr/bin/env bash
# Mixed load: 10,000 valid hooks (with a token) from 100 loopback "server"
# addresses, mixed with junk from 50 "scanner" addresses (unknown paths,
# bad tokens, oversized headers, garbage) and 100 half-open connections, while
# a monitor polls /api/status. Checks that every valid hook is counted exactly
# once, every junk request is refused, status keeps answering, and prints the
# daemon's peak RSS.
#   bench/mixed.sh [VALID] [JUNK]    (defaults 10000 5000)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh
valid=${1:-10000}
junk=${2:-5000}
cargo build --release --quiet --bin banlight --example mixedload
work=$(mktemp -d /tmp/banlight-mixed.XXXXXX)
port=$(free_port)
token=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
cat > "$work/banlight.toml" <<TOML
listen = "127.0.0.1:$port"
state_dir = "$work/state"
header_timeout = "2s"
[rate_limit]
burst = 10
per_minute = 60
[[source]]
name = "bench"
token = "$token"
[panel]
backend = "record"
record_path = "/dev/null"
TOML
trap cleanup EXIT
start_daemon "$work/banlight.toml" "$work/daemon.log"
rss_start=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
status=0
target/release/examples/mixedload "127.0.0.1:$port" "$token" "$valid" "$junk" || status=$?
echo "rss_start_kib: $rss_start"
echo "rss_end_kib: $(awk '/VmRSS/ {print $2}' "/proc/$pid/status")"
echo "peak_rss_kib: $(awk '/VmHWM/ {print $2}' "/proc/$pid/status")"
kill -0 "$pid" || { echo "the daemon died"; exit 1; }
exit "$status"
