"""Named checks, each a pass or a failure, kept in a ledger file.

A test script calls the harness several times (between starting and stopping servers); each
call appends its checks to the same ledger, one line per check (PASS or FAIL, the name, the
detail), and the last call reports: "NAME: N passed, M failed", exit status 1 on any failure.
A failure is printed when it is recorded, with its name and detail (unless the caller prints
its failures its own way).
"""
import os


class Checks:
    def __init__(self, ledger):
        self.ledger = ledger

    def _write(self, verdict, name, detail):
        clean = lambda s: str(s).replace("\t", " ").replace("\n", " ")
        with open(self.ledger, "a", encoding="utf-8") as f:
            f.write(f"{verdict}\t{clean(name)}\t{clean(detail)}\n")

    def check(self, name, ok, detail="", quiet=False):
        """Records one check: a pass when ok, else a failure (printed unless quiet: when the
        caller prints the failures its own way). Returns ok."""
        self._write("PASS" if ok else "FAIL", name, detail)
        if not ok and not quiet:
            print(f"FAIL {name}: {detail}" if detail else f"FAIL {name}", flush=True)
        return ok

    def fail(self, name, detail=""):
        return self.check(name, False, detail)

    def also(self, name, ok, detail=""):
        """A further condition on a check already recorded: a failure of its own when it does
        not hold, nothing when it does (so the passes count the requests, not the conditions)."""
        if not ok:
            self.fail(name, detail)
        return ok

    def counts(self):
        passed = failed = 0
        if os.path.exists(self.ledger):
            with open(self.ledger, encoding="utf-8") as f:
                for line in f:
                    verdict = line.split("\t", 1)[0]
                    passed += verdict == "PASS"
                    failed += verdict == "FAIL"
        return passed, failed

    def report(self, title):
        """Prints "TITLE: N passed, M failed" and returns the exit status (1 on any failure)."""
        passed, failed = self.counts()
        print(f"{title}: {passed} passed, {failed} failed", flush=True)
        return 1 if failed else 0
