#!/usr/bin/env bash
# CI fuzz smoke: builds the cargo-fuzz targets (stable toolchain, no sanitizer), writes the
# seed corpora from the committed test data, replays the committed crash inputs, then runs
# every target for FUZZ_SMOKE_SECONDS (default 20) with the campaign's limits (1 s per
# input, 512 MB). Any crash, hang or OOM fails the script. The long campaign and its
# results are described in FUZZING.md.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET=${FUZZ_SMOKE_SECONDS:-20}
TARGETS=(open_walk check dump_parse write_roundtrip dump_canonical mutate_image)

step() { printf '\n==> %s\n' "$*"; }

if ! cargo fuzz --version >/dev/null 2>&1; then
  step "cargo install cargo-fuzz --locked"
  cargo install cargo-fuzz --locked
fi

step "cargo fuzz build (no sanitizer)"
cargo fuzz build -s none

step "seed corpora (example gen_fuzz_corpus of the conformance package)"
# Reuses the workspace's test build; it only writes a few hundred small files.
cargo run -q -p composefs-conformance --example gen_fuzz_corpus

step "replaying committed crash inputs (tests/data/fuzz/artifacts)"
replay_dir=$(mktemp -d)
trap 'rm -rf "$replay_dir"' EXIT
for hex in tests/data/fuzz/artifacts/*.hex; do
  name=$(basename "$hex" .hex)
  target=${name%%-crash-*}
  python3 -c 'import sys, binascii; sys.stdout.buffer.write(binascii.unhexlify("".join(open(sys.argv[1]).read().split())))' "$hex" > "$replay_dir/$name"
  cargo fuzz run -s none "$target" "$replay_dir/$name" -- -rss_limit_mb=512 -timeout=1 \
    > "$replay_dir/$name.log" 2>&1 || { cat "$replay_dir/$name.log"; exit 1; }
  echo "$name: ok"
done

failed=0
for t in "${TARGETS[@]}"; do
  step "fuzz $t for ${SECONDS_PER_TARGET}s"
  log="$replay_dir/$t.log"
  if cargo fuzz run -s none "$t" -- -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=512 \
      -timeout=1 -print_final_stats=1 > "$log" 2>&1; then
    grep -E '^Done [0-9]+ runs|stat::number_of_executed_units' "$log" || true
  else
    tail -n 60 "$log"
    echo "FAILED: $t (artifacts under fuzz/artifacts/$t)"
    failed=1
  fi
done
exit "$failed"
