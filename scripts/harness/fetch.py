"""HTTP requests as the test scripts make them, a wait for a server, and free ports.

fetch() sends one request on a fresh connection, as curl does: no redirect followed, no retry,
and no exception for a refused or broken connection (status 0, as curl's 000).
"""
import http.client
import random
import socket
import sys
import time
import urllib.parse
from collections import namedtuple

Answer = namedtuple("Answer", "status content_type body headers")


def fetch(url, method="GET", headers=None, timeout=120):
    """Returns an Answer; status 0 and an empty body when no answer came."""
    u = urllib.parse.urlsplit(url)
    path = (u.path or "/") + (f"?{u.query}" if u.query else "")
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    try:
        conn.request(method, path, headers={"Accept": "*/*", "User-Agent": "iipsrv-harness", **(headers or {})})
        r = conn.getresponse()
        body = r.read()
        return Answer(r.status, r.getheader("Content-Type", ""), body, r.headers)
    except (OSError, http.client.HTTPException):
        return Answer(0, "", b"", None)
    finally:
        conn.close()


def wait_for(url, tries=100, pause=0.1):
    """Waits for a server that was just started to answer anything at url (about 10 s at most
    when nothing listens). Never fails: a server that did not come up fails the first check."""
    for _ in range(tries):
        if fetch(url, timeout=10).status:
            return True
        time.sleep(pause)
    return False


def free_port_block(n):
    """The first of n consecutive ports free now, between 12000 and 32000: below the kernel's
    ephemeral range, so other tests' outgoing connections cannot take one before a server binds
    it; each port of the block is bound once to see that it is free."""
    for _ in range(500):
        base = random.randrange(12000, 32000 - n)
        socks = []
        try:
            for port in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return base
    sys.exit(f"no block of {n} free ports")
