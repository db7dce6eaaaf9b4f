// Many requests at once against `wrangler dev`: the guarded writes must never
// double-grant a milestone nor lose a point, and an event id takes effect once.
import { test, expect } from '@playwright/test';
import { ev, freshTenant, invariantViolations } from './helpers.mjs';

const RACE = {
  name: 'Race',
  quest: { steps: [] },
  point_rules: [
    { id: 'per', event: 'referral_confirmed', to: 'referrer', points: 10 },
    { id: 'hello', event: 'signup', to: 'self', points: 1 },
  ],
  milestones: [
    { id: 'm10', confirmed_referrals: 10, reward: 'bonus' },
    { id: 'm25', confirmed_referrals: 25, reward: 'bonus' },
    { id: 'm50', confirmed_referrals: 50, reward: 'bonus' },
  ],
  rewards: [{ id: 'bonus', name: 'bonus', kind: { type: 'points', points: 1000 } }],
  fraud: { velocity_per_hour: 100000, flag_shared_ip: false },
};

/** Sends, retrying `busy` (503) the way the SDK retries it. */
async function sendRetrying(t, events) {
  for (let attempt = 0; attempt < 6; attempt++) {
    const r = await t.send(events);
    if (r.status !== 503) return r;
    await new Promise((res) => setTimeout(res, 100 * (attempt + 1)));
  }
  return { status: 503 };
}

test('60 referees confirming at the same moment for one referrer: every point and one grant per milestone', async ({ request }) => {
  test.setTimeout(90_000);
  const t = await freshTenant(request);
  await t.json('POST', '/v1/admin/campaigns', { slug: 'race', config: RACE }, 201);
  expect((await t.send([ev('signup', 'referrer')])).status).toBe(202);
  const { code } = await t.me('race', 'referrer');

  const N = 60;
  const results = await Promise.all(
    Array.from({ length: N }, (_, i) => sendRetrying(t, [ev('signup', `referee-${i}`, { attribution: { ref: code } })])),
  );
  expect(results.map((r) => r.status)).toEqual(Array(N).fill(202));
  expect(results.every((r) => r.body.accepted === 1)).toBe(true);

  const me = await t.me('race', 'referrer');
  expect(me.referrals.confirmed).toBe(N);
  // 1 for joining, 10 per confirmed referral, 1000 for each of three milestones.
  expect(me.points).toBe(1 + 10 * N + 3 * 1000);
  const grants = (await t.json('GET', '/v1/admin/campaigns/race/grants?limit=500')).grants;
  expect(grants.map((g) => g.source.milestone).sort()).toEqual(['m10', 'm25', 'm50']);

  const participant = (await t.json('GET', `/v1/admin/campaigns/race/participants?q=${code}`)).participants[0];
  const ledger = await t.json('GET', `/v1/admin/campaigns/race/participants/${participant.id}/ledger?limit=1000`);
  expect(ledger.entries.reduce((s, e) => s + e.points, 0)).toBe(me.points);
  expect(new Set(ledger.entries.map((e) => e.idempotency_key)).size).toBe(ledger.entries.length);
  expect(invariantViolations()).toEqual([]);
});

test('the same event sent 30 times at once is stored and counted once', async ({ request }) => {
  const t = await freshTenant(request);
  await t.json('POST', '/v1/admin/campaigns', { slug: 'race', config: RACE }, 201);
  const signup = ev('signup', 'twin');
  const results = await Promise.all(Array.from({ length: 30 }, () => sendRetrying(t, [signup])));
  expect(results.map((r) => r.status)).toEqual(Array(30).fill(202));
  expect(results.reduce((s, r) => s + r.body.accepted, 0)).toBe(1);
  expect(results.reduce((s, r) => s + r.body.duplicates, 0)).toBe(29);
  expect((await t.me('race', 'twin')).points).toBe(1);
  expect(invariantViolations()).toEqual([]);
});

test('concurrent trusted conversions and browser events for many pairs keep every sum', async ({ request }) => {
  test.setTimeout(90_000);
  const t = await freshTenant(request);
  const config = { ...RACE, quest: { steps: [{ event: 'signup' }, { event: 'purchase', trusted: true }] } };
  await t.json('POST', '/v1/admin/campaigns', { slug: 'race', config }, 201);
  const referrers = ['r0', 'r1', 'r2', 'r3', 'r4'];
  for (const r of referrers) await t.send([ev('signup', r)]);
  const codes = await Promise.all(referrers.map(async (r) => (await t.me('race', r)).code));
  const pairs = Array.from({ length: 50 }, (_, i) => ({ referee: `e-${i}`, code: codes[i % 5] }));
  await Promise.all(pairs.map((p) => sendRetrying(t, [ev('signup', p.referee, { attribution: { ref: p.code } })])));
  const conversions = await Promise.all(pairs.map((p) => t.server([ev('purchase', p.referee)])));
  expect(conversions.map((c) => c.status)).toEqual(Array(50).fill(202));
  for (const r of referrers) {
    const me = await t.me('race', r);
    expect(me.referrals.confirmed).toBe(10);
    expect(me.points).toBe(1 + 100 + 1000);
  }
  expect(invariantViolations()).toEqual([]);
});
