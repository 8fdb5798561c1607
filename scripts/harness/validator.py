"""The official IIIF validator (../shared/peers/validate.sh, PyPI iiif-validator) at levels
0-2, API 3.0 at BASE/iiif and 2.0 at BASE/iiif/2 (or the levels and prefixes given), each test
one check.

validate.sh writes results.tsv (test, version, level, PASS/FAIL; one row per test run) and
summary.txt (counts per run, the per-test matrix, then "# failures" with each failure's type
and message). A row is a failure when it says FAIL. The validator not running, or running no
test, ends the harness with status 1: that is no verdict on the server.
"""
import os
import subprocess
import sys

IMAGE_ID = "67352ccc-d1b0-11e1-89ae-279075081939"  # the validator's fixed identifier
VERSIONS = (("3.0", "/iiif"), ("2.0", "/iiif/2"))


def section(text, start, stop_blank=False, limit=None):
    """The lines of text from the first line starting with start (included), to the first
    blank line (stop_blank) or the end, at most limit of them."""
    lines = text.splitlines()
    for k, line in enumerate(lines):
        if line.startswith(start):
            out = []
            for rest in lines[k:]:
                if stop_blank and not rest.strip():
                    break
                out.append(rest)
            return out[:limit]
    return []


def run(checks, shared, base, images, out, label, name, make_image=True, nores=False, table=False,
        levels="0 1 2", versions=VERSIONS):
    shown = levels.split()
    shown = shown[0] if len(shown) == 1 else f"{shown[0]}-{shown[-1]}"
    for version, prefix in versions:
        dest = f"{out}-{version}"
        env = dict(os.environ, IMAGES=images, OUT=dest, VERSIONS=version, LEVELS=levels, NAME=name,
                   MAKE_IMAGE="1" if make_image else "0", NORES="1" if nores else "0")
        log = f"{dest}.log"
        with open(log, "w") as f:
            status = subprocess.run(["bash", f"{shared}/peers/validate.sh", base + prefix],
                                    env=env, stdout=f, stderr=subprocess.STDOUT).returncode
        log_text = open(log, errors="replace").read()
        if status != 0:
            print(log_text)
            sys.exit(f"{label}: the IIIF validator did not run (validate.sh exit {status})")
        with open(f"{dest}/results.tsv") as f:
            rows = [line.rstrip("\n") for line in f]
        failed = sum("FAIL" in row for row in rows)
        print(f"{label}: IIIF validator v{version} level {shown}: {len(rows)} tests, {failed} failed", flush=True)
        if not rows:
            print(log_text)
            sys.exit(f"{label}: the validator ran no test for v{version}")
        summary = open(f"{dest}/summary.txt", errors="replace").read()
        if table:
            print("\n".join(section(summary, "version", stop_blank=True)) + "\n")
        for row in rows:
            test, v, level, *_ = row.split("\t") + ["", "", ""]
            checks.check(f"{label}: validator v{v} level {level} {test}", "FAIL" not in row, "FAIL", quiet=True)
        if failed:  # the failing tests with the validator's reasons
            print("\n".join(section(summary, "# failures", limit=1 + failed)))
