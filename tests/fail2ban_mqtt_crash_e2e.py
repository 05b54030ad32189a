#!/usr/bin/env python3
"""End-to-end test (issue 19, item 3): a broker crash loses nothing the
server spooled.

The real fail2ban bans BANS addresses (2,000 by default) in one jail whose
only action is the shipped MQTT action (fail2ban/action.d/banlight-mqtt.conf
with fail2ban/banlight-deliver-mqtt). A real Mosquitto WITHOUT persistence
carries them to a banlight desk (`[mqtt] subscribe = true`). Mid-burst the
broker is killed with SIGKILL (it forgets every message it had acknowledged
but not yet delivered) and started again on the same port. Then: every ban
must be counted by the desk exactly once, and the server's spool must be
empty.

Before issue 19 the delivery script deleted a ban from its spool at the
broker's PUBACK: what the broker had acknowledged and not delivered was lost
(the review lost 1,031 of 9,209). Now the desk acknowledges each stored ban
on <hooks_topic>/ack/<source>, and the script keeps it (as s.*) until then,
publishing again what no desk acknowledged within ack_wait seconds.

Figures printed: bans published to the broker but unacknowledged at the
kill (what the old script would have lost), bans the desk counted then, bans
published again, and the time to the last count.

Python 3 stdlib only; reuses tests/fail2ban_e2e.py's helpers.
Environment:
  BANLIGHT_BIN   daemon binary (default: <repo>/target/debug/banlight)
  BANLIGHT_CRASH_BANS  number of bans (default 2000)
  BANLIGHT_CRASH_ACK_WAIT  the action's ack_wait (default 3; 0 = the old
                 behaviour, delete at PUBACK: the test fails, as it should)
  CI=true        a missing fail2ban/mosquitto is a failure instead of a skip
  KEEP_TMP=1     keep the temp dir
"""

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fail2ban_e2e as e2e  # noqa: E402

BANS = int(os.environ.get("BANLIGHT_CRASH_BANS", "2000"))
TOPIC = "t/crash/hooks"
SOURCE = "crash-srv"
KILL_AT = BANS // 4  # the broker dies once the desk has counted this many
# The action's ack_wait; BANLIGHT_CRASH_ACK_WAIT=0 runs the old behaviour
# (a ban leaves the spool at the broker's PUBACK), which this test must fail.
ACK_WAIT = int(os.environ.get("BANLIGHT_CRASH_ACK_WAIT", "3"))
R = e2e.R
log = e2e.log


class Mosquitto:
    """A private broker without persistence, on a fixed port (restartable)."""

    def __init__(self, tmp):
        self.port = e2e.free_port()
        self.dir = tmp / "mqtt"
        self.dir.mkdir()
        self.dir.chmod(0o777)
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                             "persistence false\nlog_dest stderr\nlog_type error\n")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([e2e.MOSQUITTO, "-c", str(self.conf)], start_new_session=True,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import socket
        ok = e2e.wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", self.port)) == 0)
        if not ok:
            raise e2e.Fatal("mosquitto did not listen")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def close(self):
        e2e.kill_group(self.proc)


def desk_config(bl, broker):
    bl.config.write_text(bl.config.read_text() +
                         f'\n[mqtt]\nurl = "mqtt://127.0.0.1:{broker.port}"\n'
                         'topic_prefix = "t/crash-desk"\nclient_id = "crash-desk"\n'
                         f'subscribe = true\nhooks_topic = "{TOPIC}"\n')


def counted_ips(bl):
    if not bl.db.exists():
        return {}
    con = sqlite3.connect(f"file:{bl.db}?mode=ro", uri=True, timeout=5)
    try:
        out = {}
        for (ip,) in con.execute("SELECT ip FROM events WHERE jail = 'crash'"):
            out[ip] = out.get(ip, 0) + 1
        return out
    finally:
        con.close()


def published_ids(spool):
    """The ips of bans published and waiting for the desk's acknowledgement."""
    out = set()
    for f in spool.glob("s.*"):
        try:
            out.add(f.read_text().split("\n")[2])
        except (OSError, IndexError):
            pass
    return out


def fail2ban_config(tmp, broker, spool, loggerfile):
    d = tmp / "f2b"
    (d / "action.d").mkdir(parents=True)
    shutil.copytree(e2e.STOCK_FILTERS, d / "filter.d")
    shutil.copy(e2e.MQTT_ACTION_FILE, d / "action.d" / "banlight-mqtt.conf")
    idle = tmp / "idle.log"
    idle.touch()
    (d / "fail2ban.conf").write_text(
        "[Definition]\nloglevel = INFO\n"
        f"logtarget = {tmp}/fail2ban.log\nsocket = {tmp}/f2b.sock\npidfile = {tmp}/f2b.pid\n"
        f"dbfile = {tmp}/f2b.sqlite3\ndbpurgeage = 1d\n")
    (d / "jail.conf").write_text(
        "[DEFAULT]\nbackend = polling\nusedns = no\nignoreself = false\nignoreip =\nbantime = 1h\n"
        f"\n[crash]\nenabled = true\nfilter = sshd\nlogpath = {idle}\n"
        f"action = banlight-mqtt[broker=127.0.0.1, port={broker.port}, topic={TOPIC}, route=red,"
        f" source={SOURCE}, deliver={e2e.DELIVER_MQTT}, spool_dir={spool}, spool_max={BANS * 2},"
        f" retry_min=1, retry_max=1, ack_wait={ACK_WAIT}]\n")
    bindir = tmp / "bin"
    bindir.mkdir()
    (bindir / "logger").write_text(f"#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{loggerfile}'\n")
    (bindir / "logger").chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    return d, env


def run(tmp):
    binary = e2e.find_banlight()
    broker = Mosquitto(tmp)
    broker.start()
    bl = e2e.Banlight(binary, tmp)
    desk_config(bl, broker)
    spool = tmp / "spool"
    loggerfile = tmp / "logger.out"
    f2b_dir, env = fail2ban_config(tmp, broker, spool, loggerfile)
    sock = tmp / "f2b.sock"

    def client(*args, timeout=600):
        return subprocess.run(["fail2ban-client", "-c", str(f2b_dir), "-s", str(sock), *args],
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    f2b = None
    try:
        bl.start()
        R.require("the desk subscribes to the hooks topic",
                  bool(e2e.wait_for(lambda: ((bl.status() or {}).get("mqtt") or {}).get("subscribed"))),
                  f"{(bl.status() or {}).get('mqtt')}")
        f2b = subprocess.Popen(["fail2ban-server", "-c", str(f2b_dir), "-s", str(sock), "-p",
                                str(tmp / "f2b.pid"), "-x", "-f"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                               start_new_session=True, env=env)
        R.require("fail2ban starts with the shipped MQTT action",
                  bool(e2e.wait_for(lambda: client("status", "crash").returncode == 0, timeout=60)))
        ips = [f"198.18.{100 + i // 250}.{i % 250 + 1}" for i in range(BANS)]
        log(f"banning {BANS} addresses through fail2ban (banip, 100 at a time)")
        t0 = time.monotonic()
        banned_done = threading.Event()

        def ban_all():
            try:
                for i in range(0, BANS, 100):
                    client("set", "crash", "banip", *ips[i:i + 100])
            finally:
                banned_done.set()

        banner = threading.Thread(target=ban_all, daemon=True)
        banner.start()
        R.require(f"the desk counts bans before the crash (at least {KILL_AT})",
                  bool(e2e.wait_for(lambda: len(counted_ips(bl)) >= KILL_AT, timeout=900, interval=0.05)),
                  f"{len(counted_ips(bl))} counted")
        # The desk stalls (a slow SD card, a Wi-Fi hiccup): the broker
        # queues what it acknowledged for the desk's session; then it dies.
        bl.proc.send_signal(signal.SIGSTOP)
        try:
            time.sleep(3.0)
            queued = published_ids(spool)  # PUBACKed, not yet acknowledged by the desk
            broker.kill()
        finally:
            bl.proc.send_signal(signal.SIGCONT)
        at_kill = len(counted_ips(bl))
        log(f"  desk stalled 3 s, then the broker was SIGKILLed; {len(queued)} bans were published"
            " (PUBACKed) and not yet acknowledged")
        time.sleep(1.0)  # the broker is away for a moment; bans keep coming
        stored = set(counted_ips(bl))  # what the desk had taken before the kill
        lost = {ip for ip in queued if ip not in stored}
        broker.start()
        log(f"  broker restarted (no persistence: it remembers nothing); {len(lost)} of those"
            " were not stored by the desk: the old script had deleted them")
        banner.join(timeout=1800)
        st = client("status", "crash").stdout
        R.check(f"fail2ban banned all {BANS}", banned_done.is_set() and f"Total banned:\t{BANS}" in st, st)
        done = e2e.wait_for(lambda: len(counted_ips(bl)) == BANS and not list(spool.glob("[es].*")),
                            timeout=900, interval=0.25)
        took = time.monotonic() - t0
        counts = counted_ips(bl)
        twice = [ip for ip, n in counts.items() if n != 1]
        missing = sorted(set(ips) - set(counts))
        R.check(f"every one of the {BANS} bans is counted exactly once through the broker crash",
                bool(done) and not twice and not missing and len(counts) == BANS,
                f"{len(counts)} counted, {len(missing)} missing (e.g. {missing[:5]}), counted twice: {twice[:5]};"
                f" spool left {len(list(spool.glob('[es].*')))}")
        st = bl.status() or {}
        R.check("status agrees: the red count is the number of bans",
                st.get("routes", {}).get("red", {}).get("count") == BANS, f"{st.get('routes')}")
        said = loggerfile.read_text().splitlines() if loggerfile.exists() else []
        resent = [ln for ln in said if "publishing them again" in ln]
        R.check("positive control: the crash lost bans the broker had acknowledged,"
                " and the script published them again",
                len(lost) > 0 and bool(resent) and all(counts.get(ip) == 1 for ip in lost),
                f"lost at the broker {len(lost)}; syslog {resent[:2]}")
        mq = st.get("mqtt") or {}
        print("figures:", flush=True)
        print(f"  bans: {BANS}; counted when the broker was killed: {at_kill};"
              f" published (PUBACKed) but unacknowledged then: {len(queued)};"
              f" lost by the broker (the old script's loss): {len(lost)}", flush=True)
        print(f"  desk: hooks received {mq.get('hooks_received')}, counted {mq.get('hooks_counted')},"
              f" repeats not counted {mq.get('hooks_not_counted')}", flush=True)
        print(f"  all {len(counts)} counted once, spool empty, {took:.1f} s after the first ban", flush=True)
    finally:
        if f2b is not None:
            client("stop", timeout=60)
            e2e.kill_group(f2b)
        for pid in e2e.delivery_pids(spool):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        bl.stop()
        e2e.kill_group(bl.proc)
        broker.close()


def main():
    missing = [t for t in ("fail2ban-server", "fail2ban-client", "mosquitto_pub", "mosquitto_sub")
               if shutil.which(t) is None]
    if not os.access(e2e.MOSQUITTO, os.X_OK):
        missing.append(e2e.MOSQUITTO)
    if missing:
        e2e.skip_or_fail(f"{', '.join(missing)} not installed (apt-get install fail2ban mosquitto mosquitto-clients)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = Path(tempfile.mkdtemp(prefix="blcrash-", dir="/tmp"))
    try:
        run(tmp)
    except e2e.Fatal as e:
        if R.failed == 0:
            R.check(str(e), False)
        print(f"aborted: {e}", flush=True)
    except Exception as e:  # noqa: BLE001
        R.check(f"unexpected error: {type(e).__name__}: {e}", False)
        import traceback
        traceback.print_exc()
    finally:
        if R.failed or os.environ.get("KEEP_TMP"):
            for name in ("banlight.log", "fail2ban.log", "logger.out"):
                p = tmp / name
                if p.exists() and R.failed:
                    print(f"---- last lines of {name}:\n" + "\n".join(p.read_text(errors="replace").splitlines()[-30:]))
            print(f"temp dir kept for inspection: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"mqtt crash e2e took {time.monotonic() - e2e.T0:.1f}s")
    print(f"{R.passed} passed, {R.failed} failed")
    sys.exit(1 if R.failed else 0)


if __name__ == "__main__":
    main()
