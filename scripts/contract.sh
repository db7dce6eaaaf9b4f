#!/usr/bin/env bash
# The HTTP contract, fuzzed: schemathesis (every check) generates requests
# from docs/openapi.yaml against the real worker under `wrangler dev`, on a
# fresh local D1 seeded with the demo tenant, and fails on any response the
# spec does not allow. Bounded in time: CONTRACT_SECONDS (default 150).
# Seeded (CONTRACT_SEED, default fixed) so a run can be repeated; explore
# with another, e.g. CONTRACT_SEED=$RANDOM make test-contract.
# What a schema cannot say is allowed per operation in
# tests/contract/schemathesis.toml, each with its reason.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
st="$HOME/.cache/refloop/schemathesis/bin/st"
[ -x "$st" ] || { echo "contract: schemathesis is not installed; run scripts/bootstrap.sh" >&2; exit 1; }
port=${CONTRACT_PORT:-8791}
mkdir -p test-results
# The fuzzer is one client on one IP sending thousands of requests a minute.
REFLOOP_EDGE_LIMITS='RATE_BROWSER=1000000 RATE_SERVER=1000000 RATE_READ=1000000 RATE_IP=1000000' \
  setsid scripts/edge.sh "$port" .wrangler/contract-state --fresh >test-results/contract-edge.log 2>&1 &
edge=$!
trap 'kill -- -"$edge" 2>/dev/null || true' EXIT
for _ in $(seq 120); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 1
done
curl -sf "http://127.0.0.1:$port/healthz" >/dev/null || { cat test-results/contract-edge.log >&2; exit 1; }
"$st" --config-file tests/contract/schemathesis.toml run docs/openapi.yaml \
  --url "http://127.0.0.1:$port" --checks all \
  -H "Authorization: Bearer sk_demo_refloop_secret" \
  --max-time "${CONTRACT_SECONDS:-150}" --workers 2 --seed "${CONTRACT_SEED:-20261204}" \
  --report junit --report-dir test-results/contract
