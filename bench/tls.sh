#!/usr/bin/env bash
# TLS figures beside plain HTTP in the same run, a new connection per request:
# hooks/s over plain HTTP, TLS handshakes/s, hooks/s over TLS (loopback only).
#
#   bench/tls.sh [CONCURRENCY] [SECONDS]    (defaults 64 5)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh
concurrency=${1:-64}
seconds=${2:-5}

cargo build --release --quiet --bin banlight --example tlsload
work=$(mktemp -d /tmp/banlight-tls.XXXXXX)
port=$(free_port)
tls_port=$(free_port)
cat > "$work/banlight.toml" <<TOML
listen = "127.0.0.1:$port"
state_dir = "$work/state"
# all load comes from 127.0.0.1
max_connections_per_client = 1024
[tls]
  listen = "127.0.0.1:$tls_port"   # indented: bench/lib.sh reads the first listen
[panel]
backend = "record"
record_path = "/dev/null"
TOML
trap cleanup EXIT
start_daemon "$work/banlight.toml" "$work/daemon.log"
target/release/examples/tlsload "127.0.0.1:$port" "127.0.0.1:$tls_port" \
    "$work/state/tls/cert.pem" "$concurrency" "$seconds"
