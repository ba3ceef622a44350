#!/usr/bin/env bash
# Runs augur's whole test suite on a fresh machine: sets up (system packages,
# release build, every catalog model), checks that the committed C header is
# current, calibrates the models the tests draft with, then runs every test
# in release mode (llama.cpp is built once, in release; tests that need models
# use the real ones).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --all-models
if [[ -f ffi/include/augur.h ]]; then
  printf '\n==> checking ffi/include/augur.h is up to date\n' >&2
  cargo run --release --locked -q -p augur-ffi --bin augur-gen-header
  git diff --exit-code -- ffi/include/augur.h
fi
# Calibrate the models the tests draft with now, on a quiet machine, rather
# than inside the first tests that need it with other tests loading the cores
# (the figures are cached per machine; a cached model costs nothing here).
printf '\n==> calibrating the test models (once per machine, then cached)\n' >&2
./target/release/augur run -m qwen2.5-coder-1.5b --model-draft qwen2.5-coder-0.5b \
  --strategy speculative -p "Hello" -n 1 >/dev/null
./target/release/augur run -m smollm2-135m --strategy prompt-lookup -p "Hello" -n 1 >/dev/null
printf '\n==> running the tests\n' >&2
cargo test --release --workspace --locked
