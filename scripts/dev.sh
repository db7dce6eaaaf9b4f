#!/usr/bin/env bash
# `make dev`: the edge on 127.0.0.1:8787 (local D1/KV, state kept in
# .wrangler/dev-state) and the demo site on 127.0.0.1:8080. Ctrl-C stops both.
set -euo pipefail
# The project's Node 22 and tools first (wrangler needs Node 22).
export PATH="$(cd "$(dirname "$0")/.." && pwd)/node_modules/.bin:$PATH"
cd "$(dirname "$0")/.."
EDGE_PORT=${EDGE_PORT:-8787}
WWW_PORT=${WWW_PORT:-8080}
export REFLOOP_EDGE="http://127.0.0.1:$EDGE_PORT"
export REFLOOP_KEY=pk_demo_refloop_public

pids=()
stop() { trap - INT TERM EXIT; kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap stop INT TERM EXIT

REFLOOP_EDGE_LOG=info scripts/edge.sh "$EDGE_PORT" .wrangler/dev-state & pids+=($!)
PORT=$WWW_PORT node www/serve.mjs & pids+=($!)

for _ in $(seq 1 120); do
  curl -fs "$REFLOOP_EDGE/healthz" >/dev/null 2>&1 && break
  sleep 0.5
done
curl -fs "$REFLOOP_EDGE/healthz" >/dev/null || { echo "the edge did not start" >&2; exit 1; }
# A month of a believable program, the first time only.
node scripts/seed-demo.mjs "$REFLOOP_EDGE" .wrangler/dev-state
cat <<MSG

  refloop is running
    demo site     http://127.0.0.1:$WWW_PORT/            (sign up; then thanks.html, invite.html, consent.html)
    console       $REFLOOP_EDGE/admin/   (sign in with the secret key)
    edge          $REFLOOP_EDGE   (SDK at $REFLOOP_EDGE/v1/sdk.js)
    publishable   pk_demo_refloop_public
    secret        sk_demo_refloop_secret
    try           curl -H 'Authorization: Bearer sk_demo_refloop_secret' '$REFLOOP_EDGE/v1/admin/events?limit=5'

  Ctrl-C stops everything.
MSG
wait -n "${pids[@]}"
