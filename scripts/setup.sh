#!/usr/bin/env bash
# Sets up augur on a fresh Debian/Ubuntu machine: the system packages llama.cpp
# needs to build (cmake, a C++17 compiler, libclang for bindgen), the openai
# Python client (for the server's tests), a release build of augur, and the
# default models (verified by sha256 into
# ~/.cache/augur/models, or $AUGUR_MODELS_DIR).
#
#   bash scripts/setup.sh               # default target + draft model
#   bash scripts/setup.sh --all-models  # every model in the catalog (tests use them all)
set -euo pipefail
cd "$(dirname "$0")/.."

models=(qwen2.5-coder-1.5b qwen2.5-coder-0.5b)
if [[ "${1:-}" == "--all-models" ]]; then
  models=(--all)
fi

step() { printf '\n==> %s\n' "$*" >&2; }

# 1. System packages (installed only when missing).
packages=(cmake clang libclang-dev pkg-config g++ make git)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ! python3 -m pip --version >/dev/null 2>&1; then
  missing+=(python3 python3-pip)
fi
if ((${#missing[@]})); then
  step "installing system packages: ${missing[*]}"
  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}"
fi

# The official OpenAI Python client: the server's tests drive `augur serve` with it.
if ! python3 -c 'import openai' >/dev/null 2>&1; then
  step "installing the openai Python client"
  python3 -m pip install --quiet openai ||
    python3 -m pip install --quiet --break-system-packages openai
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found; install Rust (https://rustup.rs) and run this again" >&2
  exit 1
fi

# 2. Build (llama.cpp is compiled from source once: several minutes on 2 cores).
step "building augur (release)"
cargo build --release --workspace --locked

# 3. Models.
step "fetching models: ${models[*]}"
./target/release/augur models pull "${models[@]}"
step "ready: ./target/release/augur --help"
