#!/usr/bin/env python3
"""The live page in a real headless Chromium.

Starts the real daemon (record panel backend: the frames "the hardware" is
given land in a JSON-lines file), loads http://127.0.0.1:PORT/ in Debian's
chromium driven over --remote-debugging-pipe (the DevTools protocol: JSON
messages separated by NUL bytes on fds 3 and 4; Python stdlib only), fires
hooks with urllib, and reads the page's DOM with Runtime.evaluate:

- the mirrored LEDs end exactly as the last frame the panel backend got, and
  showed the sweeps' colours on the way;
- the 4 digits show exactly the segment bytes of the count (HARDWARE.md's
  table, not the daemon's code);
- the counts table, the 24 h and 30 day charts and the recent events update.

Environment:
  BANLIGHT_BIN   daemon binary (default: <repo>/target/debug/banlight, built
                 with `cargo build` when missing)
  CHROMIUM       browser binary (default: chromium)
  CI=true        a missing chromium is a failure instead of a skip
Options:
  --screenshot PATH   also save a PNG of the page (docs/web.png is made so)
"""

import base64
import json
import os
import random
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
CI = os.environ.get("CI", "").lower() == "true"
DEADLINE = 30.0  # s: generous, the machine is shared
T0 = time.monotonic()

# HARDWARE.md: TM1637 segment bytes of the digits 0-9.
DIGIT_SEGMENTS = [0x3F, 0x06, 0x5B, 0x4F, 0x66, 0x6D, 0x7D, 0x07, 0x7F, 0x6F]
BLUE_MARKER = 2  # the default blue route's marker LED
MARKER_LEVEL = 48  # the default [panel] marker_level


def log(msg):
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


class Failed(Exception):
    pass


passed = 0


def check(name, ok, detail=""):
    global passed
    if not ok:
        raise Failed(f"{name}: {detail}")
    passed += 1
    print(f"  ok    {name}", flush=True)


def skip_or_fail(reason):
    if CI:
        print(f"FAIL: {reason} (CI=true: the browser test must run)")
        sys.exit(1)
    print(f"SKIP: {reason}")
    sys.exit(0)


def wait_for(fn, what, timeout=DEADLINE, interval=0.1):
    end = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = fn()
        except (OSError, ValueError, KeyError, TypeError) as e:
            last = e
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() >= end:
            raise Failed(f"timed out waiting for {what} (last: {last!r})")
        time.sleep(interval)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def count_segments(n):
    """The 4 segment bytes of a count below 10000: right-aligned digits."""
    digits = [DIGIT_SEGMENTS[int(c)] for c in str(n)]
    return [0] * (4 - len(digits)) + digits


def find_banlight():
    env = os.environ.get("BANLIGHT_BIN")
    if env:
        return env
    p = REPO / "target" / "debug" / "banlight"
    if not os.access(p, os.X_OK):
        log("target/debug/banlight missing: running cargo build")
        subprocess.run(["cargo", "build"], cwd=REPO, check=True)
    return str(p)


class Chromium:
    """Headless Chromium over --remote-debugging-pipe: commands on fd 3,
    answers and events on fd 4, each a JSON message ending in NUL."""

    def __init__(self, binary, tmp):
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()

        def fds():
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self.proc = subprocess.Popen(
            [binary, "--headless=new", "--no-sandbox", "--disable-gpu",
             "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync",
             "--remote-debugging-pipe", f"--user-data-dir={tmp}/chromium",
             "about:blank"],
            pass_fds=(3, 4), preexec_fn=fds, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=open(f"{tmp}/chromium.log", "wb"))
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.buf = b""
        self.next_id = 0
        self.session = None

    def call(self, method, params=None, session=True, timeout=DEADLINE):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self.to_chrome, json.dumps(msg).encode() + b"\0")
        end = time.monotonic() + timeout
        while True:
            while b"\0" in self.buf:
                raw, self.buf = self.buf.split(b"\0", 1)
                m = json.loads(raw)
                if m.get("id") == self.next_id:
                    if "error" in m:
                        raise Failed(f"{method}: {m['error']}")
                    return m["result"]
            if time.monotonic() > end or self.proc.poll() is not None:
                raise Failed(f"chromium did not answer {method}")
            os.set_blocking(self.from_chrome, False)
            try:
                chunk = os.read(self.from_chrome, 1 << 16)
            except BlockingIOError:
                time.sleep(0.01)
                continue
            if not chunk:
                raise Failed("chromium closed the pipe")
            self.buf += chunk

    def open(self, url, width, height):
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget",
                                 {"targetId": target, "flatten": True})["sessionId"]
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        self.call("Page.enable")
        self.call("Page.navigate", {"url": url})

    def eval(self, expression):
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in r:
            raise ValueError(r["exceptionDetails"])
        return r["result"].get("value")

    def screenshot(self, path, width=1000, mobile=False):
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": mobile})
        h = self.eval("Math.ceil(document.documentElement.scrollHeight)")
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": int(h), "deviceScaleFactor": 1, "mobile": mobile})
        time.sleep(0.3)  # a relayout, not an assertion
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        Path(path).write_bytes(base64.b64decode(data))

    def close(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)


# What the page shows, read from its DOM.
PAGE_STATE = """(() => {
  const leds = [...document.querySelectorAll('#leds .led')];
  const digits = [...document.querySelectorAll('#digits .digit')];
  const rows = {};
  for (const tr of document.querySelectorAll('#counts tbody tr'))
    rows[tr.dataset.route] = Number(tr.querySelector('.count').textContent);
  const events = [...document.querySelectorAll('#events tbody tr')].map(
    tr => [...tr.children].map(td => td.textContent));
  const rects = [...document.querySelectorAll('#chart-day rect')].map(
    r => [r.dataset.route, Number(r.dataset.bucket), Number(r.dataset.n)]);
  return {
    conn: document.getElementById('conn').dataset.state,
    leds: leds.map(l => l.dataset.rgb.split(',').map(Number)),
    brightness: leds.map(l => Number(l.dataset.brightness)),
    lit: leds.map(l => l.style.background),
    segments: digits.map(d => Number(d.dataset.seg)),
    segments_drawn: digits.map(d => [...d.children].reduce(
      (b, s, i) => b | (s.classList.contains('on') ? 1 << i : 0), 0)),
    counts: rows,
    total: document.getElementById('total').textContent,
    day_total: Number(document.getElementById('chart-day').dataset.total),
    month_total: Number(document.getElementById('chart-month').dataset.total),
    day_rects: rects,
    events: events,
    heartbeats: document.getElementById('heartbeats').textContent,
    seen: window.__seen || [],
  };
})()"""

# Every LED colour the page showed from now on, as the sweeps went by.
WATCH_LEDS = """(() => {
  window.__seen = [];
  new MutationObserver(() => {
    for (const l of document.querySelectorAll('#leds .led')) window.__seen.push(l.dataset.rgb);
  }).observe(document.getElementById('leds'), {attributes: true, subtree: true});
  return true;
})()"""


def get(base, path):
    with urllib.request.urlopen(base + path, timeout=10) as r:
        return json.loads(r.read())


# The servers that post to this desk, as [[source]]s: hooks carry their
# token, and web-1 and mail-1 send heartbeats.
TOKENS = {"web-1": "web1-token-0123456789ab", "mail-1": "mail1-token-0123456789ab",
          "db-1": "db1-token-0123456789abcd"}
SOURCES = "".join(
    f'[[source]]\nname = "{name}"\ntoken = "{token}"\n'
    + ('heartbeat = "1h"\n' if name != "db-1" else "")
    for name, token in TOKENS.items())


def beat(base, source, body):
    """A heartbeat as fail2ban/banlight-heartbeat sends it."""
    req = urllib.request.Request(
        base + "/api/heartbeat", data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {TOKENS[source]}",
                 "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def seed(base, n, rng):
    """Bans delivered late from servers' spools, spread over the 30-day
    chart. The chart is 30 calendar days (today and the 29 before, from
    local midnight), so right after midnight it reaches back only a little
    over 29 days: ages stay under 28.5 days, inside it at any hour and
    across a DST change."""
    now = int(time.time())
    routes = ["red", "blue", "purple", "green"]
    for i in range(n):
        age = int(rng.random() ** 2 * 28.5 * 86400)
        route = rng.choice(routes[:3] if i % 5 else routes)
        ip = f"198.18.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        jail = rng.choice(["sshd", "nginx-botsearch", "postfix"])
        src = rng.choice(["web-1", "mail-1", "db-1"])
        get(base, f"/{route}?jail={jail}&ip={ip}&token={TOKENS[src]}&time={now - age}")


def run(tmp, screenshot):
    chromium = os.environ.get("CHROMIUM", "chromium")
    if not shutil.which(chromium):
        skip_or_fail(f"{chromium} not installed (apt install chromium)")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    record = Path(tmp) / "frames.jsonl"
    config = Path(tmp) / "banlight.toml"
    config.write_text(f"""listen = "127.0.0.1:{port}"
state_dir = "{tmp}/state"
control_socket = "{tmp}/control.sock"
[panel]
backend = "record"
record_path = "{record}"
sweep_time = "400ms"
sweep_passes = 1
event_display = "1s"
label_time = "300ms"
{SOURCES}""")
    binary = find_banlight()
    log(f"banlight: {binary}")
    daemon = subprocess.Popen([binary, "--config", str(config)], start_new_session=True,
                              stdout=subprocess.DEVNULL,
                              stderr=open(f"{tmp}/banlight.log", "wb"))
    browser = None
    try:
        wait_for(lambda: get(base, "/api/status")["total"] == 0, "the daemon")
        # web-1 is up; mail-1 has not been heard yet (new: no alarm).
        check("web-1's heartbeat is taken",
              beat(base, "web-1", {"fail2ban": True, "jails": {"sshd": 12, "recidive": 2}})["state"] == "up")
        rng = random.Random(11)
        seeded = 120 if screenshot else 30
        seed(base, seeded, rng)
        log(f"seeded {seeded} late bans over 30 days")
        browser = Chromium(chromium, tmp)
        browser.open(base + "/", 1000, 1400)
        state = lambda: browser.eval(PAGE_STATE)  # noqa: E731
        loaded = {}

        def connected():
            s = loaded["last"] = state()
            return s if (s["conn"] == "live" and s["total"] == str(seeded)
                         and s["month_total"] == seeded) else None
        try:
            s = wait_for(connected, "the page to load and connect")
        except Failed as e:
            last = {k: loaded.get("last", {}).get(k) for k in ("conn", "total", "month_total")}
            raise Failed(f"{e}; the page showed {last}") from None
        check("page loads, connects to /api/stream and shows the total", True)
        check("30-day chart holds every seeded ban", s["month_total"] == seeded, s["month_total"])
        day0 = s["day_total"]
        hb_rows = """(() => Object.fromEntries([...document.querySelectorAll('#heartbeats .hb')].map(
          r => [r.dataset.source, [r.dataset.state, r.textContent]])))()"""
        rows = wait_for(lambda: (lambda r: r if r.get("web-1", [""])[0] == "up" else None)(
            browser.eval(hb_rows)), "web-1 up on the page")
        check("the page lists each watched source with its state (web-1 up, mail-1 new)",
              sorted(rows) == ["mail-1", "web-1"] and rows["mail-1"][0] == "new", rows)

        # Let the seeded bans' sweeps play out: the panel at rest shows one
        # dim marker pixel and the count, for a whole second.
        def resting():
            s = state()
            lit = [v for v in s["leds"] if any(v)]
            return (len(lit) == 1 and max(lit[0]) == MARKER_LEVEL
                    and s["segments"] == count_segments(seeded))

        def rested():
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                if not resting():
                    return False
                time.sleep(0.05)
            return True
        wait_for(rested, "the seeded sweeps to end")
        browser.eval(WATCH_LEDS)
        hooks = [("red", "203.0.113.5"), ("red", "203.0.113.6"), ("blue", "203.0.113.7")]
        for route, ip in hooks:
            r = get(base, f"/{route}?jail=sshd&ip={ip}&token={TOKENS['web-1']}")
            check(f"hook /{route} counted", r["counted"], r)
        total = seeded + len(hooks)

        # The sweeps went by on the page in the routes' colours, at full eye.
        def eye(s, channel):
            for x in s["seen"]:
                rgb = [int(c) for c in x.split(",")]
                if rgb[channel] >= 100 and sum(rgb) == rgb[channel]:
                    return True
            return False
        s = wait_for(lambda: (lambda s: s if eye(s, 2) else None)(state()), "a blue sweep on the page")
        check("the page showed the sweeps in red and blue (100+)", eye(s, 0) and eye(s, 2))

        # At rest: the count on the display, the blue marker pixel.
        want_segments = count_segments(total)
        marker = [0, 0, MARKER_LEVEL]

        seen_state = {}

        def at_rest():
            s = state()
            seen_state["last"] = {k: s[k] for k in ("leds", "segments", "total")}
            leds_ok = all(v == (marker if i == BLUE_MARKER else [0, 0, 0])
                          for i, v in enumerate(s["leds"]))
            return s if leds_ok and s["segments"] == want_segments else None
        try:
            s = wait_for(at_rest, f"the marker pixel and {total} on the display")
        except Failed as e:
            raise Failed(f"{e}; the page showed {seen_state.get('last')}") from None
        check(f"digits show the segment bytes of {total}: {want_segments}",
              s["segments"] == want_segments and s["segments_drawn"] == want_segments,
              s["segments"])
        check("the blue marker LED is lit dim blue, the others dark",
              s["leds"][BLUE_MARKER] == marker and s["lit"][BLUE_MARKER] not in ("", "rgb(0, 0, 0)"),
              (s["leds"], s["lit"]))

        # Page and desk agree: the last frame the panel backend got.
        frames = [json.loads(line) for line in record.read_text().splitlines()]
        last = frames[-1]
        check("page LEDs equal the last frame the panel backend got",
              s["leds"] == last["leds"], (s["leds"], last["leds"]))
        check("page LED brightness equals the panel's (0-31)",
              all(b == last["brightness"] for b in s["brightness"]), (s["brightness"], last))
        check("the panel's display text is the count", last["display"].strip() == str(total), last)
        red_seen = any(fr["leds"][i][0] >= 200 and fr["leds"][i][1] == 0 for fr in frames for i in range(8))
        check("the panel backend got the red sweep too", red_seen)

        # Counts, chart and events follow.
        def updated():
            s = state()
            ok = (s["total"] == str(total) and s["day_total"] == day0 + len(hooks)
                  and s["month_total"] == seeded + len(hooks) and len(s["events"]) >= 3
                  and s["events"][0][4] == "203.0.113.7")
            return s if ok else None
        s = wait_for(updated, "counts, charts and recent events to update")
        status = get(base, "/api/status")
        check("counts per route match /api/status",
              all(s["counts"][r] == status["routes"][r]["count"] for r in status["routes"]),
              (s["counts"], status["routes"]))
        check("24 h chart grew by the 3 hooks", s["day_total"] == day0 + 3, s["day_total"])
        last_bucket = max(b for _, b, _ in s["day_rects"])
        now_bars = {r: n for r, b, n in s["day_rects"] if b == last_bucket}
        check("the current 10 minutes hold red 2 and blue 1 (plus seeded)",
              now_bars.get("red", 0) >= 2 and now_bars.get("blue", 0) >= 1, now_bars)
        check("recent events list the newest first with route, source, jail, ip",
              s["events"][0][1:] == ["blue", "web-1", "sshd", "203.0.113.7"]
              and s["events"][1][1:] == ["red", "web-1", "sshd", "203.0.113.6"], s["events"][:2])

        # mail-1's heartbeat says its fail2ban is not answering: down, on
        # the page at once (the stream), with no reload.
        check("mail-1's heartbeat with fail2ban down is taken",
              beat(base, "mail-1", {"fail2ban": False})["state"] == "down")
        rows = wait_for(lambda: (lambda r: r if r.get("mail-1", [""])[0] == "down" else None)(
            browser.eval(hb_rows)), "mail-1 down on the page")
        check("heartbeat states follow on the open page (mail-1 down, web-1 up)",
              rows["web-1"][0] == "up" and rows["mail-1"][0] == "down", rows)

        if screenshot:
            browser.screenshot(screenshot)
            log(f"screenshot saved to {screenshot}")

        # On a phone: one column, nothing wider than the screen.
        browser.call("Emulation.setDeviceMetricsOverride",
                     {"width": 390, "height": 844, "deviceScaleFactor": 3, "mobile": True})
        phone = wait_for(lambda: (lambda p: p if p["width"] == 390 else None)(browser.eval(
            """(() => ({width: window.innerWidth,
                        scroll: document.documentElement.scrollWidth,
                        leds: document.getElementById('leds').getBoundingClientRect().width,
                        cols: getComputedStyle(document.querySelector('main')).gridTemplateColumns}))()""")),
            "the phone viewport")
        check("on a 390 px phone nothing scrolls sideways and the panel fits",
              phone["scroll"] <= 390 and 0 < phone["leds"] <= 390, phone)
        check("on a phone the cards stack in one column",
              len(phone["cols"].split()) == 1, phone["cols"])

        # Axis labels on one line and apart, the events table inside its
        # card, at a phone's and a desktop's width (after a relayout: the
        # charts are drawn for the width they have).
        layout = """(() => {
          const r = {};
          for (const id of ['chart-day', 'chart-month']) {
            const ticks = document.querySelector('#' + id + ' > div');
            const spans = Array.from(ticks.querySelectorAll('span')).map((e) => e.getBoundingClientRect());
            const line = parseFloat(getComputedStyle(ticks).fontSize) * 1.7;
            r[id] = {n: spans.length, one_line: spans.every((b) => b.height <= line),
                     apart: spans.every((b, i) => i === 0 || spans[i - 1].right <= b.left + 0.5)};
          }
          const t = document.getElementById('events');
          r.events = {table: t.scrollWidth, box: t.parentElement.clientWidth};
          r.width = window.innerWidth;
          return r;
        })()"""
        artifacts = Path(os.environ.get("BANLIGHT_ARTIFACTS", "target/ci-artifacts"))
        artifacts.mkdir(parents=True, exist_ok=True)
        for width, height, mobile in ((390, 844, True), (1280, 900, False)):
            browser.call("Emulation.setDeviceMetricsOverride",
                         {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})
            browser.eval("window.dispatchEvent(new Event('resize'))")
            # Drawn again for this width by the next history refresh.
            before = browser.eval("document.body.dataset.refreshed || '0'")
            get(base, f"/red?jail=sshd&ip=198.51.100.{width % 250}&token={TOKENS['web-1']}")
            wait_for(lambda: browser.eval("document.body.dataset.refreshed || '0'") != before,
                     f"the charts redrawn at {width} px")
            got = browser.eval(layout)
            for chart in ("chart-day", "chart-month"):
                c = got[chart]
                check(f"at {width} px the {chart} axis labels stay on one line and apart",
                      c["n"] >= 2 and c["one_line"] and c["apart"], c)
            check(f"at {width} px the recent events fit their card",
                  got["events"]["table"] <= got["events"]["box"], got["events"])
            shot = artifacts / f"web-{width}x{height}.png"
            browser.screenshot(shot, width, mobile)
            log(f"screenshot {shot}")
    finally:
        # With the page still open: its stream must not hold the shutdown up.
        daemon.send_signal(signal.SIGTERM)
        try:
            rc = daemon.wait(timeout=20)
        except subprocess.TimeoutExpired:
            daemon.kill()
            rc = "hung"
        if browser:
            browser.close()
    check("the daemon stops cleanly with a page open", rc == 0, rc)


def main():
    screenshot = None
    if len(sys.argv) == 3 and sys.argv[1] == "--screenshot":
        screenshot = os.path.abspath(sys.argv[2])
    elif len(sys.argv) != 1:
        print(__doc__)
        sys.exit(2)
    tmp = tempfile.mkdtemp(prefix="bl-web.")
    try:
        run(tmp, screenshot)
    except Failed as e:
        print(f"  FAIL  {e}")
        for name in ("banlight.log", "chromium.log"):
            p = Path(tmp) / name
            if p.exists():
                print(f"--- {name} (tail)")
                print("\n".join(p.read_text(errors="replace").splitlines()[-20:]))
        print(f"{passed} passed, 1 failed")
        sys.exit(1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, 0 failed")


if __name__ == "__main__":
    main()
