"""Prints the table of bench/run.sh: each of our runs against the reference's run of the same
workload and connection count, the ratio of requests/s, both p99s, and the target of the
performance issue; then the load runs (errors, peak RSS). Usage: table.py OUT_DIR"""
import csv
import os
import sys

out = sys.argv[1]

# (our configuration, workload) -> (what it is, target ratio or None, p99 must be no worse)
# against the reference's run of the TIFF; JP2_ROWS against its run of the JPEG2000 image.
ROWS = [
    ("http", "hot", "hot tiles, HTTP front end, answer cache 256 MB", 15.0, False),
    ("http-cold", "cold", "cold tiles, HTTP, no answer cache (passthrough)", 8.5, False),
    ("http-cold", "region", "regions -> 512 px, HTTP, no answer cache", 3.0, True),
    ("pt0", "hot", "hot tiles, CODEC_PASSTHROUGH=0", 15.0, False),
    ("pt0-cold", "cold", "cold tiles, CODEC_PASSTHROUGH=0, no answer cache", 2.0, False),
    ("fcgi", "hot", "hot tiles, FastCGI behind lighttpd (like for like)", None, False),
    ("fcgi-cold", "cold", "cold tiles, FastCGI behind lighttpd, no answer cache", None, False),
    ("fcgi-cold", "region", "regions, FastCGI behind lighttpd, no answer cache", None, True),
]
JP2_ROWS = [
    ("jp2-cold", "region", "JPEG2000 regions -> 512 px, HTTP, no answer cache", 10.0, False),
    ("jp2-cold", "cold", "JPEG2000 256-px tiles, cold, no answer cache", None, False),
    ("jph-cold", "region", "HTJ2K regions -> 512 px (reference: its JPEG2000)", None, False),
    ("jph-cold", "cold", "HTJ2K 256-px tiles, cold (reference: its JPEG2000)", None, False),
]
# JPEG2000 runs of ours against our TIFF runs of the same workload: (ours, TIFF run, workload).
VS_TIFF = [
    ("jp2-cold", "http-cold", "region"),
    ("jp2-cold", "pt0-cold", "cold"),
    ("jph-cold", "http-cold", "region"),
    ("jph-cold", "pt0-cold", "cold"),
]


def results(name):
    """The rows of one run's results.tsv, keyed by (workload, conns)."""
    path = os.path.join(out, name, "results.tsv")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return {(r["workload"], r["conns"]): r for r in csv.DictReader(f, delimiter="\t")}


def rss_mb(name):
    """Peak RSS of a run's server processes in MB, or '?'."""
    try:
        with open(os.path.join(out, name + ".rss")) as f:
            return "%.0f" % (int(f.read().strip()) / 1024)
    except (OSError, ValueError):
        return "?"


def num(x):
    return "{:,.0f}".format(float(x))


def ratio_of(a, b):
    """a / b as floats, 0 when b is 0 (a run that answered nothing)."""
    return float(a) / float(b) if float(b) else 0.0


ref_runs = {"reference": results("reference"), "reference-jp2": results("reference-jp2")}
print("| workload | conns | reference req/s | p99 ms | ours req/s | p99 ms | ratio | target | met | ours peak RSS MB |")
print("|---|---|---|---|---|---|---|---|---|---|")
ALL = [r + ("reference",) for r in ROWS] + [r + ("reference-jp2",) for r in JP2_ROWS]
for name, workload, label, target, p99_bound, ref_name in ALL:
    ours, ref = results(name), ref_runs[ref_name]
    for conns in ("2", "16"):
        r, o = ref.get((workload, conns)), ours.get((workload, conns))
        if not r or not o:
            continue
        ratio = ratio_of(o["rps"], r["rps"])
        errors = int(o["non2xx"]) + int(o["sockerr"])
        met = "-"
        if target is not None:
            ok = ratio >= target and errors == 0
            if p99_bound:
                ok = ok and float(o["p99_ms"]) <= float(r["p99_ms"])
            met = "yes" if ok else "no"
        print("| %s | %s | %s | %.2f | %s | %.2f | %.2fx | %s | %s | %s |" % (
            label, conns, num(r["rps"]), float(r["p99_ms"]), num(o["rps"]), float(o["p99_ms"]),
            ratio, ("%gx" % target) + (", p99 no worse" if p99_bound else "") if target else "",
            met, rss_mb(name)))

vs_tiff = []
for jp2, tiff, workload in VS_TIFF:
    a, b = results(jp2), results(tiff)
    for conns in ("2", "16"):
        if (workload, conns) in a and (workload, conns) in b:
            ratio = ratio_of(a[(workload, conns)]["rps"], b[(workload, conns)]["rps"])
            vs_tiff.append("- %s %s at %s connections: %.2fx our TIFF's (%s), i.e. %.1fx slower; "
                           "goal within 3x: %s" % (jp2, workload, conns, ratio, tiff, 1 / max(ratio, 1e-9),
                                                   "met" if ratio >= 1 / 3 else "not met"))
if vs_tiff:
    print()
    print("\n".join(vs_tiff))

ref = ref_runs["reference"]
static = results("static-run")
if static:
    print()
    print("The machine's limit: nginx serving the same 50 hot answers as static files: " + ", ".join(
        "%s req/s at %s connections (%.1fx the reference)" % (
            num(static[("hot", c)]["rps"]), c,
            ratio_of(static[("hot", c)]["rps"], ref[("hot", c)]["rps"]))
        for c in ("2", "16") if ("hot", c) in static and ("hot", c) in ref) + ".")

# Ours against other runs of the same workload, not the reference's:
# (ours, the other run, workload, what it is, target ratio).
VS_OTHER = [
    ("http-cold", "static-run", "cold",
     "cold stored tiles (passthrough) / nginx serving the same answers as files", 0.95),
    ("store", "http-cold", "cold",
     "cold tiles, the image over HTTP with Range (nginx) / from local disk", 0.8),
]
rows = []
for mine, other, workload, label, target in VS_OTHER:
    a, b = results(mine), results(other)
    for conns in ("2", "16"):
        o, t = a.get((workload, conns)), b.get((workload, conns))
        if o and t:
            ratio = ratio_of(o["rps"], t["rps"])
            rows.append("| %s | %s | %s | %.2f | %s | %.2f | %.2fx | %gx | %s |" % (
                label, conns, num(o["rps"]), float(o["p99_ms"]), num(t["rps"]), float(t["p99_ms"]),
                ratio, target, "yes" if ratio >= target else "no"))
if rows:
    print()
    print("| ours against | conns | ours req/s | p99 ms | the other req/s | p99 ms | ratio | target | met |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))

load = results("load")
if load:
    print()
    print("| load (HTTP, default caches 5 + 128 MB) | conns | req/s | p99 ms | requests | non-2xx | socket errors |")
    print("|---|---|---|---|---|---|---|")
    for (workload, conns), o in sorted(load.items()):
        print("| %s | %s | %s | %.2f | %s | %s | %s |" % (
            workload, conns, num(o["rps"]), float(o["p99_ms"]), num(o["reqs"]), o["non2xx"],
            o["sockerr"]))
    print()
    print("Peak RSS of the load run: %s MB (target: the caches' 133 MB + at most 150 MB = 283 MB); "
          "reference (2 processes, both runs): %s MB." % (rss_mb("load"), rss_mb("reference")))
