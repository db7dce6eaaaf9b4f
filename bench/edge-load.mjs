// Load figures of the edge under `wrangler dev` (issue 4), measured in one run:
//   - ingest: POST /v1/batch with 10 events per request, as a ratio to a no-op
//     route of the same worker (the `bench` build has it; production does not);
//   - p50 / p99 of the leaderboard ("around" a random code) and of a code's
//     public stats, with 100,000 participants seeded in local D1.
// Run with `make bench-edge`; prints the figures and writes bench/edge.json.
import autocannon from 'autocannon';
import { spawn, execFileSync } from 'node:child_process';
import { writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { randomUUID } from 'node:crypto';

const ROOT = new URL('..', import.meta.url).pathname;
const PORT = 8790;
const EDGE = `http://127.0.0.1:${PORT}`;
const STATE = `${ROOT}.wrangler/bench-state`;
const PARTICIPANTS = Number(process.env.BENCH_PARTICIPANTS || 100_000);
const SECONDS = Number(process.env.BENCH_SECONDS || 10);
const CONNECTIONS = 10;
const PK = 'pk_bench_refloop_public';

function sh(cmd, args, opts = {}) {
  return String(execFileSync(cmd, args, { cwd: `${ROOT}edge`, stdio: ['ignore', 'pipe', 'inherit'], ...opts }) ?? '');
}

// A tenant with one campaign and PARTICIPANTS participants whose scores follow
// a long tail (most have a few points, a few have many), written as SQL.
function seedSql() {
  const lines = [
    "INSERT INTO tenants (id, name, created_at) VALUES (100, 'Bench', 0);",
    `INSERT INTO sites (id, tenant_id, name, publishable_key, secret_key_hash, created_at) VALUES (100, 100, 'bench', '${PK}', 'x', 0);`,
    "INSERT INTO campaigns (id, tenant_id, slug, name, created_at, current_version) VALUES (100, 100, 'bench', 'Bench', 0, 1);",
    `INSERT INTO campaign_versions (campaign_id, version, config, created_at) VALUES (100, 1, '${JSON.stringify({
      name: 'Bench', point_rules: [{ id: 'joined', event: 'signup', to: 'self', points: 10 }],
    })}', 0);`,
  ];
  const codes = [];
  const buckets = new Map();
  const ties = new Map();
  const alphabet = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';
  let seed = 42;
  const rand = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
  for (let chunk = 0; chunk < PARTICIPANTS; chunk += 500) {
    const people = [];
    const scores = [];
    for (let i = chunk; i < Math.min(chunk + 500, PARTICIPANTS); i++) {
      // i times a number prime to 31^8, in base 31: distinct codes that look random.
      let n = (BigInt(i) * 1_000_003n) % (31n ** 8n);
      let code = '';
      for (let k = 0; k < 8; k++) { code += alphabet[Number(n % 31n)]; n /= 31n; }
      const score = Math.floor(10 / Math.pow(rand() + 0.001, 1.2));
      codes.push(code);
      const id = 1_000_000 + i;
      // Joined over 30 days, one every 26 s.
      const joined = i * 26_000;
      people.push(`(${id}, 100, 'anon-${i}', '${code}', ${joined}, ${score})`);
      scores.push(`(100, 'all', ${id}, ${score}, ${joined})`);
      buckets.set(score, (buckets.get(score) || 0) + 1);
      const tie = `${score}:${Math.floor(joined / 3_600_000)}`;
      ties.set(tie, (ties.get(tie) || 0) + 1);
    }
    lines.push(`INSERT INTO participants (id, campaign_id, anonymous_id, code, joined_at, score) VALUES ${people.join(',')};`);
    lines.push(`INSERT INTO scores (campaign_id, period, participant_id, score, joined_at) VALUES ${scores.join(',')};`);
  }
  const b = [...buckets].map(([score, n]) => `(100, 'all', ${score}, ${n})`);
  lines.push(`INSERT INTO score_buckets (campaign_id, period, score, n) VALUES ${b.join(',')};`);
  const t = [...ties].map(([key, n]) => { const [score, hour] = key.split(':'); return `(100, 'all', ${score}, ${hour}, ${n})`; });
  for (let i = 0; i < t.length; i += 500) {
    lines.push(`INSERT INTO tie_buckets (campaign_id, period, score, hour, n) VALUES ${t.slice(i, i + 500).join(',')};`);
  }
  return { sql: lines.join('\n'), codes: [...new Set(codes)] };
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

const events = () => JSON.stringify({
  key: PK,
  events: Array.from({ length: 10 }, () => ({ id: randomUUID(), type: 'page', anonymous_id: `visitor-${randomUUID().slice(0, 8)}` })),
});

console.log('building the bench worker (no-op route) …');
sh('worker-build', ['--release', '--out-dir', 'build-bench', '--features', 'bench'], { stdio: ['ignore', 'ignore', 'inherit'] });
rmSync(STATE, { recursive: true, force: true });
mkdirSync(STATE, { recursive: true });
sh('wrangler', ['d1', 'migrations', 'apply', 'refloop', '--local', '--persist-to', STATE]);
console.log(`seeding ${PARTICIPANTS} participants …`);
const { sql, codes } = seedSql();
mkdirSync(`${ROOT}build`, { recursive: true });
writeFileSync(`${ROOT}build/bench-seed.sql`, sql);
sh('wrangler', ['d1', 'execute', 'refloop', '--local', '--persist-to', STATE, '--file', `${ROOT}build/bench-seed.sql`]);

const edge = spawn('wrangler', ['dev', 'build-bench/index.js', '--ip', '127.0.0.1', '--port', String(PORT), '--inspector-port', String(PORT + 10000),
  '--local', '--persist-to', STATE, '--show-interactive-dev-session=false', '--log-level', 'error',
  '--var', 'RATE_PER_KEY_PER_MINUTE:1000000000', '--var', 'RATE_PER_IP_PER_MINUTE:1000000000', '--var', 'TOP_CACHE_SECONDS:0'],
{ cwd: `${ROOT}edge`, stdio: 'ignore', detached: true, env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: 'false', WRANGLER_SEND_METRICS: 'false' } });
try {
  await waitUp();
  const pick = () => codes[Math.floor(Math.random() * codes.length)];
  // Warm up both paths, then measure each for the same time.
  await run({ url: `${EDGE}/__bench/noop`, method: 'POST', body: events(), duration: 2 });
  const noop = await run({ url: `${EDGE}/__bench/noop`, method: 'POST', requests: [{ setupRequest: (r) => ({ ...r, body: events() }) }] });
  const ingest = await run({ url: `${EDGE}/v1/batch`, method: 'POST', requests: [{ setupRequest: (r) => ({ ...r, body: events() }) }] });
  const board = await run({ url: EDGE, requests: [{ setupRequest: (r) => ({ ...r, path: `/v1/campaigns/bench/leaderboard?key=${PK}&limit=10&around=${pick()}` }) }] });
  const stats = await run({ url: EDGE, requests: [{ setupRequest: (r) => ({ ...r, path: `/v1/campaigns/bench/participants/${pick()}?key=${PK}` }) }] });
  // The same reads one at a time: the latency a single visitor sees.
  const board1 = await run({ connections: 1, url: EDGE, requests: [{ setupRequest: (r) => ({ ...r, path: `/v1/campaigns/bench/leaderboard?key=${PK}&limit=10&around=${pick()}` }) }] });
  const stats1 = await run({ connections: 1, url: EDGE, requests: [{ setupRequest: (r) => ({ ...r, path: `/v1/campaigns/bench/participants/${pick()}?key=${PK}` }) }] });
  for (const [name, r] of [['noop', noop], ['ingest', ingest], ['leaderboard', board], ['stats', stats], ['leaderboard-1', board1], ['stats-1', stats1]]) {
    const bad = r.non2xx + r.errors;
    if (bad > 0) throw new Error(`${name}: ${bad} failed requests of ${r.requests.total}`);
  }
  const figures = {
    connections: CONNECTIONS,
    seconds: SECONDS,
    participants: PARTICIPANTS,
    noop_requests_per_s: Math.round(noop.requests.average),
    ingest_requests_per_s: Math.round(ingest.requests.average),
    ingest_events_per_s: Math.round(ingest.requests.average * 10),
    ingest_to_noop_ratio: +(ingest.requests.average / noop.requests.average).toFixed(3),
    leaderboard_ms: { p50: board.latency.p50, p99: board.latency.p99 },
    stats_ms: { p50: stats.latency.p50, p99: stats.latency.p99 },
    one_connection: {
      leaderboard_ms: { p50: board1.latency.p50, p99: board1.latency.p99 },
      stats_ms: { p50: stats1.latency.p50, p99: stats1.latency.p99 },
    },
  };
  console.log(JSON.stringify(figures, null, 2));
  console.log(`ingest ${figures.ingest_events_per_s} events/s (10-event batches), ${figures.ingest_to_noop_ratio} of the no-op route; `
    + `leaderboard p50 ${board.latency.p50} ms p99 ${board.latency.p99} ms; stats p50 ${stats.latency.p50} ms p99 ${stats.latency.p99} ms `
    + `at ${PARTICIPANTS} participants, ${CONNECTIONS} connections; one at a time: leaderboard p50 ${board1.latency.p50} ms `
    + `p99 ${board1.latency.p99} ms, stats p50 ${stats1.latency.p50} ms p99 ${stats1.latency.p99} ms`);
  writeFileSync(`${ROOT}bench/edge.json`, `${JSON.stringify(figures, null, 2)}\n`);
} finally {
  process.kill(-edge.pid);
}
