#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need (scripts/setup-test-deps.sh),
# then runs every test with cargo-nextest. Build output goes to a target directory outside the checkout
# (CARGO_TARGET_DIR, default ~/.cache/loam/target) so repeated runs are warm.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-test-deps.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/loam/target}"
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "test: installing cargo-nextest"
  cargo install --locked cargo-nextest
fi
cargo nextest run --workspace --all-targets --no-fail-fast "$@"
