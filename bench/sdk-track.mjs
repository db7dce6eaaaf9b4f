// The SDK beside its peers, in one run and one Chromium page harness
// (`make bench-sdk`): what each one's script tag downloads (every script the
// page fetches while it starts, gzip and brotli), the main-thread cost of a
// `track()` call (synchronously, and until the microtasks it queued have
// settled), and, for refloop, the time from the script tag to `window.refloop`
// being ready. The peers are their own published files, pinned in
// bench/peers/package.json and installed here; none reaches a network (their
// endpoints point at a closed port). Prints a table and writes bench/sdk.json.
import { chromium } from '@playwright/test';
import { createServer } from 'node:http';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { gzipSync, brotliCompressSync, constants } from 'node:zlib';

const ROOT = new URL('..', import.meta.url).pathname;
const PEERS_DIR = `${ROOT}bench/peers`;
const ROUNDS = Number(process.env.BENCH_ROUNDS || 20);
// Calls per round: as many as fill about this long, so a round is far above
// the browser's coarse timer (0.1 ms without cross-origin isolation) for a
// cheap track() and a slow one still finishes.
const ROUND_MS = 10;
const READY_LOADS = 15;
// Every subject sends to this harness's collector (any POST: 200), so none
// retries or backs off, and each is seen to deliver what it tracked.
const COLLECTOR = '__ORIGIN__/collect';
// A browser's ordinary user agent: some SDKs drop a headless one's events.
const USER_AGENT = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';

// The pinned peers, installed as their lockfile says (once: npm keeps a copy
// of the lockfile it installed, which must still match).
const installed = `${PEERS_DIR}/node_modules/.package-lock.json`;
if (!existsSync(installed) || statSync(installed).mtimeMs < statSync(`${PEERS_DIR}/package-lock.json`).mtimeMs) {
  execFileSync('npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: PEERS_DIR, stdio: 'inherit' });
}
await mkdir(`${ROOT}build/bench`, { recursive: true });
execFileSync(`${ROOT}node_modules/.bin/esbuild`, [`${PEERS_DIR}/entries/posthog-lite.js`, '--bundle', '--minify', '--format=iife',
  '--target=es2020', `--outfile=${ROOT}build/bench/posthog-lite.js`, '--log-level=warning'], { cwd: PEERS_DIR });

const STUB = '<script>window.refloop=window.refloop||[];["track","identify","page","invite","mount","optIn","optOut","reset"].forEach(function(m){refloop[m]=refloop[m]||function(){refloop.push([m].concat([].slice.call(arguments)))}})</script>';
// Each subject: the tag as its docs give it (snippet, script), when it is
// ready, and its track call.
const SUBJECTS = [
  {
    name: 'refloop',
    tag: `${STUB}<script async src="/v1/sdk.js" data-key="pk_bench_refloop_public" data-api="__ORIGIN__" data-flush-ms="600000" data-batch-size="100"></script>`,
    ready: () => window.refloop && window.refloop.__refloop === true,
    track: (e, p) => window.refloop.track(e, p),
  },
  {
    name: 'Segment analytics-next (standalone)',
    // The snippet, with the CDN and its settings answered by this harness.
    tag: `<script>!function(){var i="analytics",analytics=window[i]=window[i]||[];analytics.methods=["track","page","identify","ready"];analytics.factory=function(e){return function(){var t=Array.prototype.slice.call(arguments);t.unshift(e);analytics.push(t);return analytics}};for(var n=0;n<analytics.methods.length;n++){var k=analytics.methods[n];analytics[k]=analytics.factory(k)}analytics._cdn=location.origin;analytics._writeKey="benchKey";analytics.load=function(key,e){var t=document.createElement("script");t.async=!0;t.src="/analytics-next/bundles/standalone.js";var r=document.getElementsByTagName("script")[0];r.parentNode.insertBefore(t,r);analytics._loadOptions=e};analytics.load("benchKey");analytics.ready(function(){window.__segmentReady=true})}();</script>`,
    ready: () => window.__segmentReady === true,
    track: (e, p) => window.analytics.track(e, p),
  },
  {
    name: 'Mixpanel (mixpanel-browser)',
    // The snippet (its stub, trimmed to the calls used), loading the library
    // from this harness instead of Mixpanel's CDN.
    tag: `<script>(function(f,b){if(!b.__SV){window.mixpanel=b;b._i=[];b.init=function(e,g,c){var a=b;"undefined"!==typeof c?a=b[c]=[]:c="mixpanel";a.people=a.people||[];["track","identify","register"].forEach(function(d){a[d]=function(){a.push([d].concat(Array.prototype.slice.call(arguments,0)))}});b._i.push([e,g,c])};b.__SV=1.2;var e=f.createElement("script");e.async=!0;e.src="/peers/mixpanel-browser/dist/mixpanel.min.js";var s=f.getElementsByTagName("script")[0];s.parentNode.insertBefore(e,s)}})(document,window.mixpanel||[]);mixpanel.init("benchToken",{api_host:"${COLLECTOR}",batch_requests:true,loaded:function(){window.__mixpanelReady=true}})</script>`,
    ready: () => window.__mixpanelReady === true,
    track: (e, p) => window.mixpanel.track(e, p),
  },
  {
    name: 'PostHog (posthog-js array.js)',
    tag: `<script src="/peers/posthog-js/dist/array.js"></script><script>posthog.init("phc_bench",{api_host:"${COLLECTOR}",opt_out_useragent_filter:true,autocapture:false,capture_pageview:false,disable_session_recording:true,disable_surveys:true,advanced_disable_flags:true,loaded:function(){window.__posthogReady=true}})</script>`,
    ready: () => window.__posthogReady === true,
    track: (e, p) => window.posthog.capture(e, p),
  },
  {
    name: 'PostHog lite (posthog-js-lite, bundled)',
    tag: `<script src="/built/posthog-lite.js"></script><script>window.__ph=new PostHogLite("phc_bench",{host:"${COLLECTOR}",flushAt:100,flushInterval:600000,captureMode:"json"})</script>`,
    ready: () => !!window.__ph,
    track: (e, p) => window.__ph.capture(e, p),
  },
  {
    name: 'Snowplow (browser-tracker)',
    tag: `<script src="/peers/@snowplow/browser-tracker/dist/index.umd.min.js"></script><script>snowplowBrowserTracking.newTracker("sp","${COLLECTOR}",{appId:"bench",bufferSize:100,eventMethod:"post"})</script>`,
    ready: () => !!window.snowplowBrowserTracking,
    track: (e, p) => window.snowplowBrowserTracking.trackStructEvent({ category: 'bench', action: e, label: JSON.stringify(p) }),
  },
  {
    name: 'RudderStack (analytics-js v3, bundled)',
    tag: `<script src="/peers/@rudderstack/analytics-js/dist/npm/modern/bundled/umd/index.js"></script><script>window.__rs=new rudderanalytics.RudderAnalytics();window.__rs.load("benchKey","${COLLECTOR}",{getSourceConfig:function(){return {source:{id:"s",name:"s",workspaceId:"w",enabled:true,config:{},destinations:[]}}},onLoaded:function(){window.__rsReady=true}})</script>`,
    ready: () => window.__rsReady === true,
    track: (e, p) => window.__rs.track(e, p),
  },
  {
    name: 'Amplitude (analytics-browser script)',
    tag: `<script src="/peers/@amplitude/analytics-browser/lib/scripts/amplitude-min.js"></script><script>amplitude.init("benchKey",{serverUrl:"${COLLECTOR}/2/httpapi",autocapture:false,flushQueueSize:100})</script>`,
    ready: () => !!(window.amplitude && window.amplitude.track),
    track: (e, p) => window.amplitude.track(e, p),
  },
];

const page = (tag) => `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<script>window.__start=performance.now();(function(){var v;Object.defineProperty(window,"refloop",{configurable:true,get:function(){return v},set:function(x){v=x;if(x&&x.__refloop&&!window.__ready)window.__ready=performance.now()}})})()</script>
${tag}</head><body>bench</body></html>`;

const types = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };
const server = createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  const subject = SUBJECTS[Number(url.searchParams.get('s'))];
  if (url.pathname === '/' && subject) {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    return res.end(page(subject.tag.replaceAll('__ORIGIN__', origin)));
  }
  // The collector: whatever a subject sends is taken (and counted).
  if (req.method === 'POST' || req.method === 'OPTIONS' || url.pathname.startsWith('/collect')) {
    for await (const chunk of req) received.bytes += chunk.length;
    if (req.method === 'POST') received.requests++;
    res.writeHead(req.method === 'POST' ? 200 : 204, { 'Content-Type': 'application/json', 'Access-Control-Allow-Origin': req.headers.origin || '*',
      'Access-Control-Allow-Headers': '*', 'Access-Control-Allow-Credentials': 'true' });
    return res.end(req.method === 'POST' ? '{"accepted":0,"duplicates":0,"rejected":[]}' : '');
  }
  // Segment's CDN: the project's settings (no destination), its bundles.
  if (url.pathname.startsWith('/v1/projects/')) {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    return res.end(JSON.stringify({ integrations: { 'Segment.io': { apiKey: 'benchKey', apiHost: `${origin.slice(7)}/collect`, protocol: 'http' } }, plan: { track: { __default: { enabled: true } } } }));
  }
  const file = url.pathname.startsWith('/peers/') ? `${PEERS_DIR}/node_modules/${url.pathname.slice(7)}`
    : url.pathname.startsWith('/analytics-next/bundles/') ? `${PEERS_DIR}/node_modules/@segment/analytics-next/dist/umd/${url.pathname.slice(24)}`
    : url.pathname.startsWith('/built/') ? `${ROOT}build/bench/${url.pathname.slice(7)}`
    : `${ROOT}edge/assets${url.pathname}`;
  try {
    const body = await readFile(decodeURIComponent(file));
    res.writeHead(200, { 'Content-Type': types[file.slice(file.lastIndexOf('.'))] || 'application/octet-stream' });
    res.end(body);
  } catch {
    res.writeHead(404).end();
  }
});
const received = { requests: 0, bytes: 0 };
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const origin = `http://127.0.0.1:${server.address().port}`;

// A browser per subject: one that misbehaves cannot spoil the next.
const launch = () => chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run'],
});
let browser = null;

// One subject in a fresh context: the scripts its page downloaded while it
// started, and the cost of its track() after it is ready.
async function measure(subject, index) {
  browser = await launch();
  const context = await browser.newContext({ userAgent: USER_AGENT });
  const tab = await context.newPage();
  const scripts = [];
  tab.on('response', async (r) => {
    const type = r.headers()['content-type'] || '';
    if (r.url().startsWith(origin) && /javascript|wasm/.test(type)) scripts.push(r.body().then((b) => ({ url: r.url(), bytes: b })));
  });
  await tab.goto(`${origin}/?s=${index}`);
  await tab.waitForFunction(subject.ready, null, { timeout: 15_000 });
  // What it fetches lazily right after start counts too.
  await tab.waitForTimeout(1_000);
  const files = await Promise.all(scripts);
  const raw = Buffer.concat(files.map((f) => f.bytes));
  const costs = await tab.evaluate(async ({ track, rounds, roundMs }) => {
    const fn = (0, eval)(`(${track})`);
    const props = { plan: 'pro', price: 12, tags: ['a', 'b'] };
    const median = (xs) => xs.slice().sort((a, b) => a - b)[xs.length >> 1];
    // A macrotask after the loop: every microtask the calls queued has run.
    const settled = () => new Promise((resolve) => { const c = new MessageChannel(); c.port1.onmessage = resolve; c.port2.postMessage(0); });
    const sync = [], after = [];
    const w0 = performance.now();
    for (let i = 0; i < 100; i++) fn('warm', props);
    const calls = Math.max(20, Math.min(2000, Math.round((roundMs * 100) / Math.max(performance.now() - w0, 0.1))));
    await settled();
    for (let r = 0; r < rounds; r++) {
      const t0 = performance.now();
      for (let i = 0; i < calls; i++) fn('viewed', props);
      const t1 = performance.now();
      await settled();
      const t2 = performance.now();
      sync.push(((t1 - t0) * 1000) / calls);
      after.push(((t2 - t0) * 1000) / calls);
    }
    return { sync_us: median(sync), settled_us: median(after), calls };
  }, { track: subject.track.toString(), rounds: ROUNDS, roundMs: ROUND_MS });
  // What it tracked reaches the collector (leaving the page sends the rest).
  const before = received.requests;
  await tab.evaluate(() => window.dispatchEvent(new Event('pagehide')));
  await tab.waitForTimeout(3_000);
  const sent = received.requests - before;
  await browser.close();
  return {
    name: subject.name,
    files: files.map((f) => f.url.replace(origin, '')),
    raw_bytes: raw.length,
    gzip_bytes: files.reduce((n, f) => n + gzipSync(f.bytes, { level: 9 }).length, 0),
    brotli_bytes: files.reduce((n, f) => n + brotliCompressSync(f.bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length, 0),
    track_sync_us: +costs.sync_us.toFixed(2),
    track_settled_us: +costs.settled_us.toFixed(2),
    calls_per_round: costs.calls,
    requests_after: sent,
  };
}

// Script tag to `window.refloop` ready (the SDK replaces the stub), fresh
// contexts, the median.
async function readyMs() {
  const times = [];
  browser = await launch();
  for (let i = 0; i < READY_LOADS; i++) {
    const context = await browser.newContext({ userAgent: USER_AGENT });
    const tab = await context.newPage();
    await tab.goto(`${origin}/?s=0`);
    await tab.waitForFunction(SUBJECTS[0].ready);
    times.push(await tab.evaluate(() => window.__ready - window.__start));
    await context.close();
  }
  await browser.close();
  times.sort((a, b) => a - b);
  return +times[times.length >> 1].toFixed(1);
}

try {
  const results = [];
  // BENCH_ONLY=name: refloop and the subjects whose name holds it.
  const only = process.env.BENCH_ONLY;
  for (const [i, s] of SUBJECTS.entries()) {
    if (only && i > 0 && !s.name.includes(only)) continue;
    try {
      results.push(await Promise.race([measure(s, i), new Promise((_, no) => setTimeout(() => no(new Error('over 180 s')), 180_000))]));
    } catch (e) {
      results.push({ name: s.name, error: String(e.message || e).split("\n")[0] });
    }
  }
  const ours = results[0];
  const ready = await readyMs();
  for (const r of results) {
    if (r.error) continue;
    r.gzip_vs_refloop = +(r.gzip_bytes / ours.gzip_bytes).toFixed(2);
    r.track_vs_refloop = +(r.track_sync_us / ours.track_sync_us).toFixed(1);
  }
  const peers = results.slice(1).filter((r) => !r.error);
  const out = {
    rounds: ROUNDS,
    round_ms: ROUND_MS,
    refloop: { gzip_bytes: ours.gzip_bytes, brotli_bytes: ours.brotli_bytes, track_sync_us: ours.track_sync_us,
      track_settled_us: ours.track_settled_us, ready_median_ms: ready },
    smallest_peer_gzip_bytes: Math.min(...peers.map((p) => p.gzip_bytes)),
    cheapest_peer_track_us: Math.min(...peers.map((p) => p.track_sync_us)),
    results,
  };
  console.log('subject                                   gzip B   brotli B   track µs   settled µs   size ×   track ×');
  for (const r of results) {
    if (r.error) { console.log(`${r.name.padEnd(40)}  not measured: ${r.error}`); continue; }
    console.log(`${r.name.padEnd(40)} ${String(r.gzip_bytes).padStart(7)} ${String(r.brotli_bytes).padStart(10)} ${String(r.track_sync_us).padStart(10)} ${String(r.track_settled_us).padStart(12)} ${String(r.gzip_vs_refloop).padStart(7)} ${String(r.track_vs_refloop).padStart(9)}`);
  }
  console.log(`refloop: script tag to ready ${ready} ms (median of ${READY_LOADS} loads)`);
  await writeFile(`${ROOT}bench/sdk.json`, `${JSON.stringify(out, null, 2)}\n`);
} finally {
  if (browser) await browser.close().catch(() => {});
  server.close();
}
