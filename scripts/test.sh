#!/usr/bin/env bash
# Runs augur's whole test suite on a fresh machine: sets up (system packages,
# release build, every catalog model), checks that the committed C header is
# current, then runs every test in release mode (llama.cpp is built once, in
# release; tests that need models use the real ones).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --all-models
if [[ -f ffi/include/augur.h ]]; then
  printf '\n==> checking ffi/include/augur.h is up to date\n' >&2
  cargo run --release --locked -q -p augur-ffi --bin augur-gen-header
  git diff --exit-code -- ffi/include/augur.h
fi
printf '\n==> running the tests\n' >&2
cargo test --release --workspace --locked
