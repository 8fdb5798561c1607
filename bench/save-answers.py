"""Saves a server's answers to URL paths read from stdin as files under a root directory
(ROOT + path), over one kept-alive connection: the static trees bench/run.sh gives nginx.
Usage: save-answers.py BASE_URL ROOT < paths"""
import http.client
import os
import sys
import urllib.parse

base, root = sys.argv[1], sys.argv[2]
u = urllib.parse.urlsplit(base)
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
saved = 0
for line in sys.stdin:
    path = line.strip()
    if not path:
        continue
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    if r.status != 200:
        sys.exit("%s: %d" % (path, r.status))
    out = root + urllib.parse.unquote(path)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "wb") as f:
        f.write(body)
    saved += 1
print("saved %d answers under %s" % (saved, root), file=sys.stderr)
