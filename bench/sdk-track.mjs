// The SDK's main-thread cost in headless Chromium (issue 5), measured in one
// page: the median cost of `track()` beside a plain array push of the same
// event (the baseline any SDK is compared with), and the time from the
// script tag to `window.refloop` being ready. Run with `make bench-sdk`;
// prints the figures and writes bench/sdk.json.
import { chromium } from '@playwright/test';
import { createServer } from 'node:http';
import { readFile, writeFile } from 'node:fs/promises';

const ROOT = new URL('..', import.meta.url).pathname;
const ROUNDS = 60;
const CALLS = 500;

const page = `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<script>window.__start = performance.now();
window.refloop=window.refloop||[];["track","identify","page","invite","mount","optIn","optOut","reset"].forEach(function(m){refloop[m]=refloop[m]||function(){refloop.push([m].concat([].slice.call(arguments)))}})</script>
<script async src="/v1/sdk.js" data-key="pk_bench_refloop_public" data-api="http://127.0.0.1:9" data-flush-ms="600000" data-batch-size="100"></script>
</head><body>bench</body></html>`;

const server = createServer(async (req, res) => {
  if (req.url === '/') {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    return res.end(page);
  }
  try {
    const body = await readFile(`${ROOT}edge/assets${req.url}`);
    const type = req.url.endsWith('.wasm') ? 'application/wasm' : 'text/javascript';
    res.writeHead(200, { 'Content-Type': type });
    res.end(body);
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const origin = `http://127.0.0.1:${server.address().port}`;

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run'],
});
try {
  const readyMs = [];
  let figures;
  for (let load = 0; load < 5; load++) {
    const context = await browser.newContext();
    const tab = await context.newPage();
    await tab.goto(origin);
    await tab.waitForFunction(() => window.refloop && window.refloop.__refloop === true);
    // Ready: the first moment the loaded SDK answers, from the script's start.
    readyMs.push(await tab.evaluate(() => new Promise((resolve) => {
      (function poll() {
        if (window.refloop.__refloop) resolve(performance.now() - window.__start);
        else setTimeout(poll, 0);
      })();
    })));
    if (load === 0) {
      figures = await tab.evaluate(({ rounds, calls }) => {
        const props = { plan: 'pro', price: 12, tags: ['a', 'b'] };
        const baseline = [];
        const sink = [];
        const median = (xs) => xs.slice().sort((a, b) => a - b)[xs.length >> 1];
        // Timers are coarse (0.1 ms without cross-origin isolation): each
        // sample times enough calls to be far above that.
        const perCall = (fn, n = calls) => {
          const samples = [];
          for (let r = 0; r < rounds; r++) {
            const t0 = performance.now();
            for (let i = 0; i < n; i++) fn(i);
            samples.push(((performance.now() - t0) * 1000) / n);
            // Keep the SDK's buffer from growing across rounds.
            if (window.refloop.queuedCount() > 0) localStorage.clear();
          }
          return median(samples);
        };
        // Warm both paths up, then measure: microseconds per call.
        perCall((i) => sink.push({ event: 'viewed', i, props }), 100 * calls);
        perCall((i) => window.refloop.track('viewed', props));
        const push = perCall((i) => { baseline.push({ type: 'track', event: 'viewed', i, properties: props, at: Date.now() }); if (baseline.length > 10000) baseline.length = 0; }, 100 * calls);
        const track = perCall(() => window.refloop.track('viewed', props));
        return { track_us: track, push_us: push };
      }, { rounds: ROUNDS, calls: CALLS });
    }
    await context.close();
  }
  readyMs.sort((a, b) => a - b);
  const size = JSON.parse(await readFile(`${ROOT}build/sdk/size.json`, 'utf8'));
  const out = {
    track_median_us: +figures.track_us.toFixed(2),
    array_push_median_us: +figures.push_us.toFixed(3),
    track_to_push_ratio: +(figures.track_us / figures.push_us).toFixed(1),
    ready_median_ms: +readyMs[readyMs.length >> 1].toFixed(1),
    tracking_gzip_bytes: size.tracking_gzip_bytes,
  };
  console.log(JSON.stringify(out, null, 2));
  console.log(`track() median ${out.track_median_us} µs (array push ${out.array_push_median_us} µs, ×${out.track_to_push_ratio}); `
    + `script start to ready ${out.ready_median_ms} ms (median of 5 loads); ${out.tracking_gzip_bytes} B gzip`);
  await writeFile(`${ROOT}bench/sdk.json`, `${JSON.stringify(out, null, 2)}\n`);
} finally {
  await browser.close();
  server.close();
}
