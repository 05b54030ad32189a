#!/usr/bin/env python3
"""Hook clients for tests/os/run: CLIENTS threads send hooks to the VM's
forwarded port until STOPFILE exists, each with its own event id and
address, and record every id whose answer said "counted": true (one line
each, flushed at once) in ACKED, and every id sent in SENT.

    hooks.py PORT CLIENTS PREFIX ACKED SENT STOPFILE CYCLE
"""
import json
import os
import sys
import threading
import urllib.request

port, clients, prefix, acked_path, sent_path, stopfile, cycle = sys.argv[1:8]
clients = int(clients)
cycle = int(cycle)
lock = threading.Lock()
acked = open(acked_path, "a")
sent = open(sent_path, "a")


def client(k):
    i = 0
    while not os.path.exists(stopfile):
        i += 1
        eid = f"{prefix}-c{k}-{i}"
        # A distinct address per hook (4096 per cycle, 1024 per client, in
        # 198.18.0.0/15), so the dedupe window never merges two.
        n = (cycle * 4096 + (k << 10) + (i % 1024)) % 131072
        ip = f"198.{18 + (n >> 16)}.{(n >> 8) & 255}.{n & 255}"
        url = f"http://127.0.0.1:{port}/red?jail=cut&ip={ip}&id={eid}"
        with lock:
            sent.write(eid + "\n")
            sent.flush()
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                body = json.loads(r.read())
        except Exception:
            # The VM is gone or not up yet: no answer, so nothing acknowledged.
            threading.Event().wait(0.2)
            continue
        if body.get("counted") is True:
            with lock:
                acked.write(eid + "\n")
                acked.flush()


threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
for t in threads:
    t.start()
for t in threads:
    t.join()
