#!/usr/bin/env python3
"""Differential test: send every request of tests/compat/requests.tsv to the reference
server and to ours, compare the answers, print one line per request and a summary.

    compat.py REF_BASE OURS_BASE REQUESTS.tsv [--ids key=file ...]

Each request line: name, check, path, note (tab separated; '#' starts a comment). Checks:
  text          bodies equal after normalising line ends and trailing blanks
  json[:-k,..]  JSON equal after dropping the listed keys and replacing each server's base URL
  xml           XML equal after dropping the declaration and blanks between tags
  image[:dB]    both 200, same size and channel count, PSNR >= dB (default 35)
  bitonal[:%]   both 200, same size, at most % of pixels differ (default 3)
  status        same HTTP status
  newer         a known difference from Debian's 1.1 (reference-notes.md): ours must answer
                2xx and, for images, decode; counted apart, never compared
  deliberate:S  a deliberate difference (README): ours must answer status S; counted apart
Exit status 1 when any compared request does not match.
"""
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

import numpy as np
from PIL import Image


def fetch(base, path):
    try:
        with urllib.request.urlopen(base + path, timeout=60) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def avif_to_png(body):
    """An AVIF answer decoded to PNG bytes by avifdec (libavif-bin): Pillow may lack AVIF."""
    with tempfile.TemporaryDirectory() as d:
        src, dst = os.path.join(d, "a.avif"), os.path.join(d, "a.png")
        with open(src, "wb") as f:
            f.write(body)
        subprocess.run(["avifdec", src, dst], check=True, capture_output=True)
        with open(dst, "rb") as f:
            return f.read()


def pixels(body):
    if body[4:12] == b"ftypavif":
        body = avif_to_png(body)
    img = Image.open(io.BytesIO(body))
    img.load()
    a = np.asarray(img)
    return a if a.ndim == 3 else a[:, :, None]


def normal_text(body, base):
    text = body.decode("utf-8", "replace").replace(base, "BASE")
    return "\n".join(line.rstrip() for line in text.replace("\r", "").strip().split("\n"))


def normal_json(body, base, drop):
    doc = json.loads(body.decode("utf-8").replace(base, "BASE"))
    for k in drop:
        doc.pop(k, None)
    return doc


def normal_xml(body):
    text = re.sub(r"<\?xml[^>]*\?>", "", body.decode("utf-8"))
    return re.sub(r">\s+<", "><", re.sub(r"\s+", " ", text)).strip()


def compare(check, arg, ref, ours, bases):
    """Returns (ok, detail)."""
    (rs, _, rb), (os_, _, ob) = ref, ours
    if check == "status":
        return rs == os_, f"status {rs} vs {os_}"
    if rs != os_:
        return False, f"status {rs} vs {os_}"
    if check == "text":
        a, b = normal_text(rb, bases[0]), normal_text(ob, bases[1])
        return a == b, "" if a == b else f"{a!r} vs {b!r}"[:300]
    if check == "json":
        drop = [k.lstrip("-") for k in arg.split(",") if k]
        a, b = normal_json(rb, bases[0], drop), normal_json(ob, bases[1], drop)
        return a == b, "" if a == b else f"{a} vs {b}"[:300]
    if check == "xml":
        a, b = normal_xml(rb), normal_xml(ob)
        return a == b, "" if a == b else f"{a!r} vs {b!r}"[:300]
    a, b = pixels(rb), pixels(ob)
    if a.shape != b.shape:
        return False, f"shape {a.shape} vs {b.shape}"
    diff = a.astype(float) - b.astype(float)
    if check == "bitonal":
        pct = 100.0 * np.count_nonzero(np.abs(diff) > 127) / diff.size
        limit = float(arg or 3)
        return pct <= limit, f"{pct:.2f}% differ (limit {limit}%)"
    mse = float((diff ** 2).mean())
    psnr = float("inf") if mse == 0 else 10 * np.log10(255 ** 2 / mse)
    limit = float(arg or 35)
    return psnr >= limit, f"{a.shape[1]}x{a.shape[0]}x{a.shape[2]} PSNR {psnr:.1f} dB (limit {limit:g})"


def check_newer(ours):
    status, ctype, body = ours
    if not 200 <= status < 300:
        return False, f"ours answered {status}"
    if ctype.startswith("image/"):
        a = pixels(body)
        return True, f"ours {a.shape[1]}x{a.shape[0]}x{a.shape[2]} {ctype}"
    return True, f"ours {ctype} {len(body)} bytes"


def main():
    ref_base, ours_base, listing = sys.argv[1:4]
    ids = dict(kv.split("=", 1) for kv in sys.argv[5:]) if "--ids" in sys.argv else {}
    counts = {"match": 0, "differ": 0, "newer": 0, "newer-broken": 0}
    for raw in open(listing, encoding="utf-8"):
        line = raw.rstrip("\n")
        if not line.strip() or line.startswith("#"):
            continue
        name, check, path, *note = line.split("\t")
        path = path.format(**ids)
        kind, _, arg = check.partition(":")
        ours = fetch(ours_base, path)
        if kind == "deliberate":
            ok = str(ours[0]) == arg
            counts["newer" if ok else "newer-broken"] += 1
            print(f"{'DELIBERATE' if ok else 'BROKEN'} {name}: ours {ours[0]} — {note[0] if note else ''}")
            continue
        if kind == "newer":
            ok, detail = check_newer(ours)
            counts["newer" if ok else "newer-broken"] += 1
            print(f"{'NEWER' if ok else 'BROKEN'} {name}: {detail} — {note[0] if note else ''}")
            continue
        ref = fetch(ref_base, path)
        try:
            ok, detail = compare(kind, arg, ref, ours, (ref_base, ours_base))
        except Exception as e:  # undecodable answer: a failure, reported
            ok, detail = False, f"{type(e).__name__}: {e}"
        counts["match" if ok else "differ"] += 1
        print(f"{'ok' if ok else 'DIFFER'} {name}: {detail}")
    total = sum(counts.values())
    print(
        f"compat: {total} requests — {counts['match']} match, {counts['differ']} differ, "
        f"{counts['newer']} expected differences (newest original, or deliberate), "
        f"{counts['newer-broken']} of those failing"
    )
    sys.exit(1 if counts["differ"] or counts["newer-broken"] else 0)


if __name__ == "__main__":
    main()
