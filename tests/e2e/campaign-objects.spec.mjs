// Each campaign lives in its own Durable Object under `wrangler dev`: what that
// makes reachable (ending a program, a reproducible raffle, replay under another
// version), campaigns side by side, and one hot referrer under concurrency.
import { test, expect } from '@playwright/test';
import { ev, freshTenant, invariantViolations } from './helpers.mjs';

const SCORES = { a: 50, b: 40, c: 30, d: 20, e: 0 };

/** `n` calls of `fn`, at most `inFlight` at a time (wrangler's local proxy
 * resets sockets past a few hundred at once; the campaign still sees them
 * all concurrently). */
async function pool(n, inFlight, fn) {
  const out = new Array(n);
  let next = 0;
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next < n) { const i = next++; out[i] = await fn(i); }
  }));
  return out;
}

test('an operator ends a waitlist: its top 3 get their grants, once', async ({ request }) => {
  const t = await freshTenant(request);
  await t.json('POST', '/v1/admin/campaigns', { slug: 'wait', preset: 'waitlist' }, 201);
  expect((await t.send(Object.keys(SCORES).map((w) => ev('signup', w, { campaign: 'wait' })))).status).toBe(202);
  const { participants } = await t.json('GET', '/v1/admin/campaigns/wait/participants?limit=10');
  const byAnon = Object.fromEntries(participants.map((p) => [p.anonymous_id, p]));
  for (const [who, points] of Object.entries(SCORES)) {
    if (points) await t.json('POST', `/v1/admin/campaigns/wait/participants/${byAnon[who].id}/adjustments`, { points, note: 'test' }, 201);
  }
  const ended = await t.json('POST', '/v1/admin/campaigns/wait/end', {});
  expect(ended.grants).toHaveLength(3);
  const { grants } = await t.json('GET', '/v1/admin/campaigns/wait/grants?limit=50');
  const winners = grants.filter((g) => g.reward === 'early-access').map((g) => g.participant.code).sort();
  expect(winners).toEqual(['a', 'b', 'c'].map((w) => byAnon[w].code).sort());
  expect((await t.json('GET', '/v1/admin/campaigns/wait')).status).toBe('ended');
  const again = await t.api('POST', '/v1/admin/campaigns/wait/end', {});
  expect(again.status()).toBe(409);
  // An ended campaign takes no more events: the directory lists it no more.
  const late = await t.send([ev('signup', 'late', { campaign: 'wait' })]);
  expect(late.status).toBe(202);
  expect((await t.json('GET', '/v1/admin/campaigns/wait/participants?q=late')).participants).toHaveLength(0);
  expect(invariantViolations()).toEqual([]);
});

const RAFFLE = {
  name: 'raffle', ends_at: '2027-06-01T00:00:00Z',
  point_rules: [{ id: 'joined', event: 'signup', to: 'self', points: 10 }],
  rewards: [
    { id: 'ticket', name: 'Ticket', kind: { type: 'raffle_ticket', tickets: 1 } },
    { id: 'prize', name: 'Prize', kind: { type: 'badge', badge: 'winner' } },
  ],
  end_distributions: [
    { reward: 'ticket', rule: { type: 'min_score', score: 10 } },
    { reward: 'prize', rule: { type: 'raffle', winners: 2 } },
  ],
};

test('a raffle drawn again with the same seed names the same winners', async ({ request }) => {
  const t = await freshTenant(request);
  const winners = {};
  for (const slug of ['draw-1', 'draw-2']) {
    await t.json('POST', '/v1/admin/campaigns', { slug, config: RAFFLE }, 201);
    const events = Array.from({ length: 12 }, (_, i) => ev('signup', `${slug}-p${i}`, { campaign: slug }));
    expect((await t.send(events)).status).toBe(202);
    const ended = await t.json('POST', `/v1/admin/campaigns/${slug}/end`, { seed: 42 });
    expect(ended.seed).toBe('42');
    const { grants } = await t.json('GET', `/v1/admin/campaigns/${slug}/grants?limit=100`);
    expect(grants.filter((g) => g.reward === 'ticket')).toHaveLength(12);
    winners[slug] = grants.filter((g) => g.reward === 'prize').map((g) => g.participant.id).sort();
    expect(winners[slug]).toHaveLength(2);
  }
  expect(winners['draw-2']).toEqual(winners['draw-1']);
  const audit = await t.json('GET', '/v1/admin/audit?limit=20');
  expect(audit.entries.filter((e) => e.action === 'campaign.end').map((e) => JSON.parse(e.detail).seed)).toEqual(['42', '42']);
});

test('a replay under another version previews its corrections, appends them, and then corrects nothing', async ({ request }) => {
  const t = await freshTenant(request);
  const config = { name: 'replay', point_rules: [{ id: 'joined', event: 'signup', to: 'self', points: 10 }] };
  await t.json('POST', '/v1/admin/campaigns', { slug: 'rp', config }, 201);
  expect((await t.send(Array.from({ length: 5 }, (_, i) => ev('signup', `rp${i}`, { campaign: 'rp' })))).status).toBe(202);
  await t.json('PUT', '/v1/admin/campaigns/rp/point-rules', { point_rules: [{ id: 'joined', event: 'signup', to: 'self', points: 15 }] });
  const preview = await t.json('POST', '/v1/admin/campaigns/rp/replay', { version: 2 });
  expect(preview).toMatchObject({ applied: false, points: 25, inputs: 5 });
  expect(preview.corrections).toHaveLength(5);
  expect((await t.me('rp', 'rp0')).points).toBe(10);
  const applied = await t.json('POST', '/v1/admin/campaigns/rp/replay', { version: 2, apply: true });
  expect(applied).toMatchObject({ applied: true, points: 25 });
  expect((await t.me('rp', 'rp0')).points).toBe(15);
  const ledger = await t.json('GET', `/v1/admin/campaigns/rp/participants/${(await t.json('GET', '/v1/admin/campaigns/rp/participants?q=rp0')).participants[0].id}/ledger`);
  expect(ledger.entries.map((e) => e.reason.type).sort()).toEqual(['correction', 'rule']);
  expect((await t.json('POST', '/v1/admin/campaigns/rp/replay', { version: 2 })).corrections).toEqual([]);
  expect((await t.api('POST', '/v1/admin/campaigns/rp/replay', { version: 9 })).status()).toBe(409);
  expect(invariantViolations()).toEqual([]);
});

test('two campaigns of one tenant keep disjoint participants; a referral code names its own campaign', async ({ request }) => {
  const t = await freshTenant(request);
  const config = (name) => ({ name, quest: { steps: [] }, fraud: { flag_shared_ip: false }, point_rules: [{ id: 'r', event: 'referral_confirmed', to: 'referrer', points: 5 }] });
  await t.json('POST', '/v1/admin/campaigns', { slug: 'alpha', config: config('alpha') }, 201);
  await t.json('POST', '/v1/admin/campaigns', { slug: 'beta', config: config('beta') }, 201);
  await t.send([ev('signup', 'a1', { campaign: 'alpha' }), ev('signup', 'a2', { campaign: 'alpha' }), ev('signup', 'b1', { campaign: 'beta' })]);
  const anons = async (slug) => (await t.json('GET', `/v1/admin/campaigns/${slug}/participants?limit=50`)).participants.map((p) => p.anonymous_id).sort();
  expect(await anons('alpha')).toEqual(['a1', 'a2']);
  expect(await anons('beta')).toEqual(['b1']);
  // A signup through alpha's link (no campaign named) joins alpha only.
  const code = (await t.me('alpha', 'a1')).code;
  await t.send([ev('signup', 'friend', { attribution: { ref: code } })]);
  expect(await anons('alpha')).toEqual(['a1', 'a2', 'friend']);
  expect(await anons('beta')).toEqual(['b1']);
  expect((await t.me('alpha', 'a1')).referrals.confirmed).toBe(1);
  expect(await t.me('beta', 'friend')).toBeNull();
});

test('300 concurrent signups, then 300 trusted purchases for one referrer: each referral confirmed once, no 5xx, score = ledger sum', async ({ request }) => {
  test.setTimeout(120_000);
  const t = await freshTenant(request);
  const config = {
    name: 'hot',
    quest: { steps: [{ event: 'signup' }, { event: 'purchase', trusted: true }] },
    point_rules: [{ id: 'per', event: 'referral_confirmed', to: 'referrer', points: 10 }],
    milestones: [
      { id: 'one', confirmed_referrals: 1, reward: 'bonus' },
      { id: 'hundred', confirmed_referrals: 100, reward: 'bonus' },
    ],
    rewards: [{ id: 'bonus', name: 'Bonus', kind: { type: 'points', points: 100 } }],
    fraud: { flag_shared_ip: false, velocity_per_hour: 100000 },
  };
  await t.json('POST', '/v1/admin/campaigns', { slug: 'hot', config }, 201);
  await t.send([ev('signup', 'hub', { campaign: 'hot' })]);
  const code = (await t.me('hot', 'hub')).code;
  // Each request from its own client address, as 300 browsers would be.
  const ip = (i) => ({ headers: { 'cf-connecting-ip': `198.51.100.${i % 250}`, 'x-real-ip': `198.51.100.${i % 250}` } });
  const signups = await pool(300, 100, (i) => t.send([ev('signup', `fan${i}`, { attribution: { ref: code } })], ip(i)));
  expect(signups.filter((r) => r.status !== 202).map((r) => r.status)).toEqual([]);
  const purchases = await pool(300, 100, (i) => t.server([ev('purchase', `fan${i}`)], ip(i)));
  expect(purchases.filter((r) => r.status !== 202).map((r) => [r.status, r.body])).toEqual([]);
  const me = await t.me('hot', 'hub');
  expect(me.referrals).toMatchObject({ pending: 0, confirmed: 300 });
  expect(me.points).toBe(300 * 10 + 2 * 100);
  const check = await t.json('GET', '/v1/admin/campaigns/hot/check');
  expect(check.violations).toEqual([]);
  expect(check.counts).toMatchObject({ participants: 301, referrals: 300, grants: 2 });
  expect(invariantViolations()).toEqual([]);
});

test('a campaign ends by itself at ends_at: its object wakes, its top 2 get their grants, the seed is recorded', async ({ request }) => {
  test.setTimeout(60_000);
  const t = await freshTenant(request);
  const endsAt = new Date(Date.now() + 6_000).toISOString();
  const config = {
    name: 'timed', ends_at: endsAt,
    point_rules: [{ id: 'joined', event: 'signup', to: 'self', points: 10 }],
    rewards: [{ id: 'prize', name: 'Prize', kind: { type: 'badge', badge: 'first' } }],
    end_distributions: [{ reward: 'prize', rule: { type: 'top_n', n: 2 } }],
  };
  await t.json('POST', '/v1/admin/campaigns', { slug: 'timed', config }, 201);
  expect((await t.send(['x', 'y', 'z'].map((w) => ev('signup', w, { campaign: 'timed' })))).status).toBe(202);
  const { participants } = await t.json('GET', '/v1/admin/campaigns/timed/participants?limit=10');
  const z = participants.find((p) => p.anonymous_id === 'z');
  await t.json('POST', `/v1/admin/campaigns/timed/participants/${z.id}/adjustments`, { points: 5, note: 'ahead' }, 201);
  await expect.poll(async () => (await t.json('GET', '/v1/admin/campaigns/timed')).status, { timeout: 40_000, intervals: [1_000] }).toBe('ended');
  const { grants } = await t.json('GET', '/v1/admin/campaigns/timed/grants?limit=10');
  expect(grants.map((g) => g.participant.id).sort()).toEqual([z.id, participants.find((p) => p.anonymous_id === 'x').id].sort());
  const audit = await t.json('GET', '/v1/admin/audit?limit=10');
  const end = audit.entries.find((e) => e.action === 'campaign.end');
  expect(JSON.parse(end.detail)).toMatchObject({ by: 'ends_at' });
  expect(JSON.parse(end.detail).seed).toMatch(/^[0-9]+$/);
  expect(invariantViolations()).toEqual([]);
});

test('a campaign that never sees an event still ends by itself at ends_at', async ({ request }) => {
  test.setTimeout(60_000);
  const t = await freshTenant(request);
  const config = { name: 'quiet', ends_at: new Date(Date.now() + 5_000).toISOString() };
  await t.json('POST', '/v1/admin/campaigns', { slug: 'quiet', config }, 201);
  await expect.poll(async () => (await t.json('GET', '/v1/admin/campaigns/quiet')).status, { timeout: 40_000, intervals: [1_000] }).toBe('ended');
});

test("a notice reaches the outbox once: from the worker's write and from the object's own outbox, drained by its alarm", async ({ request }) => {
  test.setTimeout(60_000);
  const t = await freshTenant(request);
  const config = { name: 'notices', quest: { steps: [] }, fraud: { flag_shared_ip: false } };
  await t.json('POST', '/v1/admin/campaigns', { slug: 'notices', config }, 201);
  // A closed loopback port: nothing leaves the machine, and the webhook is removed at the end.
  const hook = await t.json('POST', '/v1/admin/webhooks', { url: 'http://127.0.0.1:9/notices', events: ['referral.confirmed'] }, 201);
  await t.send([ev('signup', 'host', { campaign: 'notices' })]);
  const { code } = await t.me('notices', 'host');
  await t.send([ev('signup', 'guest', { attribution: { ref: code } })]);
  // The object drains its outbox within seconds of the call.
  await expect.poll(async () => (await t.json('GET', '/v1/admin/campaigns/notices/check')).counts.pending_notices,
    { timeout: 20_000, intervals: [500] }).toBe(0);
  const { deliveries } = await t.json('GET', `/v1/admin/webhooks/${hook.id}/deliveries`);
  expect(deliveries).toHaveLength(1);
  expect(JSON.parse(deliveries[0].payload)).toMatchObject({ type: 'referral.confirmed', campaign: 'notices', id: expect.stringMatching(/^n-\d+-\d+$/) });
  await t.json('DELETE', `/v1/admin/webhooks/${hook.id}`);
});

test("webhooks go out from the campaign's own alarm within seconds; a silent endpoint of one tenant delays no other", async ({ request }) => {
  test.setTimeout(60_000);
  const { createServer } = await import('node:http');
  const got = [];
  const hanging = [];
  // One receiver answers, the other never does (its sockets are closed at the end).
  const fine = createServer((req, res) => { let b = ''; req.on('data', (c) => { b += c; }); req.on('end', () => { got.push({ at: Date.now(), body: b }); res.writeHead(204).end(); }); });
  const silent = createServer((req) => { hanging.push(req); });
  await Promise.all([fine, silent].map((s) => new Promise((r) => s.listen(0, '127.0.0.1', r))));
  try {
    const config = { name: 'hooked', quest: { steps: [] }, fraud: { flag_shared_ip: false } };
    const [slow, quick] = [await freshTenant(request), await freshTenant(request)];
    for (const [t, server] of [[slow, silent], [quick, fine]]) {
      await t.json('POST', '/v1/admin/campaigns', { slug: 'hooked', config }, 201);
      t.hook = await t.json('POST', '/v1/admin/webhooks', { url: `http://127.0.0.1:${server.address().port}/in`, events: ['referral.confirmed'] }, 201);
      await t.send([ev('signup', 'host', { campaign: 'hooked' })]);
    }
    const sentAt = Date.now();
    for (const t of [slow, quick]) {
      const { code } = await t.me('hooked', 'host');
      await t.send([ev('signup', 'guest', { attribution: { ref: code } })]);
    }
    // No cron runs here: the objects' alarms deliver.
    await expect.poll(() => got.length, { timeout: 15_000, intervals: [250] }).toBe(1);
    expect(got[0].at - sentAt).toBeLessThan(10_000);
    expect(JSON.parse(got[0].body)).toMatchObject({ type: 'referral.confirmed', campaign: 'hooked' });
    // The silent endpoint got its request, and the attempt was given up after its timeout.
    await expect.poll(async () => (await slow.json('GET', `/v1/admin/webhooks/${slow.hook.id}/deliveries`)).deliveries[0]?.last_error ?? null,
      { timeout: 30_000, intervals: [500] }).toMatch(/no answer within/);
    expect(hanging.length).toBeGreaterThanOrEqual(1);
    const [log] = (await quick.json('GET', `/v1/admin/webhooks/${quick.hook.id}/deliveries`)).deliveries;
    expect(log).toMatchObject({ attempts: 1, last_status: 204 });
    for (const t of [slow, quick]) await t.json('DELETE', `/v1/admin/webhooks/${t.hook.id}`);
  } finally {
    for (const r of hanging) r.socket.destroy();
    fine.close();
    silent.close();
  }
});
