#!/usr/bin/env bash
# Runs every test: formatting, lints, the shape of the code (no module or crate cycle:
# scripts/module-graph.py; functions' median length at most 10 lines and none over 80:
# scripts/fn-lengths.py), unit and integration tests (real files, real sockets) with the
# default cargo features and without them (no object storage, Redis or memcached),
# the official IIIF validator at levels 0-2 for API 2.0 and 3.0, and the FastCGI front end
# behind lighttpd, nginx, spawn-fcgi and Apache (mod_proxy_fcgi, mod_fcgid), and the
# differential compatibility suite against Debian's iipsrv 1.1 (tests/compat/requests.tsv),
# the viewer in headless Chromium (scripts/viewer-test.sh), the multi-instance test (two
# servers behind nginx, images only in an S3 store, one memcached; scripts/scaleout-test.sh),
# the Debian package swapped in for iipimage-server under Apache and back, with lintian and
# the validator through it (scripts/package-test.sh; it changes the machine's packages),
# and every fuzz target for FUZZ_RUNS inputs (default 200000) each from a fixed seed, so a
# verdict is reproducible (scripts/fuzz.sh --runs; 0 skips).
# Installs the Debian packages it needs when they are missing (scripts/deps.sh package).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh package
cargo fmt --check
(cd fuzz && cargo fmt --check)
scripts/module-graph.py --check
scripts/fn-lengths.py --median 10 --max 80
cargo clippy --workspace --all-targets --release -- -D warnings
cargo clippy --workspace --all-targets --release --no-default-features -- -D warnings
cargo test --workspace --release --no-default-features
cargo test --workspace --release
scripts/validate-iiif.sh
scripts/webservers-test.sh
scripts/compat-test.sh
scripts/viewer-test.sh
scripts/scaleout-test.sh
scripts/package-test.sh
FUZZ_RUNS=${FUZZ_RUNS:-200000}
if [ "$FUZZ_RUNS" -gt 0 ]; then scripts/fuzz.sh --runs "$FUZZ_RUNS"; fi
