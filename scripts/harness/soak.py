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


def _probe(base, seconds, out):
    """/health every 100 ms for `seconds`, in a process of its own (the clients' threads
    and the GIL cannot delay it); sends the latencies in ms (inf for a failed probe)."""
    import time
    latencies = []
    end = time.time() + seconds
    while time.time() < end:
        start = time.time()
        ok = fetch(f"{base}/health", timeout=30).status == 200
        latencies.append((time.time() - start) * 1000 if ok else float("inf"))
        time.sleep(0.1)
    out.send(latencies)


def heavy(base, pid, clients, seconds, paths):
    """`clients` clients asking the largest renders for `seconds` — the paths in turn, `{w}`
    replaced by 4000-4999 so that no answer comes from a cache — while a probe of its own
    (at the server's priority; the clients run at nice +10) asks /health every 100 ms: prints the answers by status, the probe's latencies and the
    server's peak RSS; "health under load: ok" when every probe answered within 50 ms."""
    import http.client
    import multiprocessing
    import os
    import threading
    import time
    import urllib.parse

    u = urllib.parse.urlsplit(base)
    counts, lock = {}, threading.Lock()
    end = time.time() + seconds

    def client(n):
        i = n
        while time.time() < end:
            path = paths[i % len(paths)].replace("{w}", str(4000 + (i * 7919) % 1000))
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
            try:
                conn.request("GET", path)
                r = conn.getresponse()
                r.read()
                status = str(r.status)
            except Exception:
                status = "error"
            conn.close()
            with lock:
                counts[status] = counts.get(status, 0) + 1
            i += clients

    receive, send = multiprocessing.Pipe(duplex=False)
    probe = multiprocessing.Process(target=_probe, args=(base, seconds, send))
    probe.start()
    # The clients share the server's cores here, where in a deployment they are other
    # machines: they run at a lower priority than the server and the probe.
    os.nice(10)
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    probes = sorted(receive.recv())
    probe.join()
    p = lambda q: probes[min(len(probes) - 1, int(q * len(probes)))]
    print("answers by status: " + " ".join(f"{s}={n}" for s, n in sorted(counts.items())))
    print(f"/health: {len(probes)} probes, median {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, max {probes[-1]:.1f} ms")
    print(f"peak RSS: {peak_rss_mb(pid):.0f} MB")
    if probes and probes[-1] <= 50:
        print("health under load: ok")
