#!/usr/bin/env bash
# Runs every test: formatting, lints, unit and integration tests (real files, real sockets),
# the official IIIF validator at levels 0-2 for API 2.0 and 3.0, and the FastCGI front end
# behind lighttpd, nginx, spawn-fcgi and Apache (mod_proxy_fcgi, mod_fcgid), and the
# differential compatibility suite against Debian's iipsrv 1.1 (tests/compat/requests.tsv),
# and every fuzz target for FUZZ_SECONDS (default 30) each (scripts/fuzz.sh; 0 skips).
# Installs the Debian packages it needs when they are missing (scripts/deps.sh test).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
cargo fmt --check
(cd fuzz && cargo fmt --check)
cargo clippy --all-targets --release -- -D warnings
cargo test --release
scripts/validate-iiif.sh
scripts/webservers-test.sh
scripts/compat-test.sh
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
if [ "$FUZZ_SECONDS" -gt 0 ]; then scripts/fuzz.sh "$FUZZ_SECONDS"; fi
