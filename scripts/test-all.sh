#!/usr/bin/env bash
# Runs every test of the project: formatting, lints, docs, the bare-metal no_std build, and the
# whole workspace test suite (unit, conformance, differential, proptest, kernel-mount).
# Differential and mount tests skip with a visible "SKIPPED:" message when the reference
# tools, root or the kernel features are missing; .ci/run installs what they need.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (workspace, all targets)"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo doc (every public item documented, no broken links)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --quiet

step "composefs-format builds for a bare-metal target without alloc or std"
if rustup target list --installed 2>/dev/null | grep -qx thumbv7em-none-eabihf; then
  cargo build -p composefs-format --no-default-features --target thumbv7em-none-eabihf
  cargo build -p composefs-format --no-default-features --features alloc --target thumbv7em-none-eabihf
else
  echo "SKIPPED: rustup target thumbv7em-none-eabihf is not installed (rustup target add thumbv7em-none-eabihf)"
fi

step "cargo test (workspace)"
cargo test --workspace --no-fail-fast
