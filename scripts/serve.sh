#!/usr/bin/env bash
# Builds (installing cmake/nasm if needed) and runs the server on http://127.0.0.1:8080/.
# Without FILESYSTEM_PREFIX it serves a generated demo image. Extra arguments go to iipsrv,
# e.g. scripts/serve.sh --http 0.0.0.0:8080
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
exec cargo run --release -- "$@"
