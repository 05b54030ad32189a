#!/usr/bin/env python3
"""End-to-end over TLS: the real fail2ban runs the repository's action with
exactly the jail line `banlight hook` prints for a [tls] appliance (https,
the appliance's certificate stored as the snippet says and trusted with
--cacert, --connect-to the real address, --pinnedpubkey with its key, no
--insecure), and the ban is counted; the same line with a wrong pin counts
nothing. Standalone (stdlib only), so it
does not depend on tests/fail2ban_e2e.py's internals.

Run:  python3 tests/fail2ban_tls_e2e.py   (BANLIGHT_BIN, CI, KEEP_TMP as there)
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ACTION_FILE = REPO / "fail2ban" / "action.d" / "banlight.conf"
DELIVER = REPO / "fail2ban" / "banlight-deliver"
STOCK_FILTERS = Path("/etc/fail2ban/filter.d")
CI = os.environ.get("CI", "").lower() == "true"
DEADLINE = 30.0
WRONG_PIN = "sha256//47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
failed = 0


def check(what, ok, detail=""):
    global failed
    print(f"{'ok  ' if ok else 'FAIL'} {what}" + ("" if ok else f"\n     {detail}"), flush=True)
    failed += 0 if ok else 1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(fn, timeout=DEADLINE):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if fn():
            return True
        time.sleep(0.2)
    return fn()


def main():
    missing = [t for t in ("fail2ban-server", "fail2ban-client", "curl") if shutil.which(t) is None]
    if missing or not (STOCK_FILTERS / "sshd.conf").exists():
        msg = f"missing: {missing or STOCK_FILTERS / 'sshd.conf'}"
        if CI:
            print(f"FAIL {msg} (required under CI=true)")
            sys.exit(1)
        print(f"skipping: {msg}")
        sys.exit(0)
    binary = Path(os.environ.get("BANLIGHT_BIN", REPO / "target" / "debug" / "banlight"))
    if not binary.exists():
        subprocess.run(["cargo", "build"], cwd=REPO, check=True)
    tmp = Path(tempfile.mkdtemp(prefix="bltls-", dir="/tmp"))
    port, tls_port = free_port(), free_port()
    state = tmp / "state"
    config = tmp / "banlight.toml"
    config.write_text(
        f'listen = "127.0.0.1:{port}"\nstate_dir = "{state}"\n'
        f'control_socket = "{tmp}/control.sock"\n'
        f'[tls]\nlisten = "127.0.0.1:{tls_port}"\n'
        '[panel]\nbackend = "record"\n' f'record_path = "{tmp}/frames.jsonl"\n'
    )
    daemon = f2b = None
    f2b_dir, sock = tmp / "f2b", tmp / "f2b.sock"
    try:
        log = open(tmp / "banlight.log", "ab")
        daemon = subprocess.Popen([str(binary), "--config", str(config)], stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)

        def status():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=2) as r:
                    return json.load(r)
            except (OSError, ValueError):
                return None

        if not wait_for(lambda: status() is not None):
            raise SystemExit("banlight did not start:\n" + (tmp / "banlight.log").read_text())
        snippet = subprocess.run(
            [str(binary), "--config", str(config), "hook", "red", "--jail", "sshd", "--host", "127.0.0.1"],
            capture_output=True, text=True, check=True).stdout
        line = next((l.strip() for l in snippet.splitlines() if l.strip().startswith("banlight[")), "")
        check("banlight hook prints an https line with the pinned key, trusted certificate, no --insecure",
              'scheme="https"' in line and "--pinnedpubkey sha256//" in line
              and f'port="{tls_port}"' in line and "--cacert " in line
              and "--insecure" not in snippet, snippet)
        # The certificate step, done as the owner would: the heredoc's lines
        # into the file the line names (here under the test's directory).
        m = re.search(r"^#\s+cat > (\S+) <<'EOF'\n(.*?)^#\s+EOF$", snippet, re.S | re.M)
        check("banlight hook prints the certificate to store", m is not None, snippet)
        cert_path = m.group(1)
        pem = "".join(l.lstrip("#").strip() + "\n" for l in m.group(2).splitlines())
        (tmp / "server.pem").write_text(pem)
        line = line.replace(cert_path, str(tmp / "server.pem"))
        # As on a server, but with the repository's delivery script and a
        # test spool instead of /usr/local/libexec and /var/spool.
        line = line.replace("banlight[", f"banlight[deliver={DELIVER}, spool_dir={tmp}/spool, "
                            "retry_min=1, retry_max=2, ", 1)
        wrong = re.sub(r"sha256//[A-Za-z0-9+/=]+", WRONG_PIN, line)
        wrong = wrong.replace("banlight[", "banlight[actname=wrongpin, ", 1).replace("route=red", "route=blue")

        (f2b_dir / "action.d").mkdir(parents=True)
        shutil.copytree(STOCK_FILTERS, f2b_dir / "filter.d")
        shutil.copy(ACTION_FILE, f2b_dir / "action.d" / "banlight.conf")
        authlog = tmp / "auth.log"
        authlog.touch()
        (f2b_dir / "fail2ban.conf").write_text(
            "[Definition]\nloglevel = INFO\n"
            f"logtarget = {tmp}/fail2ban.log\nsocket = {sock}\npidfile = {tmp}/f2b.pid\n"
            f"dbfile = {tmp}/f2b.sqlite3\n")
        (f2b_dir / "jail.conf").write_text(
            "[DEFAULT]\nbackend = polling\nusedns = no\nignoreself = false\n"
            "\n[sshd]\nenabled = true\nfilter = sshd\n"
            f"logpath = {authlog}\naction = {line}\n         {wrong}\n")
        # syslog stand-in: banlight-deliver reports failures with `logger -t banlight`
        bindir = tmp / "bin"
        bindir.mkdir()
        loggerfile = tmp / "logger.out"
        (bindir / "logger").write_text(f"#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{loggerfile}'\n")
        (bindir / "logger").chmod(0o755)
        env = {**os.environ, "PATH": f"{bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
        out = open(tmp / "fail2ban.out", "ab")
        f2b = subprocess.Popen(["fail2ban-server", "-c", str(f2b_dir), "-s", str(sock), "-p",
                                str(tmp / "f2b.pid"), "-x", "-f"], stdout=out,
                               stderr=subprocess.STDOUT, start_new_session=True, env=env)

        def client(*args):
            return subprocess.run(["fail2ban-client", "-c", str(f2b_dir), "-s", str(sock), *args],
                                  capture_output=True, text=True, timeout=30)

        check("fail2ban comes up with the snippet's line",
              wait_for(lambda: client("status", "sshd").returncode == 0),
              (tmp / "fail2ban.out").read_text()[-2000:])
        r = client("set", "sshd", "banip", "203.0.113.9")
        check("banip succeeds", r.returncode == 0, r.stdout + r.stderr)

        def red():
            s = status() or {}
            return s.get("routes", {}).get("red", {}).get("count")

        check("the ban arrives over TLS with the right pin and is counted",
              wait_for(lambda: red() == 1), f"status: {status()}")

        def pin_failure_logged():
            text = loggerfile.read_text(errors="replace") if loggerfile.exists() else ""
            # curl exit 90: the key does not match the pin (per appliance, not route)
            return "(90)" in text and "pinned public key" in text

        check("the wrong-pin delivery fails and is logged with logger -t banlight",
              wait_for(pin_failure_logged),
              loggerfile.read_text(errors="replace") if loggerfile.exists() else "(nothing logged)")
        s = status() or {}
        check("and counts nothing", s.get("routes", {}).get("blue", {}).get("count") == 0, f"{s}")
    finally:
        if f2b:
            subprocess.run(["fail2ban-client", "-c", str(f2b_dir), "-s", str(sock), "stop"],
                           capture_output=True, timeout=30)
            try:
                f2b.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(f2b.pid, signal.SIGKILL)
        # The delivery process outlives fail2ban (it owns the spool); the
        # wrong-pin one would retry for ever.
        subprocess.run(["pkill", "-f", f"banlight-deliver run --spool {tmp}/spool"],
                       capture_output=True)
        if daemon:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(daemon.pid, signal.SIGKILL)
        if failed or os.environ.get("KEEP_TMP"):
            print(f"temp dir kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"{'FAILED' if failed else 'passed'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
