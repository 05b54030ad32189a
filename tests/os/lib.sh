# Sourced by tests/os/run (amd64) and tests/os/run-arm64: the pass/FAIL
# lines, the image cache, the run directory, qemu's boot and the ssh and
# hook helpers. Each script sets, before sourcing:
#   me       its name, for its messages
#   os_dir   where its images are cached (target/os, target/os/arm64)
# and before calling boot:
#   qemu     the qemu command and machine (array), console (the kernel's
#            serial tty)
# See docs/os-test.md.

passed=0
failed=0
pass() { echo "pass  $*"; passed=$((passed + 1)); }
fail() { echo "FAIL  $*"; failed=$((failed + 1)); }
figures() { echo "figures  $*"; }
note() { echo "        $*"; }
verdict() { # verdict OK NAME [detail]
    if [ "$1" = 1 ]; then pass "$2"; else fail "$2${3:+: $3}"; fi
}
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }

# need_tools CI_HINT HINT TOOL...: every TOOL on PATH, or: under CI=true a
# failure (exit 1, CI_HINT said), else a skip with the reason (exit 0, HINT:
# how to get them).
need_tools() {
    local ci_hint=$1 hint=$2 tool need=()
    shift 2
    for tool in "$@"; do
        command -v "$tool" >/dev/null || need+=("$tool")
    done
    [ ${#need[@]} -eq 0 ] && return 0
    if [ "${CI:-}" = true ]; then
        echo "$me: missing ${need[*]} ($ci_hint)" >&2
        exit 1
    fi
    echo "$me: skipped: missing ${need[*]} ($hint)"
    exit 0
}

# os_image: the image in $image, built by tests/os/image when not cached
# under $os_dir/bookworm-<hash of tests/os/image>; older ones removed.
# BANLIGHT_OS_ARCH (exported by the caller) picks the architecture.
os_image() {
    local key t0 old
    key=$(sha256sum tests/os/image | cut -c1-16)
    image=$os_dir/bookworm-$key
    if [ ! -f "$image/disk.img" ]; then
        t0=$(now)
        rm -rf "$image.tmp"
        bash tests/os/image "$image.tmp" "$os_dir" || { echo "$me: image build failed" >&2; exit 1; }
        rm -rf "$image"
        mv "$image.tmp" "$image"
        figures "image: built in $(since "$t0")s ($image)"
        # Older images are of no use once their script changed.
        for old in "$os_dir"/bookworm-*; do
            [ "$old" = "$image" ] || rm -rf "$old"
        done
    else
        figures "image: cached ($image)"
    fi
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# os_run_dir: $run with a sparse copy of the image's disk and its ssh key,
# two free ports on 127.0.0.1, and the EXIT trap that ends qemu and removes
# $run (kept with BANLIGHT_OS_KEEP=1).
os_run_dir() {
    run=$(mktemp -d "$os_dir/run.XXXXXX")
    disk=$run/disk.img
    cp --sparse=always "$image/disk.img" "$disk"
    keyfile=$run/id_ed25519
    install -m 0600 "$image/id_ed25519" "$keyfile"
    ssh_port=$(free_port)
    http_port=$(free_port)
    ssh_opts=(-i "$keyfile" -p "$ssh_port" -o BatchMode=yes -o ConnectTimeout=5
        -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR)
    trap cleanup EXIT
}

qemu_pid=""
boots=0
cleanup() {
    [ -n "$qemu_pid" ] && kill -9 "$qemu_pid" 2>/dev/null
    touch "$run/stop" 2>/dev/null
    wait 2>/dev/null
    if [ "${BANLIGHT_OS_KEEP:-}" = 1 ]; then echo "$me: kept $run"; else rm -rf "$run"; fi
}

# boot [extra qemu args]: starts the VM in the background; serial to
# $run/console-N.log. -no-reboot: a guest reboot ends qemu, and the test
# boots it again (each boot is then started, and measured, the same way).
boot() {
    boots=$((boots + 1))
    boot_started=$(now)
    "${qemu[@]}" -m 1024 -smp 2 -nodefaults -no-reboot \
        -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
        -append "root=/dev/vda rw console=$console net.ifnames=0 quiet systemd.show_status=0" \
        -drive "file=$disk,if=virtio,format=raw,cache=none" \
        -netdev "user,id=n,restrict=on,hostfwd=tcp:127.0.0.1:$ssh_port-:22,hostfwd=tcp:127.0.0.1:$http_port-:8080" \
        -device virtio-net-pci,netdev=n \
        -display none -monitor none -serial "file:$run/console-$boots.log" "$@" &
    qemu_pid=$!
}

# as USER CMD...: a command in the VM over ssh (root is the test's own access).
as() { local user=$1; shift; ssh "${ssh_opts[@]}" "$user@127.0.0.1" "$@"; }
vm() { as root "$@"; }

# Until sshd answers (slirp accepts on the port before sshd is up, so a real
# ssh round trip is the test). TCG under a loaded 2-core box: up to 5 min.
wait_ssh() {
    local deadline=$(( $(date +%s) + ${1:-300} ))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        kill -0 "$qemu_pid" 2>/dev/null || return 1
        vm true 2>/dev/null && return 0
        sleep 1
    done
    return 1
}

# Waits for qemu to exit by itself; its status in qemu_rc.
wait_qemu_exit() {
    local deadline=$(( $(date +%s) + $1 ))
    while kill -0 "$qemu_pid" 2>/dev/null; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 0.2
    done
    wait "$qemu_pid"
    qemu_rc=$?
    qemu_pid=""
    return 0
}

# A power cut: kill -9 of qemu, then wait until it is gone (image and ports free).
power_cut() {
    kill -9 "$qemu_pid"
    wait "$qemu_pid" 2>/dev/null
    qemu_pid=""
}

# 30 s: on this disk an fsync can take seconds while other jobs write (a
# hook answered in 4 s was measured under load); fail2ban's 3 s is not the
# point here, whether the answer is true is.
hook() { curl -s --max-time 30 "http://127.0.0.1:$http_port/$1"; }

# Seconds from kernel start to READY=1 (systemd enters `active` for a
# Type=notify unit when READY=1 arrives), from the guest's monotonic clock.
ready_s() {
    vm 'systemctl show banlight -p ActiveEnterTimestampMonotonic --value' |
        awk '{printf "%.1f", $1 / 1e6}'
}

# Sends a hook until one is answered (counted, or "already counted" when an
# earlier try was counted but its answer came too late); prints the host
# seconds it took.
first_hook() {
    local t0 deadline=$(( $(date +%s) + ${2:-300} ))
    t0=$(now)
    while [ "$(date +%s)" -lt "$deadline" ]; do
        hook "$1" 2>/dev/null | grep -q '"route"' && { since "$t0"; return 0; }
        sleep 0.2
    done
    return 1
}

# install_deb FILE: copies the .deb into the VM and installs it with apt,
# as an owner would; apt's output in install_out, its status in install_rc.
install_deb() {
    debname=$(basename "$1")
    vm "cat > /root/$debname" <"$1"
    install_out=$(vm "cd /root && apt-get install -y ./$debname 2>&1"); install_rc=$?
}
