"""Concurrent clients, each on one kept-alive connection, counting answers 200 and the rest.

A request that fails on the connection (reset, refused, timeout) counts as bad and the client
reconnects; any status but 200 counts as bad and the connection is kept.
"""
import http.client
import threading
import time
import urllib.parse


def run(base, path_of, clients, seconds, timeout=30):
    """path_of(client, i) gives the i-th path (from 1) of a client, relative to base's path.
    Returns (answered 200, bad)."""
    u = urllib.parse.urlsplit(base)
    counts = {"ok": 0, "bad": 0}
    lock = threading.Lock()

    def client(n):
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
        i = 0
        end = time.time() + seconds
        while time.time() < end:
            i += 1
            try:
                conn.request("GET", u.path + path_of(n, i))
                r = conn.getresponse()
                r.read()
                good = r.status == 200
            except Exception:
                conn.close()
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
                good = False
            with lock:
                counts["ok" if good else "bad"] += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts["ok"], counts["bad"]
