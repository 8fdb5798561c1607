"""Command line of the harness: python3 -m harness [--ledger FILE] COMMAND ...

  free-ports N                 the first of N consecutive free ports
  wait URL...                  waits for each URL to answer (about 10 s at most each; never fails)
  validator [options] BASE     the IIIF validator, v3.0 at BASE/iiif and v2.0 at BASE/iiif/2
                               (--levels, --prefix VERSION=PREFIX to choose others)
  webservers SETUP BASE        IIP, DeepZoom, Zoomify and a large answer through a web server
  scaleout-samples PUBLIC DISK answers through the balancer = answers from disk
  scaleout-purge PUBLIC TOKEN  a purge through the balancer, with and without the token
  scaleout-load PUBLIC         regions under load while the script kills (no request fails)
  scaleout-after-kills PUBLIC TOKEN  service after the kills; a purge answers 503
  report TITLE                 prints "TITLE: N passed, M failed"; exit 1 on any failure
  statuses URL                 answers by status in a /metrics page
  rss FILE                     summary of VmRSS samples
  after-faults BASE PATHS BEFORE AFTER   the probe after a web server was killed under load

The check commands add to the ledger (--ledger, required for them); they end with status 0
whatever their checks found (report gives the verdict), and 1 when they could not judge.
"""
import argparse
import sys

from . import scaleout, soak, validator, webservers
from .checks import Checks
from .fetch import free_port_block, wait_for


def main():
    p = argparse.ArgumentParser(prog="harness", description=__doc__.split("\n")[0])
    p.add_argument("--ledger", help="the checks' ledger file, shared by one script's calls")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("free-ports")
    c.add_argument("n", type=int)
    c = sub.add_parser("wait")
    c.add_argument("urls", nargs="+")
    c = sub.add_parser("validator")
    c.add_argument("--shared", required=True, help="the directory holding peers/validate.sh")
    c.add_argument("--images", required=True, help="where the validator's image is (made there if missing)")
    c.add_argument("--out", required=True, help="output prefix: OUT-3.0/, OUT-2.0/")
    c.add_argument("--label", required=True)
    c.add_argument("--name", default="iipsrv-rs")
    c.add_argument("--no-make-image", action="store_true", help="the image must already be there")
    c.add_argument("--nores", action="store_true", help="the image without resolution tags")
    c.add_argument("--table", action="store_true", help="print the counts per version and level")
    c.add_argument("--levels", default="0 1 2", help="the compliance levels run, e.g. \"0\"")
    c.add_argument("--prefix", action="append", metavar="VERSION=PREFIX",
                   help="a version and its path under BASE (repeatable; default 3.0=/iiif 2.0=/iiif/2)")
    c.add_argument("base")
    c = sub.add_parser("webservers")
    c.add_argument("setup")
    c.add_argument("base")
    c = sub.add_parser("scaleout-samples")
    c.add_argument("public")
    c.add_argument("disk")
    c = sub.add_parser("scaleout-purge")
    c.add_argument("public")
    c.add_argument("token")
    c = sub.add_parser("scaleout-load")
    c.add_argument("public")
    c.add_argument("--clients", type=int, default=4)
    c.add_argument("--seconds", type=float, default=12)
    c = sub.add_parser("scaleout-after-kills")
    c.add_argument("public")
    c.add_argument("token")
    c = sub.add_parser("report")
    c.add_argument("title")
    c = sub.add_parser("statuses")
    c.add_argument("url")
    c = sub.add_parser("rss")
    c.add_argument("file")
    c = sub.add_parser("heavy")
    c.add_argument("base")
    c.add_argument("pid", type=int)
    c.add_argument("--clients", type=int, default=32)
    c.add_argument("--seconds", type=float, default=60)
    c.add_argument("paths", nargs="+")
    c = sub.add_parser("after-faults")
    c.add_argument("base")
    c.add_argument("paths")
    c.add_argument("before")
    c.add_argument("after")
    a = p.parse_args()

    if a.command == "free-ports":
        print(free_port_block(a.n))
        return 0
    if a.command == "wait":
        for url in a.urls:
            wait_for(url)
        return 0
    if a.command == "statuses":
        print(soak.statuses(a.url))
        return 0
    if a.command == "rss":
        print(soak.rss(a.file))
        return 0
    if a.command == "heavy":
        soak.heavy(a.base, a.pid, a.clients, a.seconds, a.paths)
        return 0
    if a.command == "after-faults":
        soak.after_faults(a.base, a.paths, a.before, a.after)
        return 0

    if not a.ledger:
        p.error(f"{a.command} needs --ledger")
    checks = Checks(a.ledger)
    if a.command == "validator":
        validator.run(checks, a.shared, a.base.rstrip("/"), a.images, a.out, a.label, a.name,
                      make_image=not a.no_make_image, nores=a.nores, table=a.table, levels=a.levels,
                      versions=[tuple(p.split("=", 1)) for p in a.prefix] if a.prefix else validator.VERSIONS)
    elif a.command == "webservers":
        webservers.run(checks, a.setup, a.base.rstrip("/"))
    elif a.command == "scaleout-samples":
        scaleout.samples(checks, a.public.rstrip("/"), a.disk.rstrip("/"))
    elif a.command == "scaleout-purge":
        scaleout.purges(checks, a.public.rstrip("/"), a.token)
    elif a.command == "scaleout-load":
        scaleout.under_load(checks, a.public.rstrip("/"), a.clients, a.seconds)
    elif a.command == "scaleout-after-kills":
        scaleout.after_kills(checks, a.public.rstrip("/"), a.token)
    elif a.command == "report":
        return checks.report(a.title)
    return 0


if __name__ == "__main__":
    sys.exit(main())
