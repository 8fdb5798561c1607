"""The test scripts' one Python harness: the assertions and the clients of scripts/*.sh.

The shell scripts start and stop what has no Rust API (web servers, FastCGI spawners,
memcached, the object store, our server's processes), write their configurations and call
this package with the URLs and ports; everything that asks a server something and judges the
answer is here. Standard library only (Debian's python3). Run as `python3 -m harness` with
scripts/ on PYTHONPATH — ports.sh's `harness` function does that.

Modules:
  checks      Checks: named checks kept in a ledger file, so that the several harness calls
              of one script add up; prints the final "NAME: N passed, M failed" line
  fetch       one HTTP request as curl makes it; waiting for a server; free ports
  validator   the official IIIF validator (../shared/peers/validate.sh), one check per test
  load        concurrent clients on kept-alive connections, counting answers
  webservers  the requests of scripts/webservers-test.sh
  scaleout    the requests of scripts/scaleout-test.sh
  soak        the reports of scripts/load-test.sh (answers by status, RSS, the fault probe)
"""
