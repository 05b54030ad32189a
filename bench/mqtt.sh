#!/usr/bin/env bash
# MQTT figures (issue 12): a private Mosquitto on loopback, desks subscribed
# to one hooks topic (release build), COUNT hooks published at QoS 1; prints
# events/s end to end with one and with two subscribing desks (each desk
# checks, counts, stores, and republishes every event through its outbox),
# and the RSS that [mqtt] adds to a desk. Figures only, not a gate.
#
#   bench/mqtt.sh [COUNT]    (default 20000)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. bench/lib.sh
count=${1:-20000}
mosquitto=$(command -v mosquitto || echo /usr/sbin/mosquitto)
[ -x "$mosquitto" ] || { echo "mosquitto is not installed (apt install mosquitto)" >&2; exit 1; }

cargo build --release --quiet --bin banlight --example mqttload
work=$(mktemp -d /tmp/banlight-mqtt-bench.XXXXXX)
chmod 0777 "$work"
pids=()
bench_cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap bench_cleanup EXIT

broker_port=$(free_port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 1000000\nlog_dest none\n' \
    "$broker_port" >"$work/mosquitto.conf"
"$mosquitto" -c "$work/mosquitto.conf" &
pids+=($!)
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$broker_port") 2>/dev/null && break
    sleep 0.1
done

# desk NAME MQTT(yes/no): starts a desk, sets desk_pid and desk_port (run in
# this shell, not a subshell, so that bench_cleanup knows its pid)
desk() {
    local name=$1 mqtt=$2 port
    port=$(free_port)
    {
        echo "listen = \"127.0.0.1:$port\""
        echo "state_dir = \"$work/$name\""
        echo "control_socket = \"$work/$name.sock\""
        echo "dedupe_window = \"0s\""
        if [ "$mqtt" = yes ]; then
            echo "[mqtt]"
            echo "url = \"mqtt://127.0.0.1:$broker_port\""
            echo "client_id = \"$name\""
            echo "topic_prefix = \"bench/$name\""
            echo "subscribe = true"
            echo "hooks_topic = \"bench/hooks\""
        fi
        echo "[panel]"
        echo "backend = \"record\""
        echo "record_path = \"/dev/null\""
    } >"$work/$name.toml"
    RUST_LOG=warn target/release/banlight --config "$work/$name.toml" 2>>"$work/$name.log" &
    desk_pid=$!
    desk_port=$port
    pids+=("$desk_pid")
    wait_ready "$port"
}
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
hwm() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
subscribed() {
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$1/api/status" | grep -q '"subscribed":true' && return 0
        sleep 0.1
    done
    echo "desk on port $1 did not subscribe" >&2
    return 1
}

desk plain no
plain_pid=$desk_pid
desk desk-a yes
a_pid=$desk_pid a_port=$desk_port
subscribed "$a_port"
sleep 1
echo "== idle RSS: without [mqtt] $(rss "$plain_pid") KiB, with [mqtt] (connected, subscribed) $(rss "$a_pid") KiB"
echo "added_rss_idle_kib: $(( $(rss "$a_pid") - $(rss "$plain_pid") ))"

echo "== one subscribing desk, $count hooks"
target/release/examples/mqttload "$broker_port" bench/hooks "$count" "127.0.0.1:$a_port"
echo "peak_rss_kib desk-a: $(hwm "$a_pid")"

desk desk-b yes
b_pid=$desk_pid b_port=$desk_port
subscribed "$b_port"
echo "== two subscribing desks, $count hooks"
target/release/examples/mqttload "$broker_port" bench/hooks "$count" "127.0.0.1:$a_port" "127.0.0.1:$b_port"
echo "peak_rss_kib desk-a: $(hwm "$a_pid") desk-b: $(hwm "$b_pid")"
# Each desk also republishes every counted event from its outbox: wait
# until both outboxes are empty.
for p in "$a_port" "$b_port"; do
    for _ in $(seq 600); do
        curl -sf "http://127.0.0.1:$p/api/status" | python3 -c 'import json,sys; m=json.load(sys.stdin)["mqtt"]; sys.exit(0 if m["published"] >= m["hooks_counted"] else 1)' && break
        sleep 0.1
    done
done
for p in "$a_port" "$b_port"; do
    curl -sf "http://127.0.0.1:$p/api/status" | python3 -c 'import json,sys; m=json.load(sys.stdin)["mqtt"]; print("desk mqtt:", {k: m[k] for k in ("published","outbox","outbox_dropped","hooks_received","hooks_counted","hooks_refused")})'
done
