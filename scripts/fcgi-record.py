#!/usr/bin/env python3
"""Records what a web server sends a FastCGI application, for the fastcgi_records fuzz
target's seeds: stands in for iipsrv with the same arguments (on --bind HOST:PORT, or on the
listening socket inherited as file descriptor 0), starts the real binary on a private port
and passes every connection through both ways, saving the first 256 KiB each connection
sends to DIR/<pid>-<n>.bin. scripts/webservers-test.sh uses it when RECORD=DIR is set.

    fcgi-record.py DIR IIPSRV [--bind HOST:PORT] [OTHER ARGUMENTS...]
"""
import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time

KEEP = 256 * 1024


def listener(args):
    """The socket web servers connect to, and iipsrv's arguments without --bind."""
    if "--bind" in args:
        i = args.index("--bind")
        host, port = args[i + 1].rsplit(":", 1)
        s = socket.create_server((host, int(port)), backlog=64)
        return s, args[:i] + args[i + 2:]
    return socket.socket(fileno=0), args


def pipe(src, dst, record):
    """Copies src to dst until src ends; keeps what passes in `record` when given."""
    kept = 0
    while True:
        try:
            data = src.recv(65536)
        except OSError:
            data = b""
        if not data:
            break
        if record is not None and kept < KEEP:
            record.write(data[: KEEP - kept])
            kept += len(data)
        try:
            dst.sendall(data)
        except OSError:
            break
    for s in (dst, src):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    if record is not None:
        record.close()


def backend(port):
    """A connection to the real server, once it listens."""
    for _ in range(200):
        try:
            return socket.create_connection(("127.0.0.1", port))
        except OSError:
            time.sleep(0.05)
    raise SystemExit("iipsrv did not start")


def main():
    out, binary, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    front, rest = listener(args)
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    child = subprocess.Popen([binary, "--bind", f"127.0.0.1:{port}", *rest], stdin=subprocess.DEVNULL)
    signal.signal(signal.SIGTERM, lambda *_: (child.terminate(), os._exit(0)))
    for n in itertools.count():
        conn, _ = front.accept()
        back = backend(port)
        record = open(os.path.join(out, f"{os.getpid()}-{n}.bin"), "wb")
        threading.Thread(target=pipe, args=(conn, back, record), daemon=True).start()
        threading.Thread(target=pipe, args=(back, conn, None), daemon=True).start()


if __name__ == "__main__":
    main()
