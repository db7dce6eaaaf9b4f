#!/usr/bin/env bash
# Starts the edge under `wrangler dev` on local D1 and KV:
#   scripts/edge.sh PORT STATE_DIR [--fresh]
# applies the D1 migrations, seeds the demo tenant, then runs the worker on
# 127.0.0.1:PORT. --fresh starts from an empty database (the tests use it).
set -euo pipefail
# The project's Node 22 and tools first (wrangler needs Node 22).
export PATH="$(cd "$(dirname "$0")/.." && pwd)/node_modules/.bin:$PATH"
port=${1:?port}
state=$(realpath -m "${2:?state dir}")
cd "$(dirname "$0")/../edge"
[ "${3:-}" = "--fresh" ] && rm -rf "$state"
mkdir -p "$state"
export WRANGLER_SEND_METRICS=false
# Offline: no fetch of the `Request.cf` sample from Cloudflare at start.
export CLOUDFLARE_CF_FETCH_ENABLED=false
wrangler d1 migrations apply refloop --local --persist-to "$state" >/dev/null
wrangler d1 execute refloop --local --persist-to "$state" --file seed/demo.sql >/dev/null
# --test-scheduled: GET /__scheduled runs the cron (the tests use it).
# REFLOOP_EDGE_VARS: extra `--var NAME:VALUE` flags (the tests lower limits).
# shellcheck disable=SC2086
# REFLOOP_EDGE_LIMITS="RATE_IP=3000 …": a copy of wrangler.toml with these
# Rate Limiting bindings' limits (the e2e suite's browsers all come from
# 127.0.0.1, which `wrangler dev` sends as CF-Connecting-IP).
if [ -n "${REFLOOP_EDGE_LIMITS:-}" ]; then
  cp wrangler.toml wrangler.limits.toml
  for pair in $REFLOOP_EDGE_LIMITS; do
    sed -i "/name = \"${pair%%=*}\"/,/simple/ s/limit = [0-9]*/limit = ${pair#*=}/" wrangler.limits.toml
  done
  REFLOOP_EDGE_CONFIG=wrangler.limits.toml
fi
# REFLOOP_EDGE_SCRIPT: another build of the worker (the benchmark's).
# REFLOOP_EDGE_CONFIG: another wrangler.toml in edge/ (the benchmarks' lift the limits).
exec wrangler dev ${REFLOOP_EDGE_SCRIPT:-} ${REFLOOP_EDGE_CONFIG:+--config "$REFLOOP_EDGE_CONFIG"} --ip 127.0.0.1 --port "$port" --inspector-port $((port + 10000)) \
  --local --persist-to "$state" --show-interactive-dev-session=false --test-scheduled \
  --log-level "${REFLOOP_EDGE_LOG:-warn}" ${REFLOOP_EDGE_VARS:-}
