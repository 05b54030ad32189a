# Shared by the bench scripts: a free loopback port, starting the release
# daemon on a config, and waiting until it answers.

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# On exit: stop the daemon (if still running) and remove $work.
pid=""
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
    wait 2>/dev/null || true
    rm -rf "$work"
}

# start_daemon CONFIG LOG: starts target/release/banlight, sets $pid, waits for /api/status.
start_daemon() {
    local config=$1 log=$2 port
    port=$(sed -n 's/^listen = "127.0.0.1:\([0-9]*\)"/\1/p' "$config")
    RUST_LOG=warn target/release/banlight --config "$config" 2>>"$log" &
    pid=$!
    wait_ready "$port"
}

wait_ready() {
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$1/api/status" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "banlight did not start on port $1" >&2
    return 1
}
