"""The reports of scripts/load-test.sh (a manual run that reports and does not fail): the
answers counted by status in the server's /metrics, the resident memory sampled during the
soak, and the probe after the web server was killed under load.
"""
import re

from .fetch import fetch

REQUESTS = re.compile(r'^iipsrv_requests_total\{.*?status="(\d+)".*\}\s+(\S+)\s*$')


def statuses(metrics_url):
    """"200=… 503=…": iipsrv_requests_total summed by status; "none" when there is none."""
    counts = {}
    for line in fetch(metrics_url).body.decode("utf-8", "replace").splitlines():
        m = REQUESTS.match(line)
        if m:
            counts[m[1]] = counts.get(m[1], 0) + int(float(m[2]))
    return " ".join(f"{s}={n}" for s, n in sorted(counts.items())) or "none"


def rss(samples_file):
    """One line from VmRSS samples in kB, one a second: the first and the last minute's mean
    and the maximum, in MB."""
    with open(samples_file) as f:
        v = [int(line) for line in f if line.strip()]
    if not v:
        return "RSS: 0 samples"
    first, last = v[:60], v[-60:]
    return (f"RSS: {len(v)} samples; first minute mean {sum(first) / len(first) / 1024:.0f} MB, "
            f"last minute mean {sum(last) / len(last) / 1024:.0f} MB, max {max(v) / 1024:.0f} MB")


def after_faults(base, paths_file, pids_before, pids_after, count=20):
    """The first `count` paths of paths_file must answer 200 and the FastCGI processes keep
    their PIDs; prints the counts, and "web server faults: survived" when both hold."""
    with open(paths_file) as f:
        paths = [line.strip() for line in f][:count]
    ok = sum(fetch(base + p).status == 200 for p in paths)
    print(f"after the faults: {ok}/{count} answers 200; FastCGI PIDs before: {pids_before} after: {pids_after}")
    if pids_before.split() == pids_after.split() and ok == count:
        print("web server faults: survived")


def peak_rss_mb(pid):
    """The peak resident memory (VmHWM) of process `pid` in MB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def heavy(base, pid, clients, seconds, paths):
    """`clients` clients asking the largest renders (paths, in turn) for `seconds` while a
    probe asks /health every 100 ms: prints the answers by status, the probe's latencies and
    the server's peak RSS. "health under load: ok" when every probe answered within 50 ms."""
    import http.client
    import threading
    import time
    import urllib.parse

    u = urllib.parse.urlsplit(base)
    counts, probes, lock = {}, [], threading.Lock()
    end = time.time() + seconds

    def client(n):
        i = n
        while time.time() < end:
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
            try:
                conn.request("GET", paths[i % len(paths)])
                r = conn.getresponse()
                r.read()
                status = str(r.status)
            except Exception:
                status = "error"
            conn.close()
            with lock:
                counts[status] = counts.get(status, 0) + 1
            i += 1

    def probe():
        while time.time() < end:
            start = time.time()
            try:
                ok = fetch(f"{base}/health", timeout=30).status == 200
            except Exception:
                ok = False
            probes.append((time.time() - start) * 1000 if ok else float("inf"))
            time.sleep(0.1)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    threads.append(threading.Thread(target=probe))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    probes.sort()
    p = lambda q: probes[min(len(probes) - 1, int(q * len(probes)))]
    print("answers by status: " + " ".join(f"{s}={n}" for s, n in sorted(counts.items())))
    print(f"/health: {len(probes)} probes, median {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, max {probes[-1]:.1f} ms")
    print(f"peak RSS: {peak_rss_mb(pid):.0f} MB")
    if probes and probes[-1] <= 50:
        print("health under load: ok")
