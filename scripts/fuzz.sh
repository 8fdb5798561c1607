#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets) for SECONDS each, starting from the
# committed seeds (fuzz/seeds/<target>, real files) plus the corpus grown so far
# (fuzz/corpus/<target>, not committed), and prints runs per target. A crash stops the
# script with the input saved under fuzz/artifacts/<target>/: turn it into a regression
# test and commit the input.
#   scripts/fuzz.sh          # 60 s per target
#   scripts/fuzz.sh 30       # as .ci/run does
# Needs cargo-fuzz (`cargo install cargo-fuzz`); the stable toolchain runs it with
# RUSTC_BOOTSTRAP=1 (the sanitizer flags are unstable options).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-60}
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cargo fuzz build -O
summary=""
for target in $(cargo fuzz list); do
  corpus=fuzz/corpus/$target
  mkdir -p "$corpus"
  seeds=()
  [ -d "fuzz/seeds/$target" ] && seeds=("fuzz/seeds/$target")
  dict=()
  case "$target" in tiff_file) dict=(-dict=fuzz/tiff.dict) ;; esac
  log=$(mktemp)
  if ! cargo fuzz run -O "$target" "$corpus" "${seeds[@]}" -- \
      -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -timeout=10 "${dict[@]}" >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz: $target FAILED (input in fuzz/artifacts/$target/)" >&2
    exit 1
  fi
  runs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | tail -1)
  summary+="$target: ${runs:-no summary}s"$'\n'
  rm -f "$log"
done
printf 'fuzz (%s s per target):\n%s' "$SECONDS_PER_TARGET" "$summary"
