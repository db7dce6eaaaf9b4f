# refloop's two commands:
#   make dev    build everything, start the edge on local D1/KV and the demo site
#   make test   every test: native cargo, wasm in Chromium, end to end in Chromium
# Both run scripts/bootstrap.sh first, which installs the pinned tools once.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
CARGO_BIN := $(or $(CARGO_HOME),$(HOME)/.cargo)/bin
export PATH := $(CURDIR)/node_modules/.bin:$(CARGO_BIN):$(PATH)
# Local tools for worker-build, instead of the downloads it would attempt.
export WASM_BINDGEN_BIN := $(CARGO_BIN)/wasm-bindgen
export WASM_OPT_BIN := $(CURDIR)/node_modules/.bin/wasm-opt
export ESBUILD_BIN := $(CURDIR)/node_modules/.bin/esbuild
export WRANGLER_SEND_METRICS := false
export CHROMEDRIVER := /usr/bin/chromedriver

.PHONY: dev test bootstrap build sdk console edge test-native test-wasm test-e2e test-contract bench bench-edge bench-sdk soak fuzz clean

dev: bootstrap build
	scripts/dev.sh

test: bootstrap build test-native test-wasm test-e2e test-contract

bootstrap:
	@scripts/bootstrap.sh

build: sdk edge

# The SDK: wasm-pack, wasm-opt and esbuild as wasm-pack.toml says; prints sizes.
sdk:
	cargo xtask build-sdk

# The admin console (www/console), bundled with its chart library into the
# edge's static assets: served at /admin.
console:
	mkdir -p edge/assets/admin
	esbuild www/console/app.js --bundle --format=esm --minify --target=es2020 --log-level=warning \
	  --outfile=edge/assets/admin/app.js
	cp www/console/index.html edge/assets/admin/index.html
	cp node_modules/uplot/dist/uPlot.min.css edge/assets/admin/uplot.css

# The worker, after the SDK and the console (its assets).
edge: sdk console
	cd edge && worker-build --release

# Clippy over every target too, so a bench or example that no test builds
# cannot rot unseen.
test-native:
	cargo clippy --workspace --all-targets -- -D warnings
	cargo test --workspace

# wasm-bindgen-test in headless Chromium (sdk/webdriver.json sets its flags).
test-wasm:
	cd sdk && wasm-pack test --headless --chrome

test-e2e:
	playwright test

# schemathesis from docs/openapi.yaml against the worker, every check, bounded.
test-contract:
	scripts/contract.sh

# Every figure in one run: bench/REPORT.md and bench/report.json.
bench: bootstrap build
	node bench/report.mjs

# Load figures of the edge under wrangler dev (ingest vs a no-op route,
# leaderboard and stats latency at 100k participants): bench/edge.json.
bench-edge: bootstrap sdk
	node bench/edge-load.mjs

# The SDK's main-thread cost in headless Chromium: bench/sdk.json.
bench-sdk: bootstrap sdk
	node bench/sdk-track.mjs

# Soak and faults: simulated browsers, a fault-injecting proxy, wrangler dev;
# exits non-zero if an event was lost or duplicated or an invariant broke.
soak: bootstrap build
	node bench/soak.mjs

# A long round of the property-based fuzzing of the batch and configuration
# parsers (shared/tests/fuzz.rs), bounded to five minutes.
fuzz:
	FUZZ_CASES=$${FUZZ_CASES:-50000} timeout 300 cargo test --release -p refloop-core --test fuzz

clean:
	cargo clean
	rm -rf build edge/build edge/build-bench edge/assets/admin edge/assets/v1/widgets.js edge/assets/v1/sdk.js edge/assets/v1/*.wasm .wrangler test-results
