// Soak and faults (`make soak`, a few minutes): simulated browsers (Playwright
// contexts in Debian's Chromium) produce 10,000 events with random offline
// spells, reloads and closed tabs, through a proxy in front of `wrangler dev`
// that answers 500 or 429 or drops the connection at random. At the end D1
// must hold exactly the unique events, every score must equal its ledger sum,
// and no milestone may have been granted twice. Prints the figures and writes
// bench/soak.json.
import { unlimitedConfig } from './unlimited.mjs';
import { chromium } from '@playwright/test';
import { spawn, execFileSync } from 'node:child_process';
import { createServer, request as httpRequest } from 'node:http';
import { writeFileSync, rmSync } from 'node:fs';
import { randomUUID } from 'node:crypto';

const ROOT = new URL('..', import.meta.url).pathname;
const EDGE_PORT = 8792, PROXY_PORT = 8794, WWW_PORT = 8093;
const EDGE = `http://127.0.0.1:${EDGE_PORT}`, PROXY = `http://127.0.0.1:${PROXY_PORT}`, WWW = `http://127.0.0.1:${WWW_PORT}`;
const STATE = `${ROOT}.wrangler/soak-state`;
const BROWSERS = Number(process.env.SOAK_BROWSERS || 10);
const EVENTS = Number(process.env.SOAK_EVENTS || 10_000);
const FAULT = { error500: 0.15, tooMany: 0.1, drop: 0.1 };
// Browsers pace their events like people do: all of them together stay under
// what the engine path of a local edge takes (about 35 events/s under
// wrangler dev), so a tab's queue never reaches its 1,000-event cap, past
// which the oldest events are dropped by design.
const PACE_MS = Number(process.env.SOAK_PACE_MS || 30) * BROWSERS;

let seed = Number(process.env.SOAK_SEED || 42);
const rand = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const env = { ...process.env, PATH: `${ROOT}node_modules/.bin:${process.env.PATH}`, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false' };
const d1 = (sql) => JSON.parse(execFileSync('wrangler', ['d1', 'execute', 'refloop', '--local', '--persist-to', STATE, '--json', '--command', sql],
  { cwd: `${ROOT}edge`, env }).toString())[0].results;

// ---- the edge, the faulty proxy, the demo site ----------------------------------

// Another edge on our ports would take the events into another database.
for (const url of [EDGE, PROXY, WWW]) {
  const busy = await fetch(url).then(() => true, () => false);
  if (busy) { console.error(`soak: ${url} is already in use; stop what runs there first`); process.exit(2); }
}
rmSync(STATE, { recursive: true, force: true });
const children = [];
children.push(spawn(`${ROOT}scripts/edge.sh`, [String(EDGE_PORT), STATE, '--fresh'], {
  env: { ...env, REFLOOP_EDGE_CONFIG: unlimitedConfig(ROOT) },
  stdio: 'ignore', detached: true,
}));
for (let i = 0; i < 240; i++) {
  try { if ((await fetch(`${EDGE}/healthz`)).ok) break; } catch { /* starting */ }
  await sleep(500);
}

const faults = { error500: 0, tooMany: 0, drop: 0, passed: 0 };
let faulty = true;
const proxy = createServer((req, res) => {
  const isBatch = req.method === 'POST' && req.url.startsWith('/v1/batch');
  if (isBatch && faulty) {
    const r = rand();
    if (r < FAULT.error500) { faults.error500++; res.writeHead(500, { 'Access-Control-Allow-Origin': req.headers.origin || '*' }).end('{"error":{"code":"internal","message":"injected"}}'); return; }
    if (r < FAULT.error500 + FAULT.tooMany) { faults.tooMany++; res.writeHead(429, { 'Retry-After': '1', 'Access-Control-Allow-Origin': req.headers.origin || '*' }).end('{"error":{"code":"rate_limited","message":"injected"}}'); return; }
    if (r < FAULT.error500 + FAULT.tooMany + FAULT.drop) { faults.drop++; req.socket.destroy(); return; }
  }
  if (isBatch) faults.passed++;
  const up = httpRequest({ host: '127.0.0.1', port: EDGE_PORT, method: req.method, path: req.url, headers: req.headers }, (r) => {
    res.writeHead(r.statusCode, r.headers);
    r.pipe(res);
  });
  up.on('error', () => res.destroy());
  req.pipe(up);
});
await new Promise((r) => proxy.listen(PROXY_PORT, '127.0.0.1', r));

// A tenant of its own whose site is the soak's demo site, and one campaign:
// signups by link confirm at once; a milestone every 2 confirmed referrals.
const root = { Authorization: 'Bearer rk_demo_refloop_root', 'Content-Type': 'application/json' };
const tenant = await (await fetch(`${EDGE}/v1/admin/tenants`, { method: 'POST', headers: root, body: JSON.stringify({ name: 'Soak', site: { name: 'soak', origins: [WWW] } }) })).json();
const { publishable_key: PK, secret_key: SK } = tenant.site;
const admin = { Authorization: `Bearer ${SK}`, 'Content-Type': 'application/json' };
const config = {
  name: 'Soak', landing_url: `${WWW}/`, quest: { steps: [] },
  point_rules: [{ id: 'joined', event: 'signup', to: 'self', points: 1 }, { id: 'ref', event: 'referral_confirmed', to: 'referrer', points: 10 }],
  milestones: [{ id: 'pair', every: 2, reward: 'bonus' }],
  rewards: [{ id: 'bonus', name: 'bonus', kind: { type: 'points', points: 5 } }],
  fraud: { flag_shared_ip: false, velocity_per_hour: 100000 },
};
await fetch(`${EDGE}/v1/admin/campaigns`, { method: 'POST', headers: admin, body: JSON.stringify({ slug: 'soak', config }) });
children.push(spawn('node', [`${ROOT}www/serve.mjs`], { env: { ...env, PORT: String(WWW_PORT), REFLOOP_EDGE: PROXY, REFLOOP_KEY: PK }, stdio: 'ignore', detached: true }));
for (let i = 0; i < 60; i++) {
  try { if ((await fetch(`${WWW}/`)).ok) break; } catch { /* starting */ }
  await sleep(250);
}

// ---- the browsers -----------------------------------------------------------------

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const tracked = new Set();
const origin = new Map(); // id → what happened after its burst (diagnostics)
const actions = { offline: 0, reload: 0, closed: 0, flush: 0 };
const started = Date.now();

async function open(context) {
  const page = await context.newPage();
  await page.goto(`${WWW}/`);
  await page.waitForFunction(() => window.refloop && window.refloop.__refloop === true);
  return page;
}

async function visitor(n, codes) {
  const context = await browser.newContext();
  let page = await open(context);
  const ref = codes[Math.floor(rand() * codes.length)];
  if (ref) await page.goto(`${PROXY}/r/${ref}`).catch(() => page.goto(`${WWW}/?ref=${ref}`));
  else await page.goto(`${WWW}/`);
  await page.waitForFunction(() => window.refloop && window.refloop.__refloop === true);
  tracked.add(await page.evaluate(() => window.refloop.track('signup')));
  const quota = Math.floor(EVENTS / BROWSERS) - 1;
  if (n === 1) console.log(`soak: ${BROWSERS} browsers, ${quota + 1} events each, paced …`);
  let made = 0;
  while (made < quota) {
    const burst = Math.min(quota - made, 5 + Math.floor(rand() * 60));
    const ids = await page.evaluate((n) => Array.from({ length: n }, (_, i) => window.refloop.track('soak', { i })), burst);
    ids.forEach((id) => tracked.add(id));
    made += burst;
    await sleep(burst * PACE_MS);
    const tag = { v: n, at: made };
    ids.forEach((id) => origin.set(id, tag));
    if (n === 1 && made % 200 < burst) console.log(`  browser 1: ${made} events`);
    const r = rand();
    tag.next = r < 0.15 ? 'offline' : r < 0.3 ? 'reload' : r < 0.4 ? 'close' : r < 0.6 ? 'flush' : 'none';
    if (r < 0.15) {
      // Offline for a while: nothing reaches the proxy.
      actions.offline++;
      await page.route(`${PROXY}/v1/batch`, (route) => route.abort('internetdisconnected'));
      const more = await page.evaluate((n) => Array.from({ length: n }, () => window.refloop.track('soak-offline')), 10);
      more.forEach((id) => tracked.add(id));
      made += 10;
      await sleep(200 + rand() * 800);
      await page.unroute(`${PROXY}/v1/batch`);
      await page.evaluate(() => window.dispatchEvent(new Event('online')));
    } else if (r < 0.3) {
      actions.reload++;
      await page.reload();
      await page.waitForFunction(() => window.refloop && window.refloop.__refloop === true);
    } else if (r < 0.4) {
      // The tab is closed with events in flight; a new tab of the same browser picks up its queue.
      actions.closed++;
      await page.close({ runBeforeUnload: true });
      page = await open(context);
    } else if (r < 0.6) {
      actions.flush++;
      await page.evaluate(() => window.refloop.flush().catch(() => 0));
    }
  }
  return { context, page };
}

// Three founders join on their own; everyone else comes by one of their links.
const codes = [];
const founders = [];
for (let f = 0; f < 3; f++) {
  const context = await browser.newContext();
  const page = await open(context);
  tracked.add(await page.evaluate(() => window.refloop.track('signup')));
  await page.evaluate(() => window.refloop.flush().catch(() => 0));
  for (let i = 0; i < 20 && codes.length === f; i++) {
    const me = await page.evaluate(() => window.refloop.me('soak').catch(() => null));
    if (me) codes.push(me.code); else await sleep(500);
  }
  founders.push({ context, page });
}
const all = [...founders, ...await Promise.all(Array.from({ length: BROWSERS }, (_, i) => visitor(i + 1, codes)))];

// The faults stop; every browser is online; the queues drain.
faulty = false;
await Promise.all(all.map(({ page }) => page.evaluate(() => { window.dispatchEvent(new Event('online')); return window.refloop.flush().catch(() => 0); }).catch(() => 0)));
const ids = [...tracked];
console.log(`soak: ${ids.length} events tracked; waiting for the queues to drain …`);
const siteId = d1(`SELECT id FROM sites WHERE publishable_key = '${PK}'`)[0].id;
const countStored = () => d1(`SELECT count(*) AS n FROM events WHERE site_id = ${siteId} AND name IN ('soak', 'soak-offline', 'signup')`)[0].n;
let stored = 0;
for (let i = 0; i < 180; i++) {
  stored = countStored();
  if (stored >= ids.length) break;
  if (i % 10 === 0) console.log(`  ${stored} of ${ids.length} stored`);
  await Promise.all(all.map(({ page }) => page.evaluate(() => window.refloop.flush().catch(() => 0)).catch(() => 0)));
  await sleep(1000);
}
// Every tracked id, and nothing else.
const list = (xs) => xs.map((x) => `'${x}'`).join(',');
let known = 0;
for (let j = 0; j < ids.length; j += 2000) known += d1(`SELECT count(DISTINCT event_id) AS n FROM events WHERE event_id IN (${list(ids.slice(j, j + 2000))})`)[0].n;
const seconds = (Date.now() - started) / 1000;

// ---- the verdict --------------------------------------------------------------------

if (known < ids.length) {
  const have = new Set();
  for (let j = 0; j < ids.length; j += 2000) d1(`SELECT event_id FROM events WHERE event_id IN (${list(ids.slice(j, j + 2000))})`).forEach((r) => have.add(r.event_id));
  const missing = ids.filter((id) => !have.has(id));
  const by = {};
  for (const id of missing) { const o = origin.get(id) || { next: 'signup/offline' }; const k = `visitor ${o.v} then ${o.next}`; by[k] = (by[k] || 0) + 1; }
  console.log('missing, by what followed:', JSON.stringify(by));
}
const rows = d1(`SELECT count(*) AS n, count(DISTINCT event_id) AS u FROM events WHERE site_id = ${siteId} AND name IN ('soak', 'soak-offline', 'signup')`)[0];
// Every campaign's invariants, restated by its object from its own tables
// (score = ledger sum, confirmed counts, board scores; a milestone granted
// twice is refused by the object's unique key on the grant's idempotency key).
const check = await (await fetch(`${EDGE}/v1/admin/check`, { headers: { Authorization: 'Bearer rk_demo_refloop_root' } })).json();
const violations = check.violations;
const funnel = await (await fetch(`${EDGE}/v1/admin/campaigns/launch/stats/funnel`, { headers: { Authorization: 'Bearer sk_demo_refloop_secret' } })).json();
const referrals = funnel.funnel.confirmed;
const grants = check.counts.grants;
const figures = {
  browsers: BROWSERS, events_tracked: ids.length, events_stored: rows.u, rows_stored: rows.n,
  lost: ids.length - known, duplicated: rows.n - rows.u, unexpected: rows.u - known,
  faults, actions, confirmed_referrals: referrals, milestone_grants: grants,
  invariant_violations: violations.length, seconds: Math.round(seconds),
};
console.log(JSON.stringify(figures, null, 2));
console.log(`soak: ${ids.length} events from ${BROWSERS} browsers through ${faults.error500} injected 500s, ${faults.tooMany} 429s and `
  + `${faults.drop} dropped connections, ${actions.offline} offline spells, ${actions.reload} reloads, ${actions.closed} closed tabs: `
  + `${figures.lost} lost, ${figures.duplicated} duplicated, ${violations.length} invariant violations, in ${figures.seconds} s`);
writeFileSync(`${ROOT}bench/soak.json`, `${JSON.stringify(figures, null, 2)}\n`);

await browser.close();
proxy.close();
for (const c of children) { try { process.kill(-c.pid); } catch { /* gone */ } }
process.exit(figures.lost === 0 && figures.duplicated === 0 && figures.unexpected === 0 && violations.length === 0 ? 0 : 1);
