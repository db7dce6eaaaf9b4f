// Load figures of the edge under `wrangler dev`, measured in one run against
// one worker (the `bench` build: it has a no-op route and answers each
// request's cost in a `Refloop-Cost` header; production has neither):
//   - 10-event batches: visitors' page views, signed-up participants' tracked
//     events, and signups through a referral code, beside the no-op route;
//   - p50 / p99 of a participant's batch, of the leaderboard around a code and
//     of a code's public stats;
//   - one hot referrer: 300 concurrent referred signups, then 300 concurrent
//     trusted purchases (p99, and how many were not 202);
//   - D1 round trips and campaign calls per request, for 10 and 100 events.
// Participants are seeded through the API into the campaign's Durable Object.
// Run with `make bench-edge`; prints the figures and writes bench/edge.json.
import { unlimitedConfig } from './unlimited.mjs';
import autocannon from 'autocannon';
import { spawn, execFileSync } from 'node:child_process';
import { writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { randomUUID } from 'node:crypto';

const ROOT = new URL('..', import.meta.url).pathname;
const PORT = 8790;
const EDGE = `http://127.0.0.1:${PORT}`;
const STATE = `${ROOT}.wrangler/bench-state`;
const PARTICIPANTS = Number(process.env.BENCH_PARTICIPANTS || 20_000);
const SECONDS = Number(process.env.BENCH_SECONDS || 10);
const CONNECTIONS = 10;
const ROOT_KEY = 'rk_demo_refloop_root';
const HOT = 300;

function sh(cmd, args, opts = {}) {
  return String(execFileSync(cmd, args, { cwd: `${ROOT}edge`, stdio: ['ignore', 'pipe', 'inherit'], ...opts }) ?? '');
}

async function waitUp() {
  for (let i = 0; i < 120; i++) {
    try { if ((await fetch(`${EDGE}/healthz`)).ok) return; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error('the edge did not start');
}

function run(opts) {
  return new Promise((resolve, reject) => {
    autocannon({ connections: CONNECTIONS, duration: SECONDS, ...opts }, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

async function api(method, path, key, body) {
  const res = await fetch(`${EDGE}${path}`, {
    method, headers: { Authorization: `Bearer ${key}` }, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text.startsWith('{') ? JSON.parse(text) : text;
}

const CONFIG = {
  name: 'Bench',
  quest: { steps: [{ event: 'signup' }, { event: 'purchase', trusted: true }], window_days: 30 },
  point_rules: [
    { id: 'joined', event: 'signup', to: 'self', points: 10 },
    { id: 'viewed', event: 'viewed', to: 'self', points: 1, max_per_participant: 100000 },
    { id: 'per-referral', event: 'referral_confirmed', to: 'referrer', points: 10 },
  ],
  milestones: [{ id: 'first', confirmed_referrals: 1, reward: 'bonus' }],
  rewards: [{ id: 'bonus', name: 'Bonus', kind: { type: 'points', points: 100 } }],
  fraud: { flag_shared_ip: false, velocity_per_hour: 1000000 },
  leaderboard: { score_by: 'points', periods: ['all', 'month', 'week'], top_n: 10 },
};

const ev = (event, anonymousId, extra = {}) => ({ id: randomUUID(), type: 'track', event, anonymous_id: anonymousId, ...extra });
const quantile = (xs, q) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; };

console.log('building the bench worker (no-op route, cost header) …');
sh('worker-build', ['--release', '--out-dir', 'build-bench', '--features', 'bench'], { stdio: ['ignore', 'ignore', 'inherit'] });
rmSync(STATE, { recursive: true, force: true });
mkdirSync(STATE, { recursive: true });
sh('wrangler', ['d1', 'migrations', 'apply', 'refloop', '--local', '--persist-to', STATE]);
const edge = spawn('wrangler', ['dev', 'build-bench/index.js', '--ip', '127.0.0.1', '--port', String(PORT), '--inspector-port', String(PORT + 10000),
  '--local', '--persist-to', STATE, '--show-interactive-dev-session=false', '--log-level', 'error',
  '--config', unlimitedConfig(ROOT), '--var', 'TOP_CACHE_SECONDS:0'],
{ cwd: `${ROOT}edge`, stdio: 'ignore', detached: true, env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: 'false', WRANGLER_SEND_METRICS: 'false' } });
try {
  await waitUp();
  const tenant = await api('POST', '/v1/admin/tenants', ROOT_KEY, { name: 'Bench', site: { name: 'bench', origins: [] } });
  const { publishable_key: PK, secret_key: SK } = tenant.site;
  await api('POST', '/v1/admin/campaigns', SK, { slug: 'bench', config: CONFIG });
  const batch = (events) => JSON.stringify({ key: PK, events });
  const post = (path, body, headers = {}) => fetch(`${EDGE}${path}`, { method: 'POST', body, headers });

  console.log(`seeding ${PARTICIPANTS} participants through the API …`);
  const seedStart = Date.now();
  for (let i = 0; i < PARTICIPANTS; i += 400) {
    await Promise.all([0, 100, 200, 300].filter((k) => i + k < PARTICIPANTS).map(async (k) => {
      const events = Array.from({ length: Math.min(100, PARTICIPANTS - i - k) }, (_, j) => ev('signup', `p-${i + k + j}`, { campaign: 'bench' }));
      const res = await post('/v1/batch', batch(events));
      if (res.status !== 202) throw new Error(`seed: ${res.status} ${await res.text()}`);
    }));
  }
  const seedSeconds = (Date.now() - seedStart) / 1000;
  const codes = (await api('GET', '/v1/admin/campaigns/bench/export.csv', SK)).split('\n').slice(1).map((l) => l.split(',')[1]).filter(Boolean);
  const pickCode = () => codes[Math.floor(Math.random() * codes.length)];
  const pickPerson = () => `p-${Math.floor(Math.random() * PARTICIPANTS)}`;

  const visitors = () => batch(Array.from({ length: 10 }, () => ({ id: randomUUID(), type: 'page', anonymous_id: `visitor-${randomUUID().slice(0, 8)}` })));
  const participants = (n = 10) => batch(Array.from({ length: n }, () => ev('viewed', pickPerson(), { campaign: 'bench' })));
  let fresh = 0;
  const referred = () => batch(Array.from({ length: 10 }, () => ev('signup', `new-${fresh++}`, { attribution: { ref: pickCode() } })));
  const bodies = (make) => [{ setupRequest: (r) => ({ ...r, body: make() }) }];

  // Warm up, then measure each path for the same time.
  await run({ url: `${EDGE}/__bench/noop`, method: 'POST', body: visitors(), duration: 2 });
  const noop = await run({ url: `${EDGE}/__bench/noop`, method: 'POST', requests: bodies(visitors) });
  const visits = await run({ url: `${EDGE}/v1/batch`, method: 'POST', requests: bodies(visitors) });
  const tracked = await run({ url: `${EDGE}/v1/batch`, method: 'POST', requests: bodies(participants) });
  const signups = await run({ url: `${EDGE}/v1/batch`, method: 'POST', requests: bodies(referred) });
  const board = await run({ url: EDGE, requests: [{ setupRequest: (r) => ({ ...r, path: `/v1/campaigns/bench/leaderboard?key=${PK}&limit=10&around=${pickCode()}` }) }] });
  const stats = await run({ url: EDGE, requests: [{ setupRequest: (r) => ({ ...r, path: `/v1/campaigns/bench/participants/${pickCode()}?key=${PK}` }) }] });
  for (const [name, r] of [['noop', noop], ['visitors', visits], ['participants', tracked], ['referred signups', signups], ['leaderboard', board], ['stats', stats]]) {
    const bad = r.non2xx + r.errors;
    if (bad > 0) throw new Error(`${name}: ${bad} failed requests of ${r.requests.total}`);
  }

  // What one request costs, read from the bench build's header.
  const cost = async (body) => {
    const res = await post('/v1/batch', body);
    const header = res.headers.get('refloop-cost') || '';
    const [d1, campaigns] = [/d1=(\d+)/, /campaigns=(\d+)/].map((re) => Number(header.match(re)?.[1]));
    return { d1, campaigns };
  };
  const costs = {
    visitors_10: await cost(visitors()),
    participants_10: await cost(participants(10)),
    participants_100: await cost(participants(100)),
    referred_signups_10: await cost(referred()),
  };

  // One hot referrer: concurrent referred signups, then concurrent trusted purchases.
  await post('/v1/batch', batch([ev('signup', 'hub', { campaign: 'bench' })]));
  const hub = await (await fetch(`${EDGE}/v1/campaigns/bench/me?key=${PK}&anonymous_id=hub`)).json();
  const timed = async (send) => { const t = performance.now(); const res = await send(); return { ms: performance.now() - t, status: res.status }; };
  const hotSignups = await Promise.all(Array.from({ length: HOT }, (_, i) => timed(() =>
    post('/v1/batch', batch([ev('signup', `fan-${i}`, { attribution: { ref: hub.code } })])))));
  const hotPurchases = await Promise.all(Array.from({ length: HOT }, (_, i) => timed(() =>
    post('/v1/server/events', JSON.stringify({ events: [ev('purchase', `fan-${i}`)] }), { Authorization: `Bearer ${SK}` }))));
  const after = await (await fetch(`${EDGE}/v1/campaigns/bench/me?key=${PK}&anonymous_id=hub`)).json();
  const check = await api('GET', '/v1/admin/campaigns/bench/check', SK);
  if (check.violations.length) throw new Error(`invariants broken: ${check.violations.join(', ')}`);

  const rate = (r) => Math.round(r.requests.average);
  const figures = {
    connections: CONNECTIONS,
    seconds: SECONDS,
    participants: PARTICIPANTS,
    seed_signups_per_s: Math.round(PARTICIPANTS / seedSeconds),
    noop_requests_per_s: rate(noop),
    visitors_events_per_s: rate(visits) * 10,
    participants_events_per_s: rate(tracked) * 10,
    referred_signups_per_s: rate(signups) * 10,
    participants_to_visitors_ratio: +(tracked.requests.average / visits.requests.average).toFixed(3),
    visitors_to_noop_ratio: +(visits.requests.average / noop.requests.average).toFixed(3),
    participant_batch_ms: { p50: tracked.latency.p50, p99: tracked.latency.p99 },
    referred_batch_ms: { p50: signups.latency.p50, p99: signups.latency.p99 },
    leaderboard_ms: { p50: board.latency.p50, p99: board.latency.p99 },
    stats_ms: { p50: stats.latency.p50, p99: stats.latency.p99 },
    hot_referrer: {
      requests: HOT * 2,
      signups_ms: { p50: Math.round(quantile(hotSignups.map((r) => r.ms), 0.5)), p99: Math.round(quantile(hotSignups.map((r) => r.ms), 0.99)) },
      purchases_ms: { p50: Math.round(quantile(hotPurchases.map((r) => r.ms), 0.5)), p99: Math.round(quantile(hotPurchases.map((r) => r.ms), 0.99)) },
      not_202: [...hotSignups, ...hotPurchases].filter((r) => r.status !== 202).length,
      confirmed: after.referrals.confirmed,
    },
    cost_per_request: costs,
  };
  console.log(JSON.stringify(figures, null, 2));
  console.log(`visitors ${figures.visitors_events_per_s} events/s, participants ${figures.participants_events_per_s} events/s `
    + `(ratio ${figures.participants_to_visitors_ratio}), referred signups ${figures.referred_signups_per_s}/s; `
    + `a participant's batch p50 ${tracked.latency.p50} ms p99 ${tracked.latency.p99} ms; hot referrer p99 `
    + `${figures.hot_referrer.signups_ms.p99} / ${figures.hot_referrer.purchases_ms.p99} ms, ${figures.hot_referrer.not_202} not 202, `
    + `${figures.hot_referrer.confirmed} confirmed; cost ${JSON.stringify(costs)}`);
  writeFileSync(`${ROOT}bench/edge.json`, `${JSON.stringify(figures, null, 2)}\n`);
} finally {
  process.kill(-edge.pid);
}
