#!/usr/bin/env bash
# Installs exactly the tools refloop builds, runs and tests with, and nothing
# that is already there at the pinned version. Safe to run any number of times;
# both README commands (make dev, make test) run it first.
#
#   Rust:     the wasm32-unknown-unknown target; wasm-bindgen-cli (the version in
#             Cargo.lock), worker-build, wasm-pack, each `cargo install --locked`
#             into ~/.cargo/bin
#   Debian:   chromium and chromium-driver (browser tests)
#   npm:      package-lock.json: Node 22 for wrangler, wrangler, esbuild,
#             binaryen (wasm-opt), @playwright/test
set -euo pipefail
cd "$(dirname "$0")/.."

WORKER_BUILD_VERSION=0.8.7
WASM_PACK_VERSION=0.15.1

say() { printf '\033[1mbootstrap:\033[0m %s\n' "$*"; }
die() { printf '\033[1;31mbootstrap: %s\033[0m\n' "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 is not installed. $2"; }

need cargo "Install Rust with rustup (https://rustup.rs) first."
need rustup "refloop needs rustup to add the wasm32 target."
need npm "Install Node.js (20 or later) with npm first."

# --- Rust target --------------------------------------------------------------
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown || die "rustup could not add wasm32-unknown-unknown"
fi

# --- cargo-installed tools, pinned -------------------------------------------
cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
# The CLI must match the wasm-bindgen library exactly; Cargo.lock says which.
wasm_bindgen_version=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/[^0-9.]/, ""); print; exit}' Cargo.lock)
[ -n "$wasm_bindgen_version" ] || die "Cargo.lock names no wasm-bindgen version"

cargo_tool() { # crate version binary
  local crate=$1 version=$2 bin=$3
  if [ -x "$cargo_bin/$bin" ] && "$cargo_bin/$bin" --version 2>/dev/null | grep -qF "$version"; then
    return
  fi
  say "installing $crate $version (a few minutes, once)"
  cargo install "$crate" --version "$version" --locked \
    || die "cargo install $crate --version $version --locked failed (see above)"
}
cargo_tool wasm-bindgen-cli "$wasm_bindgen_version" wasm-bindgen
cargo_tool worker-build "$WORKER_BUILD_VERSION" worker-build
cargo_tool wasm-pack "$WASM_PACK_VERSION" wasm-pack

# --- Chromium for the browser tests --------------------------------------------
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  command -v apt-get >/dev/null || die "install Chromium and ChromeDriver at /usr/bin/chromium and /usr/bin/chromedriver"
  say "installing Debian's chromium and chromium-driver"
  $sudo apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver >/dev/null \
    || die "apt-get install chromium chromium-driver failed"
fi

# --- npm tools, from package-lock.json ------------------------------------------
stamp=node_modules/.refloop-lock.sha256
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sum" ]; then
  say "installing npm tools from package-lock.json"
  npm ci --no-audit --no-fund --loglevel=error || die "npm ci failed"
  echo "$lock_sum" > "$stamp"
fi
# wrangler runs on the node its shebang finds: this Node 22, first on PATH.
export PATH="$PWD/node_modules/.bin:$PATH"
node --version | grep -q '^v22\.' || die "node_modules/.bin/node is not Node 22 (wrangler needs it)"

# --- schemathesis (PyPI), for the contract test: a venv of Python 3.12 -------------
# (3.11's hypothesis crashed inside schemathesis on this kind of machine).
SCHEMATHESIS_VERSION=4.32.5
st_venv="$HOME/.cache/refloop/schemathesis"
if ! "$st_venv/bin/st" --version 2>/dev/null | grep -q " $SCHEMATHESIS_VERSION\$"; then
  # The first Python 3.12 that runs (a pyenv shim on PATH may not).
  python=
  for candidate in $(command -v python3.12 || true) "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3.12; do
    if "$candidate" --version >/dev/null 2>&1; then python=$candidate; break; fi
  done
  [ -n "$python" ] || die "schemathesis needs Python 3.12 (python3.12 on PATH or in pyenv)"
  say "installing schemathesis $SCHEMATHESIS_VERSION into $st_venv"
  rm -rf "$st_venv"
  "$python" -m venv "$st_venv" && "$st_venv/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION" \
    || die "pip install schemathesis==$SCHEMATHESIS_VERSION failed"
fi

say "tools ready: wasm-bindgen $wasm_bindgen_version, worker-build $WORKER_BUILD_VERSION, wasm-pack $WASM_PACK_VERSION, wrangler $(node_modules/.bin/wrangler --version 2>/dev/null | grep -o "[0-9][0-9.]*" | head -1), $(/usr/bin/chromium --version 2>/dev/null), schemathesis $SCHEMATHESIS_VERSION"
