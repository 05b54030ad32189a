#!/usr/bin/env python3
"""End-to-end test: the real fail2ban + fail2ban/action.d/banlight.conf + banlight.

Starts the banlight daemon on a loopback port with the "record" panel, a private
fail2ban-server (own config dir, socket, pid file and database; polling backend;
no firewall action at all: the jails use only the repository's banlight action),
feeds it sshd log lines and checks what the daemon counted and recorded.

A small capture HTTP server inside this script stands in for the appliance where
headers must be inspected (bearer token / token_file / no token) and serves as a
positive control for the restart test (an action instance with norestored=0).

Python 3 stdlib only. Run from anywhere:  python3 tests/fail2ban_e2e.py
Environment:
  BANLIGHT_BIN   daemon binary (default: <repo>/target/debug/banlight, built
                 with `cargo build` when missing)
  CI=true        a missing fail2ban/curl is a failure instead of a skip
  KEEP_TMP=1     keep the temp dir (logs, configs) for inspection
"""

import datetime
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

REPO = Path(__file__).resolve().parent.parent
ACTION_FILE = REPO / "fail2ban" / "action.d" / "banlight.conf"
SSHGUARD_HOOK = REPO / "fail2ban" / "sshguard" / "sshg-fw-banlight"
STOCK_FILTERS = Path("/etc/fail2ban/filter.d")
DEADLINE = 20.0  # seconds to wait for anything that should happen
QUIET = 2.0  # seconds to watch for something that should NOT happen
MAXRETRY = 3
FILE_TOKEN = "s3cr3t-file-7f2c9a"
INLINE_TOKEN = "s3cr3t-inline-41b8"
CI = os.environ.get("CI", "").lower() == "true"

T0 = time.monotonic()


def log(msg):
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


class Fatal(Exception):
    """A failure after which the remaining checks make no sense."""


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"  ok    {name}", flush=True)
        else:
            self.failed += 1
            extra = f"\n        {detail}" if detail else ""
            print(f"  FAIL  {name}{extra}", flush=True)
        return ok

    def require(self, name, ok, detail=""):
        if not self.check(name, ok, detail):
            raise Fatal(name)


R = Results()


# ---------------------------------------------------------------- helpers

def wait_for(fn, timeout=DEADLINE, interval=0.1):
    """Poll fn() until it returns something truthy or the deadline passes."""
    end = time.monotonic() + timeout
    while True:
        try:
            value = fn()
        except Fatal:
            raise
        except Exception:  # noqa: BLE001 - keep polling through transient errors
            value = None
        if value:
            return value
        if time.monotonic() >= end:
            return value
        time.sleep(interval)


def stays(fn, seconds=QUIET, interval=0.1):
    """True if fn() stays truthy for the whole window."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not fn():
            return False
        time.sleep(interval)
    return bool(fn())


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kill_group(proc, sig=signal.SIGTERM, timeout=10):
    """Signal a process started with start_new_session=True and its group."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=5)


def skip_or_fail(reason):
    if CI:
        print(f"FAIL: {reason} (CI=true: fail2ban e2e test must run)")
        print("0 passed, 1 failed")
        sys.exit(1)
    print(f"SKIP: {reason}")
    print("0 passed, 0 failed, 1 skipped")
    sys.exit(0)


# ---------------------------------------------------------------- banlight

class Banlight:
    def __init__(self, binary, tmp):
        self.binary = binary
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.state_dir = tmp / "state"
        self.record = tmp / "frames.jsonl"
        self.db = self.state_dir / "banlight.db"
        self.config = tmp / "banlight.toml"
        self.logfile = tmp / "banlight.log"
        self.proc = None
        self.config.write_text(
            f'listen = "127.0.0.1:{self.port}"\n'
            f'state_dir = "{self.state_dir}"\n'
            'dedupe_window = "10m"\n'
            "\n[panel]\n"
            'backend = "record"\n'
            f'record_path = "{self.record}"\n'
            "\n[[route]]\n"
            'name = "red"\ncolor = "#ff0000"\nlabel = "SSH"\n'
            "\n[[route]]\n"
            'name = "blue"\ncolor = "#0000ff"\nlabel = "HttP"\n'
        )

    def start(self):
        out = open(self.logfile, "ab")
        self.proc = subprocess.Popen(
            [str(self.binary), "--config", str(self.config)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        out.close()
        # stop waiting as soon as it answers, or exits
        wait_for(lambda: self.proc.poll() is not None or self.status() is not None)
        if self.proc.poll() is not None or self.status() is None:
            raise Fatal(f"banlight did not answer /api/status on {self.base} "
                        f"(exit code {self.proc.poll()}); log:\n{self.tail()}")

    def stop(self):
        """SIGTERM; returns the exit code (None if it had to be killed)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            kill_group(self.proc, signal.SIGKILL)
            return None

    def tail(self, n=30):
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def status(self):
        try:
            with urllib.request.urlopen(self.base + "/api/status", timeout=2) as r:
                return json.load(r)
        except (OSError, ValueError):
            return None

    def count(self, route="red"):
        st = self.status()
        if st is None:
            return None
        return st.get("routes", {}).get(route, {}).get("count")

    def rows(self):
        """All counted events as (route, jail, ip) tuples, read-only."""
        if not self.db.exists():
            return []
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT route, jail, ip FROM events ORDER BY ts_ms").fetchall()
        finally:
            con.close()

    def rows_for(self, ip):
        return [r for r in self.rows() if r[2] == ip]

    def frames(self):
        if not self.record.exists():
            return []
        frames = []
        for line in self.record.read_text().splitlines():
            line = line.strip()
            if line:
                frames.append(json.loads(line))
        return frames


# ---------------------------------------------------------------- capture server

class Capture:
    """Records every request: (path, query dict, Authorization header or None)."""

    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                u = urlsplit(self.path)
                q = {k: v[0] for k, v in parse_qs(u.query, keep_blank_values=True).items()}
                with capture.lock:
                    capture.requests.append((u.path, q, self.headers.get("Authorization")))
                body = b'{"counted":true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def get(self, path=None, ip=None, since=0):
        with self.lock:
            reqs = self.requests[since:]
        return [r for r in reqs if (path is None or r[0] == path) and (ip is None or r[1].get("ip") == ip)]

    def mark(self):
        with self.lock:
            return len(self.requests)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------- fail2ban

class Fail2ban:
    def __init__(self, tmp, banlight_port, capture_port, closed_port, silent_port):
        self.dir = tmp / "f2b"
        self.sock = tmp / "f2b.sock"
        self.pidfile = tmp / "f2b.pid"
        self.dbfile = tmp / "f2b.sqlite3"
        self.logfile = tmp / "fail2ban.log"
        self.outfile = tmp / "fail2ban.out"
        self.authlog = tmp / "auth.log"
        self.capturelog = tmp / "capture.log"
        self.hanglog = tmp / "hang.log"
        self.tokenfile = tmp / "banlight.token"
        self.proc = None

        (self.dir / "action.d").mkdir(parents=True)
        shutil.copytree(STOCK_FILTERS, self.dir / "filter.d")
        # Only the repository's action file, nothing from /etc/fail2ban/action.d.
        shutil.copy(ACTION_FILE, self.dir / "action.d" / "banlight.conf")
        self.authlog.touch()
        self.capturelog.touch()
        self.hanglog.touch()
        self.tokenfile.write_text(f"Authorization: Bearer {FILE_TOKEN}\n")
        self.tokenfile.chmod(0o600)

        (self.dir / "fail2ban.conf").write_text(
            "[Definition]\n"
            "loglevel = INFO\n"
            f"logtarget = {self.logfile}\n"
            f"socket = {self.sock}\n"
            f"pidfile = {self.pidfile}\n"
            f"dbfile = {self.dbfile}\n"
            "dbpurgeage = 1d\n"
            "syslogsocket = auto\n"
            "allowipv6 = auto\n"
        )
        # sshd: the jail under test. Its second action ("control", norestored=0,
        # pointing at the capture server) is a positive control for the restart
        # test: it proves fail2ban really replays restored bans, and it marks the
        # moment the replay happened.
        # capture: header checks (inline token, token_file, none) and a failing
        # token_file action (closed port) whose logged command must not leak it,
        # and a token_file that does not exist.
        # hang: an appliance that accepts the connection but never answers.
        (self.dir / "jail.conf").write_text(
            "[DEFAULT]\n"
            "backend = polling\n"
            "usedns = no\n"
            "ignoreself = false\n"
            "ignoreip =\n"
            "bantime = 1h\n"
            "findtime = 10m\n"
            f"maxretry = {MAXRETRY}\n"
            "\n[sshd]\n"
            "enabled = true\n"
            "filter = sshd\n"
            f"logpath = {self.authlog}\n"
            f"action = banlight[host=127.0.0.1, port={banlight_port}, route=red]\n"
            f"         banlight[actname=control, host=127.0.0.1, port={capture_port}, route=control, norestored=0]\n"
            "\n[capture]\n"
            "enabled = true\n"
            "filter = sshd\n"
            f"logpath = {self.capturelog}\n"
            f"action = banlight[actname=inline, host=127.0.0.1, port={capture_port}, route=inline, token={INLINE_TOKEN}]\n"
            f"         banlight[actname=file, host=127.0.0.1, port={capture_port}, route=file, token_file={self.tokenfile}]\n"
            f"         banlight[actname=none, host=127.0.0.1, port={capture_port}, route=none]\n"
            f"         banlight[actname=leak, host=127.0.0.1, port={closed_port}, route=leak, token_file={self.tokenfile}]\n"
            f"         banlight[actname=missing, host=127.0.0.1, port={capture_port}, route=missing, token_file={tmp}/no-such.token]\n"
            "\n[hang]\n"
            "enabled = true\n"
            "filter = sshd\n"
            f"logpath = {self.hanglog}\n"
            f"action = banlight[host=127.0.0.1, port={silent_port}, route=red]\n"
        )
        self.line_no = 0

    def client(self, *args, timeout=30):
        return subprocess.run(
            ["fail2ban-client", "-c", str(self.dir), "-s", str(self.sock), *args],
            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        )

    def check_config(self):
        return subprocess.run(["fail2ban-client", "-c", str(self.dir), "-t"],
                              capture_output=True, text=True, timeout=60)

    def start(self):
        out = open(self.outfile, "ab")
        self.proc = subprocess.Popen(
            ["fail2ban-server", "-c", str(self.dir), "-s", str(self.sock),
             "-p", str(self.pidfile), "-x", "-f"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        out.close()

        def up():
            if self.proc.poll() is not None:
                raise Fatal(f"fail2ban-server exited with code {self.proc.returncode};"
                            f" log:\n{self.tail()}")
            return (self.client("status", "sshd").returncode == 0
                    and self.client("status", "capture").returncode == 0
                    and self.client("status", "hang").returncode == 0)

        if not wait_for(up, interval=0.3):
            raise Fatal(f"fail2ban-server did not come up (exit code {self.proc.poll()});"
                        f" log:\n{self.tail()}")

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.client("stop")
        try:
            self.proc.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            kill_group(self.proc)

    def banned(self, jail="sshd"):
        r = self.client("status", jail)
        for line in r.stdout.splitlines():
            if "Banned IP list:" in line:
                return set(line.split("Banned IP list:", 1)[1].split())
        return set()

    def log_text(self):
        try:
            return self.logfile.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, n=30):
        text = self.log_text() + "\n" + (self.outfile.read_text(errors="replace")
                                         if self.outfile.exists() else "")
        return "\n".join(text.splitlines()[-n:])

    def sshd_lines(self, ip, n):
        """Append n realistic sshd failure lines for ip (whole lines, stamped now)."""
        variants = [
            "Failed password for root from {ip} port {port} ssh2",
            "Failed password for invalid user admin from {ip} port {port} ssh2",
            "Failed password for ubuntu from {ip} port {port} ssh2",
        ]
        lines = []
        for i in range(n):
            self.line_no += 1
            stamp = datetime.datetime.now().astimezone().isoformat(timespec="microseconds")
            msg = variants[i % len(variants)].format(ip=ip, port=40000 + self.line_no)
            lines.append(f"{stamp} bastion sshd[{21000 + self.line_no}]: {msg}\n")
        with open(self.authlog, "a") as f:
            f.writelines(lines)
            f.flush()

    def noise_line(self):
        stamp = datetime.datetime.now().astimezone().isoformat(timespec="microseconds")
        with open(self.authlog, "a") as f:
            f.write(f"{stamp} bastion sshd[20999]: Accepted publickey for deploy from "
                    "198.51.100.5 port 51234 ssh2: ED25519 SHA256:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG\n")


# ---------------------------------------------------------------- the test

def sshguard_hook(bl, tmp):
    """fail2ban/sshguard/sshg-fw-banlight: forwards sshguard's commands to the real
    backend unchanged and announces each block once."""
    log("sshguard hook: block + release through sshg-fw-banlight")
    seen = tmp / "backend.seen"
    backend = tmp / "fake-backend"
    backend.write_text(f'#!/bin/sh\nwhile read -r l; do echo "$l" >> {seen}; done\n')
    backend.chmod(0o755)
    conf = tmp / "sshguard-banlight.conf"
    conf.write_text(f"BANLIGHT_URL={bl.base}/blue\nBANLIGHT_BACKEND={backend}\nBANLIGHT_SETTLE=0\n")
    commands = "block 198.18.5.5 4 32\nrelease 198.18.5.5 4 32\n"
    r = subprocess.run(["sh", str(SSHGUARD_HOOK)], input=commands, capture_output=True, text=True,
                       timeout=30, env={**os.environ, "BANLIGHT_SSHGUARD_CONF": str(conf)})
    R.check("sshguard hook passes every command to the real backend",
            r.returncode == 0 and seen.exists() and seen.read_text() == commands,
            f"rc={r.returncode} stderr={r.stderr!r} seen={seen.read_text() if seen.exists() else None!r}")
    R.check("sshguard hook: a block is counted once on its route, release counts nothing",
            wait_for(lambda: bl.rows_for("198.18.5.5") == [("blue", "sshguard", "198.18.5.5")])
            and stays(lambda: bl.count("blue") == 1, 1.0),
            f"rows {bl.rows_for('198.18.5.5')} blue count {bl.count('blue')}")


def find_banlight():
    env = os.environ.get("BANLIGHT_BIN")
    if env:
        p = Path(env)
        if not os.access(p, os.X_OK):
            raise Fatal(f"BANLIGHT_BIN={env} is not an executable file")
        return p
    p = REPO / "target" / "debug" / "banlight"
    if not os.access(p, os.X_OK):
        log("target/debug/banlight missing: running cargo build")
        r = subprocess.run(["cargo", "build"], cwd=REPO)
        if r.returncode != 0 or not os.access(p, os.X_OK):
            raise Fatal("cargo build failed or produced no target/debug/banlight")
    return p


def run(tmp):
    binary = find_banlight()
    log(f"banlight binary: {binary}")
    bl = Banlight(binary, tmp)
    cap = Capture()
    closed_port = free_port()  # nothing listens there
    # listens but never accepts: the kernel completes the handshake, nobody answers
    silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    f2b = Fail2ban(tmp, bl.port, cap.port, closed_port, silent.getsockname()[1])
    try:
        _run(bl, cap, f2b)
    finally:
        silent.close()
        f2b.stop()
        kill_group(f2b.proc)
        bl.stop()
        kill_group(bl.proc)
        cap.close()


def _run(bl, cap, f2b):
    r = f2b.check_config()
    R.require("fail2ban accepts the config with the repo's action file (fail2ban-client -t)",
              r.returncode == 0, (r.stdout + r.stderr)[-2000:])

    log("starting banlight")
    bl.start()
    R.check("banlight starts with zero counts", bl.count("red") == 0 and bl.count("blue") == 0,
            f"status: {bl.status()}")

    log("starting fail2ban-server")
    f2b.start()

    # ---- log-driven bans
    log(f"appending sshd failures: 3 IPs reach maxretry={MAXRETRY}, 1 stays below")
    attackers = ["198.18.7.11", "198.18.7.12", "198.18.7.13"]
    below = "198.18.7.20"
    f2b.noise_line()
    f2b.sshd_lines(below, MAXRETRY - 1)
    for ip in attackers:
        f2b.sshd_lines(ip, MAXRETRY)
    got = wait_for(lambda: bl.count("red") == 3)
    R.check("3 log-driven bans counted on route red", got,
            f"red count = {bl.count('red')}; fail2ban banned = {f2b.banned()}\n{f2b.tail(10)}")
    R.check("fail2ban banned exactly the 3 attackers", f2b.banned() == set(attackers),
            f"banned = {f2b.banned()}")
    for ip in attackers:
        rows = bl.rows_for(ip)
        R.check(f"{ip}: one event, route=red jail=sshd", rows == [("red", "sshd", ip)], f"rows: {rows}")
    R.check(f"{below} (below maxretry) not counted", bl.rows_for(below) == [])
    ctl = cap.get("/control", ip=attackers[0])
    R.check(f"log-driven ban sends failures={MAXRETRY}",
            len(ctl) == 1 and ctl[0][1].get("failures") == str(MAXRETRY), f"control requests: {ctl}")
    # more failures from an already banned IP: fail2ban ignores them, nothing new is sent
    f2b.sshd_lines(attackers[0], 2)

    # ---- banip / unbanip
    log("fail2ban-client set sshd banip 203.0.113.9")
    before = bl.count("red")
    r = f2b.client("set", "sshd", "banip", "203.0.113.9")
    R.check("banip succeeds", r.returncode == 0, r.stdout + r.stderr)
    R.check("banip counted once", wait_for(lambda: bl.count("red") == before + 1),
            f"red count {bl.count('red')}, expected {before + 1}")
    R.check("banip event has jail=sshd ip=203.0.113.9",
            bl.rows_for("203.0.113.9") == [("red", "sshd", "203.0.113.9")], f"{bl.rows_for('203.0.113.9')}")

    log("fail2ban-client set sshd banip 2001:db8::9 (IPv6, URL-encoded colons)")
    before = bl.count("red")
    r = f2b.client("set", "sshd", "banip", "2001:db8::9")
    R.check("IPv6 banip counted once with the right ip",
            wait_for(lambda: bl.count("red") == before + 1 and bl.rows_for("2001:db8::9") == [("red", "sshd", "2001:db8::9")]),
            f"red count {bl.count('red')}, rows {bl.rows_for('2001:db8::9')}; {r.stdout}{r.stderr}")

    log("fail2ban-client set sshd unbanip 203.0.113.9")
    before = bl.count("red")
    nrows = len(bl.rows())
    mark = cap.mark()
    r = f2b.client("set", "sshd", "unbanip", "203.0.113.9")
    R.check("unbanip succeeds and the IP is no longer banned",
            r.returncode == 0 and "203.0.113.9" not in f2b.banned(), r.stdout + r.stderr)
    R.check("unban counts nothing", stays(lambda: bl.count("red") == before and len(bl.rows()) == nrows),
            f"red count {bl.count('red')} (was {before})")
    # The daemon's dedupe would hide an unban hook for an IP it just counted; the
    # control instance of the same action (capture server, no dedupe) shows that
    # no request is made at all.
    R.check("unban sends no request at all (control action)", cap.get(since=mark) == [],
            f"requests: {cap.get(since=mark)}")

    # ---- headers: token, token_file, none (capture server)
    log("capture jail: banip 203.0.113.50 (inline token / token_file / no token / unreachable / missing token file)")
    mark = cap.mark()
    t = time.monotonic()
    r = f2b.client("set", "capture", "banip", "203.0.113.50")
    R.check("capture banip succeeds", r.returncode == 0, r.stdout + r.stderr)
    wait_for(lambda: len(cap.get(since=mark)) >= 3)
    log(f"  banip with 5 actions (two failing) took {time.monotonic() - t:.1f}s")
    inline = cap.get("/inline", since=mark)
    filed = cap.get("/file", since=mark)
    none = cap.get("/none", since=mark)
    R.check("token=... sends 'Authorization: Bearer <token>'",
            len(inline) == 1 and inline[0][2] == f"Bearer {INLINE_TOKEN}", f"{inline}")
    R.check("token_file=... sends the header from the file",
            len(filed) == 1 and filed[0][2] == f"Bearer {FILE_TOKEN}", f"{filed}")
    R.check("empty token sends no Authorization header", len(none) == 1 and none[0][2] is None, f"{none}")
    R.check("query carries jail, ip and failures=0 for banip",
            len(none) == 1 and none[0][1] == {"jail": "capture", "ip": "203.0.113.50", "failures": "0"},
            f"{none}")
    mark = cap.mark()
    f2b.client("set", "capture", "banip", "2001:db8::50")
    v6 = wait_for(lambda: cap.get("/none", since=mark))
    R.check("IPv6 address arrives intact (URL-encoded)", v6 and v6[0][1].get("ip") == "2001:db8::50", f"{v6}")
    logtext = f2b.log_text()
    R.check("failing token_file action is logged by fail2ban",
            "Failed to execute ban jail 'capture' action 'leak'" in logtext,
            "expected fail2ban's ERROR for the unreachable /leak action")
    R.check("token from token_file never appears in fail2ban.log", FILE_TOKEN not in logtext)
    R.check("a missing token_file fails loudly instead of sending no header",
            cap.get("/missing") == [] and "cannot read token_file" in logtext
            and "Failed to execute ban jail 'capture' action 'missing'" in logtext,
            f"/missing requests: {cap.get('/missing')}")

    log("hang jail: banip 203.0.113.60 to an appliance that never answers")
    t = time.monotonic()
    r = f2b.client("set", "hang", "banip", "203.0.113.60")
    took = time.monotonic() - t
    log(f"  banip took {took:.1f}s (curl --max-time 3, fail2ban retries once)")
    R.check("a hanging appliance delays a ban by at most 2 x max-time (< 8 s), and the ban stands",
            r.returncode == 0 and took < 8 and "203.0.113.60" in f2b.banned("hang"),
            f"rc={r.returncode} took={took:.1f}s banned={f2b.banned('hang')}")

    # ---- banlight down
    log("stopping banlight (SIGTERM)")
    red_before_stop = bl.count("red")
    rc = bl.stop()
    R.check("banlight exits cleanly on SIGTERM (exit code 0 within 10 s)", rc == 0, f"exit code {rc}")

    log("banlight down: log-driven ban of 198.18.9.1 and banip 203.0.113.77")
    f2b.sshd_lines("198.18.9.1", MAXRETRY)
    R.check("fail2ban still bans from the log while banlight is down",
            wait_for(lambda: "198.18.9.1" in f2b.banned()), f"banned = {f2b.banned()}")
    t = time.monotonic()
    r = f2b.client("set", "sshd", "banip", "203.0.113.77")
    took = time.monotonic() - t
    log(f"  banip with banlight down took {took:.2f}s")
    R.check("banip while banlight is down succeeds quickly (< 8 s)",
            r.returncode == 0 and took < 8 and "203.0.113.77" in f2b.banned(),
            f"rc={r.returncode} took={took:.1f}s banned={f2b.banned()}")
    R.check("the failed hook is logged at ERROR by fail2ban",
            wait_for(lambda: any("Failed to execute ban jail 'sshd' action 'banlight'" in ln
                                 and "203.0.113.77" in ln
                                 for ln in f2b.log_text().splitlines()), timeout=5),
            f2b.tail(10))

    log("restarting banlight")
    bl.start()
    R.check("counts survive a banlight restart", bl.count("red") == red_before_stop,
            f"red count {bl.count('red')}, before stop {red_before_stop}")
    before = bl.count("red")
    r = f2b.client("set", "sshd", "banip", "203.0.113.10")
    R.check("banlight back: the next ban is counted once",
            wait_for(lambda: bl.count("red") == before + 1
                     and bl.rows_for("203.0.113.10") == [("red", "sshd", "203.0.113.10")]),
            f"red count {bl.count('red')}, rows {bl.rows_for('203.0.113.10')}")
    R.check("bans made while banlight was down were not delivered later",
            bl.rows_for("198.18.9.1") == [] and bl.rows_for("203.0.113.77") == [])

    # ---- fail2ban restart: restored bans must not be sent (norestored = 1)
    log("stopping fail2ban (unbans everything)")
    before = bl.count("red")
    nrows = len(bl.rows())
    mark = cap.mark()
    f2b.stop()
    R.check("fail2ban stop (unban of every IP) counts nothing",
            stays(lambda: bl.count("red") == before and len(bl.rows()) == nrows),
            f"red count {bl.count('red')} (was {before})")
    R.check("fail2ban stop sends no request at all (control action)", cap.get(since=mark) == [],
            f"requests: {cap.get(since=mark)}")

    log("restarting fail2ban with the same database")
    mark = cap.mark()
    f2b.start()
    # The control action (norestored=0) receives the replay of restored bans; the
    # banlight action runs before it for each ticket, so once the control has seen
    # a restored IP, the banlight action for that IP has been skipped (or sent).
    replayed = wait_for(lambda: cap.get("/control", ip="203.0.113.77", since=mark)
                        and cap.get("/control", ip="198.18.9.1", since=mark))
    R.check("positive control: fail2ban restored the bans and replayed them to a norestored=0 action",
            bool(replayed) and {"203.0.113.77", "198.18.9.1"} <= f2b.banned(),
            f"control since restart: {cap.get('/control', since=mark)}; banned {f2b.banned()}")
    R.check("restored bans are not sent to banlight (norestored = 1)",
            stays(lambda: bl.count("red") == before and len(bl.rows()) == nrows)
            and bl.rows_for("203.0.113.77") == [] and bl.rows_for("198.18.9.1") == [],
            f"red count {bl.count('red')} (was {before}); rows {bl.rows()[nrows:]}")
    r = f2b.client("set", "sshd", "banip", "203.0.113.11")
    R.check("after the fail2ban restart a new ban is counted once",
            wait_for(lambda: bl.count("red") == before + 1
                     and bl.rows_for("203.0.113.11") == [("red", "sshd", "203.0.113.11")]),
            f"red count {bl.count('red')}")

    # ---- sshguard hook (a stand-in firewall backend; no sshguard needed)
    sshguard_hook(bl, f2b.dir.parent)

    # ---- totals and frames
    expected = attackers + ["203.0.113.9", "2001:db8::9", "203.0.113.10", "203.0.113.11"]
    rows = bl.rows()
    R.check("every counted event: each expected IP exactly once with the right route and jail",
            sorted(rows, key=str) == sorted([("red", "sshd", ip) for ip in expected]
                                            + [("blue", "sshguard", "198.18.5.5")], key=str),
            f"rows: {rows}")
    st = bl.status() or {}
    R.check("status: red and blue counts and the total match",
            bl.count("red") == len(expected) and bl.count("blue") == 1 and st.get("total") == len(expected) + 1,
            f"status: {st}")

    frames = bl.frames()
    lit = [f for f in frames if any(any(c) for c in f.get("leds", []))]
    red_frames = [f for f in lit if all((c[0] > 0 and c[1] == 0 and c[2] == 0) or not any(c)
                                        for c in f["leds"])]
    R.check("recorded frames show the route colour (#ff0000 -> [x,0,0])",
            len(red_frames) > 0 and all(len(f["leds"]) == 8 for f in frames),
            f"{len(frames)} frames, {len(lit)} lit; sample: {lit[:1] or frames[:1]}")
    if frames:
        log(f"  {len(frames)} frames recorded, {len(red_frames)} red; last display {frames[-1].get('display')!r}")


def main():
    missing = [t for t in ("fail2ban-server", "fail2ban-client", "curl") if shutil.which(t) is None]
    if missing:
        skip_or_fail(f"{', '.join(missing)} not installed (apt-get install fail2ban curl)")
    if not (STOCK_FILTERS / "sshd.conf").exists():
        skip_or_fail(f"{STOCK_FILTERS}/sshd.conf not found (fail2ban's stock filters)")

    # SIGTERM (e.g. a CI timeout) still runs the cleanup in the finally blocks.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = Path(tempfile.mkdtemp(prefix="blf2b-", dir="/tmp"))  # short: socket path limit
    try:
        run(tmp)
    except Fatal as e:
        if R.failed == 0:
            R.check(str(e), False)
        print(f"aborted: {e}", flush=True)
    except Exception as e:  # noqa: BLE001 - report, clean up, fail
        R.check(f"unexpected error: {type(e).__name__}: {e}", False)
        import traceback
        traceback.print_exc()
    finally:
        if R.failed:
            for name in ("banlight.log", "fail2ban.log", "fail2ban.out"):
                path = tmp / name
                if path.exists():
                    lines = path.read_text(errors="replace").splitlines()[-40:]
                    print(f"---- last lines of {name}:\n" + "\n".join(lines))
        if R.failed or os.environ.get("KEEP_TMP"):
            print(f"temp dir kept for inspection: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"fail2ban e2e took {time.monotonic() - T0:.1f}s")
    print(f"{R.passed} passed, {R.failed} failed")
    sys.exit(1 if R.failed else 0)


if __name__ == "__main__":
    main()
