#!/usr/bin/env python3
"""Idle cost of the live page: the daemon's CPU time, wake-ups (context
switches of all its threads) and RSS over a quiet window, with no page open
and then with the page open in headless Chromium, while two sources'
heartbeats are watched (one up, one not heard yet). Prints figures; not a gate.

Usage: python3 bench/web_idle.py [SECONDS]   (default 20 per window)
Environment: BANLIGHT_BIN (default target/release/banlight), CHROMIUM.
"""

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("web_chromium", REPO / "tests" / "web_chromium.py")
wc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(wc)

TICK = os.sysconf("SC_CLK_TCK")


def sample(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu_s = (int(fields[11]) + int(fields[12])) / TICK  # utime + stime
    switches = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        switches += int(line.split()[1])
        except FileNotFoundError:
            pass
    with open(f"/proc/{pid}/status") as f:
        rss_kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
    return cpu_s, switches, rss_kb


def window(pid, seconds, label):
    c0, s0, _ = sample(pid)
    time.sleep(seconds)  # the measurement window itself
    c1, s1, rss = sample(pid)
    print(f"{label:<12} {seconds:>4.0f} s: CPU {1000 * (c1 - c0):6.0f} ms "
          f"({100 * (c1 - c0) / seconds:.2f} %), wake-ups {s1 - s0:5d}, RSS {rss / 1024:.1f} MiB",
          flush=True)


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
    binary = os.environ.get("BANLIGHT_BIN", str(REPO / "target" / "release" / "banlight"))
    tmp = tempfile.mkdtemp(prefix="bl-idle.")
    port = wc.free_port()
    base = f"http://127.0.0.1:{port}"
    cfg = Path(tmp) / "b.toml"
    cfg.write_text(f'listen = "127.0.0.1:{port}"\nstate_dir = "{tmp}/state"\n'
                   f'control_socket = "{tmp}/c.sock"\n{wc.SOURCES}[panel]\nbackend = "sim"\n')
    d = subprocess.Popen([binary, "--config", str(cfg)], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    browser = None
    try:
        wc.wait_for(lambda: wc.get(base, "/api/status"), "the daemon")
        # Heartbeats are watched all the while: web-1 up, mail-1 not heard yet.
        assert wc.beat(base, "web-1", {"fail2ban": True})["state"] == "up"
        for route in ("red", "blue"):
            wc.get(base, f"/{route}?ip=203.0.113.{len(route)}&token={wc.TOKENS['web-1']}")
        time.sleep(8)  # let both sweeps (2 x 2.4 s) end; the marker then holds, drawing nothing
        window(d.pid, seconds, "page closed")
        browser = wc.Chromium(os.environ.get("CHROMIUM", "chromium"), tmp)
        browser.open(base + "/", 1000, 1400)
        wc.wait_for(lambda: browser.eval("document.getElementById('conn').dataset.state") == "live",
                    "the page")
        time.sleep(3)
        window(d.pid, seconds, "page open")
    finally:
        if browser:
            browser.close()
        d.send_signal(signal.SIGTERM)
        d.wait(timeout=20)
        shutil.rmtree(tmp, ignore_errors=True)  # the Chromium profile is tens of MB


if __name__ == "__main__":
    main()
