#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets), starting from the committed seeds
# (fuzz/seeds/<target>: real files and every input that once failed), and prints runs and
# seconds per target. Two modes:
#   scripts/fuzz.sh [SECONDS]     # explore: SECONDS (default 60) per target, random seed,
#                                 # growing fuzz/corpus/<target> (not committed)
#   scripts/fuzz.sh --runs N      # reproduce: N inputs per target from seed 1 and the seeds
#                                 # only, so the same commit gives the same verdict anywhere
#                                 # (what scripts/test.sh and CI run)
# A failure stops the script with the input saved under fuzz/artifacts/<target>/: fix it,
# add a regression test, and commit the input to fuzz/seeds/<target>/.
# Needs cargo-fuzz (`cargo install cargo-fuzz`); the stable toolchain runs it with
# RUSTC_BOOTSTRAP=1 (the sanitizer flags are unstable options).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--runs" ]; then
  limit=(-runs="$2" -seed=1)
  mode="$2 runs, seed 1"
else
  limit=(-max_total_time="${1:-60}")
  mode="${1:-60} s"
fi
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cargo fuzz build -O
summary=""
for target in $(cargo fuzz list); do
  if [ "${1:-}" = "--runs" ]; then
    corpus=$(mktemp -d)
  else
    corpus=fuzz/corpus/$target
    mkdir -p "$corpus"
  fi
  seeds=()
  [ -d "fuzz/seeds/$target" ] && seeds=("fuzz/seeds/$target")
  dict=()
  memory=(-rss_limit_mb=2048)
  case "$target" in
    tiff_file) dict=(-dict=fuzz/tiff.dict) ;;
    # bounded by design: no single allocation past 1 MB, whatever lengths the bytes claim
    fastcgi_records) memory=(-rss_limit_mb=512 -malloc_limit_mb=1) ;;
  esac
  log=$(mktemp)
  if ! cargo fuzz run -O "$target" "$corpus" "${seeds[@]}" -- \
      "${limit[@]}" "${memory[@]}" -timeout=10 "${dict[@]}" >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz: $target FAILED (input in fuzz/artifacts/$target/)" >&2
    exit 1
  fi
  runs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | tail -1)
  summary+="$target: ${runs:-no summary}s"$'\n'
  rm -f "$log"
  [ "${1:-}" = "--runs" ] && rm -rf "$corpus"
done
printf 'fuzz (%s per target):\n%s' "$mode" "$summary"
