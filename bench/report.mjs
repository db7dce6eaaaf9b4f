// `make bench`: every figure of refloop measured in one run, written to
// bench/REPORT.md and bench/report.json. The SDK beside the analytics SDKs
// clients would pick instead, their own files measured in the same run and
// page harness; the edge under `wrangler dev` beside a no-op route of the
// same worker; the core beside a plain SQL rank.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

const ROOT = new URL('..', import.meta.url).pathname;
const run = (cmd, args) => execFileSync(cmd, args, { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'], env: process.env });
const json = (path) => JSON.parse(readFileSync(`${ROOT}${path}`, 'utf8'));
// Criterion keeps each result in a folder named after the benchmark, with
// characters a path cannot hold replaced by `_`.
const estimate = (group, name) => json(`target/criterion/${group}/${name.replace(/[*?"<>|:]/g, '_')}/new/estimates.json`).mean.point_estimate;

// `--from-results` writes the report from the last run's results.
if (!process.argv.includes('--from-results')) {
  console.log('core: criterion benchmarks (a few minutes) …');
  run('cargo', ['bench', '-p', 'refloop-core', '--bench', 'engine', '--', '--noplot']);
  run('cargo', ['bench', '-p', 'refloop-tests', '--bench', 'rank', '--', '--noplot']);
  console.log('edge: load under wrangler dev …');
  run('node', ['bench/edge-load.mjs']);
  console.log('sdk: headless Chromium …');
  run('node', ['bench/sdk-track.mjs']);
}

const size = json('build/sdk/size.json');
const sdk = json('bench/sdk.json');
const edge = json('bench/edge.json');
const ns = {
  event: estimate('engine (100k participants)', 'apply one event'),
  update: estimate('leaderboard (1M participants)', 'update a score'),
  rank: estimate('leaderboard (1M participants)', 'rank'),
  around: estimate('leaderboard (1M participants)', 'around me (±5)'),
  replay: estimate('replay', 'corrections for 1M ledger entries'),
  boardRank: estimate('rank at 1M participants', 'order-statistics board'),
  sqlRank: estimate('rank at 1M participants', 'SQLite COUNT(*) on an index'),
};
const report = {
  // Rewritten from the last run's results: that run's time, not now.
  measured_at: process.argv.includes('--from-results') ? json('bench/report.json').measured_at : new Date().toISOString(),
  sdk: { tracking_gzip_bytes: size.tracking_gzip_bytes, widgets_gzip_bytes: size.widgets_gzip_bytes, ...sdk },
  edge,
  core: {
    engine_events_per_s: Math.round(1e9 / ns.event),
    leaderboard_update_ns_at_1m: Math.round(ns.update),
    leaderboard_rank_ns_at_1m: Math.round(ns.rank),
    leaderboard_around_ns_at_1m: Math.round(ns.around),
    rank_board_ns_at_1m: Math.round(ns.boardRank),
    rank_sqlite_count_ns_at_1m: Math.round(ns.sqlRank),
    replay_1m_entries_ms: Math.round(ns.replay / 1e6),
  },
};
writeFileSync(`${ROOT}bench/report.json`, `${JSON.stringify(report, null, 2)}\n`);

const kb = (b) => `${(b / 1000).toFixed(1)} KB`;
const us = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)} ms` : n >= 1000 ? `${(n / 1000).toFixed(2)} µs` : `${Math.round(n)} ns`);
const md = `# refloop: measured

All figures from one run of \`make bench\` (${report.measured_at}) on this machine (2 cores); raw numbers in
\`bench/report.json\`. \`make soak\` (faults) and \`make fuzz\` (parsers) are separate: see the README.

## SDK: what a page downloads, and what tracking costs

What each SDK's script tag downloads while the page starts (every script fetched, lazily loaded
chunks included), compressed, and the main-thread cost of one \`track()\` call: synchronously, and until
the microtasks and timers it queued have run (a send included). Each is its own published npm file,
pinned in \`bench/peers/package.json\`, in a fresh headless Chromium with an ordinary user agent, sending
to a local collector; ${sdk.rounds} rounds of about ${sdk.round_ms} ms of calls each, medians. Ratios are to refloop.

| SDK | gzip | brotli | \`track()\` | until settled | size × | track × | sent after |
|---|---|---|---|---|---|---|---|
${sdk.results.map((r) => (r.error ? `| ${r.name} | not measured: ${r.error} | | | | | | |`
    : `| ${r.name === 'refloop' ? '**refloop** (sdk.js, the wasm inside)' : r.name} | ${kb(r.gzip_bytes)} | ${kb(r.brotli_bytes)} | ${r.track_sync_us} µs | ${r.track_settled_us} µs | ×${r.gzip_vs_refloop} | ×${r.track_vs_refloop} | ${r.requests_after} |`)).join('\n')}
| refloop, widget chunk (only pages that mount a widget) | ${kb(size.widgets_gzip_bytes)} | | | | | | |

"Sent after": the requests each SDK made to the collector in the 3 s after the measured calls and a
\`pagehide\` (0 would mean it kept or dropped what it tracked: a cost that is not comparable).

From the script tag to \`window.refloop\` ready: **${sdk.refloop.ready_median_ms} ms** (median of 15 loads, the wasm
compiled each time). The smallest peer measured is ${kb(sdk.smallest_peer_gzip_bytes)} gzip; the cheapest peer
\`track()\` ${sdk.cheapest_peer_track_us} µs.

## Edge: under \`wrangler dev\`, ${edge.participants.toLocaleString('en')} participants in one campaign's Durable Object

| figure | measured |
|---|---|
| visitors' page views, 10-event batches, ${edge.connections} connections | **${edge.visitors_events_per_s.toLocaleString('en')} events/s** (${edge.visitors_to_noop_ratio} of the no-op route's ${edge.noop_requests_per_s} requests/s) |
| signed-up participants' tracked events, 10-event batches | **${edge.participants_events_per_s.toLocaleString('en')} events/s**: **${edge.participants_to_visitors_ratio}** of the visitors' (aim ≥ 0.8) |
| signups through a referral code, 10-event batches | ${edge.referred_signups_per_s.toLocaleString('en')} signups/s |
| a participant's batch, p50 / p99 | ${edge.participant_batch_ms.p50} / ${edge.participant_batch_ms.p99} ms |
| leaderboard (top 10 + around a code), p50 / p99 | ${edge.leaderboard_ms.p50} / ${edge.leaderboard_ms.p99} ms at ${edge.connections} connections |
| a code's public stats, p50 / p99 | ${edge.stats_ms.p50} / ${edge.stats_ms.p99} ms at ${edge.connections} connections |
| hot referrer: ${edge.hot_referrer.requests / 2} concurrent referred signups, then as many trusted purchases | p99 ${edge.hot_referrer.signups_ms.p99} / ${edge.hot_referrer.purchases_ms.p99} ms, ${edge.hot_referrer.not_202} not 202, ${edge.hot_referrer.confirmed} confirmed (aim: p99 < 1 s, none failed) |
| D1 round trips / campaign calls per request | visitors ${edge.cost_per_request.visitors_10.d1} / ${edge.cost_per_request.visitors_10.campaigns}; participants, 10 events ${edge.cost_per_request.participants_10.d1} / ${edge.cost_per_request.participants_10.campaigns}, 100 events ${edge.cost_per_request.participants_100.d1} / ${edge.cost_per_request.participants_100.campaigns}; referred signups ${edge.cost_per_request.referred_signups_10.d1} / ${edge.cost_per_request.referred_signups_10.campaigns} |

## Core: the engine

| figure | measured |
|---|---|
| events applied (100k participants) | **${report.core.engine_events_per_s.toLocaleString('en')} events/s** |
| leaderboard score update at 1M | ${us(ns.update)} |
| leaderboard rank at 1M | ${us(ns.rank)}; around me (±5) ${us(ns.around)} |
| rank at 1M: order-statistics board vs SQLite \`COUNT(*)\` on an index | **${us(ns.boardRank)} vs ${us(ns.sqlRank)}** (×${Math.round(ns.sqlRank / ns.boardRank).toLocaleString('en')}) |
| replay corrections for 1M ledger entries | ${report.core.replay_1m_entries_ms} ms |
`;
writeFileSync(`${ROOT}bench/REPORT.md`, md);
console.log(md);
