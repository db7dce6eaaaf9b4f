// Hostile and broken input against `wrangler dev`: each answered with the
// documented status and error code, and nothing written (row counts of every
// table compared before and after).
import { test, expect } from '@playwright/test';
import { EDGE, PK, SK, ev, freshTenant, invariantViolations, rowCounts, uuid } from './helpers.mjs';

/** Limits count per clock minute: start a burst early in one so it cannot straddle two. */
async function startOfAMinute() {
  const into = Date.now() % 60_000;
  if (into > 40_000) await new Promise((r) => setTimeout(r, 60_500 - into));
}

const batch = (events, key = PK) => JSON.stringify({ key, events });

test('bad input gets a clear error and changes nothing', async ({ request }) => {
  test.setTimeout(120_000);
  const t = await freshTenant(request);
  await t.json('POST', '/v1/admin/campaigns', { slug: 'c', config: { name: 'C', point_rules: [{ id: 'p', event: 'signup', to: 'self', points: 10 }] } }, 201);
  await t.send([ev('signup', 'victim')]);
  const victim = await t.me('c', 'victim');
  const known = ev('signup', 'someone');
  expect((await t.send([known])).body.accepted).toBe(1);

  const post = (path, body, headers = {}) => request.post(`${EDGE}${path}`, { data: body, headers });
  const cases = [
    ['malformed JSON', () => post('/v1/batch', '{"key": "pk_demo_refloop_public", "events": ['), 400, 'malformed_request'],
    ['a JSON array', () => post('/v1/batch', '[]'), 400, 'malformed_request'],
    ['events of the wrong type', () => post('/v1/batch', JSON.stringify({ key: PK, events: {} })), 400, 'malformed_request'],
    ['a numeric key', () => post('/v1/batch', JSON.stringify({ key: 42, events: [] })), 400, 'malformed_request'],
    ['no key', () => post('/v1/batch', JSON.stringify({ events: [] })), 400, 'missing_key'],
    ['an unknown key', () => post('/v1/batch', batch([ev('signup', 'x')], 'pk_unknown_key_123456')), 401, 'unknown_key'],
    ['a key of no plausible form', () => post('/v1/batch', batch([ev('signup', 'x')], "pk_' OR 1=1 --")), 401, 'unknown_key'],
    ['a secret key in a browser batch', () => post('/v1/batch', batch([ev('signup', 'x')], SK)), 403, 'forbidden'],
    ['a foreign origin', () => post('/v1/batch', batch([ev('signup', 'x')]), { Origin: 'https://evil.example' }), 403, 'origin_not_allowed'],
    ['a body over 64 KiB', () => post('/v1/batch', batch([ev('signup', 'x', { properties: { pad: 'x'.repeat(70_000) } })])), 413, 'payload_too_large'],
    ['101 events', () => post('/v1/batch', batch(Array.from({ length: 101 }, () => ev('page', 'x')))), 413, 'too_many_events'],
    ['invalid UTF-8', () => post('/v1/batch', Buffer.from([0x7b, 0x22, 0x6b, 0xff, 0xfe, 0x22, 0x7d])), 400, 'malformed_request'],
    ['deep nesting', () => post('/v1/batch', '{"key":"' + PK + '","events":[' + '['.repeat(5000) + ']'.repeat(5000) + ']}'), 400, 'malformed_request'],
    ['server events without a key', () => post('/v1/server/events', batch([ev('purchase', 'x')])), 401, 'unauthorized'],
    ['server events with a publishable key', () => post('/v1/server/events', batch([ev('purchase', 'x')]), { Authorization: `Bearer ${PK}` }), 403, 'forbidden'],
    ['server events with a forged secret key', () => post('/v1/server/events', batch([ev('purchase', 'x')]), { Authorization: 'Bearer sk_forged_key_1234567890' }), 401, 'unauthorized'],
    ['admin with a publishable key', () => request.get(`${EDGE}/v1/admin/campaigns`, { headers: { Authorization: `Bearer ${PK}` } }), 403, 'forbidden'],
    ['admin without a key', () => request.get(`${EDGE}/v1/admin/events`), 401, 'unauthorized'],
    ['an adjustment with a publishable key', () => post(`/v1/admin/campaigns/c/participants/1/adjustments`, { points: 1000, note: 'x' }, { Authorization: `Bearer ${t.pk}` }), 403, 'forbidden'],
    ['an adjustment of zero', () => post(`/v1/admin/campaigns/c/participants/1/adjustments`, { points: 0, note: 'x' }, { Authorization: `Bearer ${t.sk}` }), 400, 'invalid_parameter'],
    ['an adjustment of fractional points', () => post(`/v1/admin/campaigns/c/participants/1/adjustments`, { points: 1.5, note: 'x' }, { Authorization: `Bearer ${t.sk}` }), 400, 'invalid_parameter'],
    ['a leaderboard limit of 10^6', () => request.get(`${EDGE}/v1/campaigns/c/leaderboard?key=${t.pk}&limit=1000000`), 400, 'invalid_parameter'],
    ['a leaderboard with a secret key', () => request.get(`${EDGE}/v1/campaigns/c/leaderboard?key=${t.sk}`), 403, 'forbidden'],
    ['an injection string as a campaign', () => request.get(`${EDGE}/v1/campaigns/${encodeURIComponent("c' OR '1'='1")}/leaderboard?key=${t.pk}`), 404, 'not_found'],
    ['an injection string as a code', () => request.get(`${EDGE}/r/${encodeURIComponent("x' UNION SELECT * FROM sites --")}`, { maxRedirects: 0 }), 404, 'not_found'],
    ['a participant id that is not a number', () => request.get(`${EDGE}/v1/admin/campaigns/c/participants/1%20OR%201=1/ledger`, { headers: { Authorization: `Bearer ${t.sk}` } }), 400, 'invalid_parameter'],
    ['an unknown route', () => request.get(`${EDGE}/v1/nope`), 404, 'not_found'],
    ['a megabyte to an unknown route (refused before it is read)', () => post('/nope', 'x'.repeat(1 << 20)), 413, 'payload_too_large'],
    ['a wrong method', () => request.delete(`${EDGE}/v1/batch`), 405, 'method_not_allowed'],
    ['a campaign config with unknown fields', () => post('/v1/admin/campaigns', { slug: 'x', config: { name: 'x', bogus: 1 } }, { Authorization: `Bearer ${t.sk}` }), 422, 'invalid_config'],
    ['a campaign slug with a path in it', () => post('/v1/admin/campaigns', { slug: '../x', config: { name: 'x' } }, { Authorization: `Bearer ${t.sk}` }), 400, 'invalid_parameter'],
    ['a tenant without the root key', () => post('/v1/admin/tenants', { name: 'x' }, { Authorization: `Bearer ${t.sk}` }), 401, 'unauthorized'],
    ['a webhook to a plain-http host', () => post('/v1/admin/webhooks', { url: 'http://10.0.0.1/x' }, { Authorization: `Bearer ${t.sk}` }), 400, 'invalid_parameter'],
  ];
  const before = rowCounts();
  for (const [name, call, status, code] of cases) {
    const res = await call();
    const body = await res.json().catch(() => null);
    expect.soft(res.status(), name).toBe(status);
    expect.soft(body?.error?.code, name).toBe(code);
    expect.soft(typeof body?.error?.message, name).toBe('string');
  }
  expect(rowCounts()).toEqual(before);

  // Per-event refusals inside an accepted batch: nothing of them is stored.
  const perEvent = [
    { ...ev('signup', 'x'), id: 'not-a-uuid' },
    { ...ev('signup', 'x'), type: 'alias' },
    { id: uuid(), type: 'track', anonymous_id: 'x' },
    { ...ev('referral_confirmed', 'victim') },
    { ...ev('signup', 'x'), anonymous_id: 42 },
    { ...ev('signup', 'x'), timestamp: 'yesterday' },
    { ...ev('x'.repeat(500), 'x') },
    { id: uuid(), type: 'track', event: 'signup' },
    { ...ev('signup', 'x'), traits: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, 1])) },
    { ...ev('signup', 'x'), traits: { bio: 'x'.repeat(2000) } },
  ];
  const r = await t.send(perEvent);
  expect(r.status).toBe(202);
  expect(r.body.accepted).toBe(0);
  expect(r.body.rejected.map((x) => x.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  expect(r.body.rejected.map((x) => x.error)).toEqual(expect.arrayContaining(['reserved_event', 'invalid_id', 'invalid_type', 'too_many_traits', 'invalid_trait']));
  expect(rowCounts()).toEqual(before);

  // Replayed and altered event ids: duplicates, nothing changes.
  const replay = await t.send([known, { ...known, event: 'purchase', properties: { amount: 1e9 } }]);
  expect(replay.body).toMatchObject({ accepted: 0, duplicates: 2 });
  expect(rowCounts()).toEqual(before);

  // Forged points in a browser event's properties award nothing; the event is stored.
  const forged = await t.send([ev('profile_viewed', 'victim', { properties: { points: 1e6, score: 1e6 }, traits: { score: 1e6 } })]);
  expect(forged.body.accepted).toBe(1);
  expect((await t.me('c', 'victim')).points).toBe(victim.points);
  const after = rowCounts();
  expect(after.events).toBe(before.events + 1);
  expect(after.ledger).toBe(before.ledger);
});

test('over its limit a site gets 429 with Retry-After, and nothing is stored', async ({ request }) => {
  test.setTimeout(90_000);
  const t = await freshTenant(request, { rate_limit_per_minute: 3 });
  await startOfAMinute();
  const codes = [];
  for (let i = 0; i < 5; i++) codes.push((await t.send([ev('page', 'v')])));
  expect(codes.map((c) => c.status)).toEqual([202, 202, 202, 429, 429]);
  expect(codes[3].body.error.code).toBe('rate_limited');
  expect(Number(codes[3].headers['retry-after'])).toBeGreaterThan(0);
  expect(Number(codes[3].headers['retry-after'])).toBeLessThanOrEqual(60);
});

test('over its limit an IP gets 429 whatever key it uses', async ({ request }) => {
  test.setTimeout(90_000);
  await startOfAMinute();
  const ip = `10.${Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}.9`;
  // The suite's edge allows an IP 3,000 requests a minute (playwright.config.mjs)
  // and a site's browsers 1,200: three sites of their own, none over its budget.
  const sites = [await freshTenant(request), await freshTenant(request), await freshTenant(request)];
  const statuses = [];
  for (let i = 0; i < 3020; i += 20) {
    const burst = await Promise.all(Array.from({ length: 20 }, (_, j) => request.post(`${EDGE}/v1/batch`, {
      data: { key: sites[(i + j) % 3].pk, events: [] }, headers: { 'CF-Connecting-IP': ip },
    })));
    statuses.push(...burst.map((r) => r.status()));
  }
  expect(statuses.filter((s) => s === 202).length).toBeLessThanOrEqual(3000);
  expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
});

test('more hostile input: encodings, unicode tricks, forged trust and points, self-referral, a velocity burst', async ({ request }) => {
  test.setTimeout(120_000);
  const t = await freshTenant(request);
  const config = {
    name: 'C', quest: { steps: [] },
    point_rules: [{ id: 'p', event: 'signup', to: 'self', points: 10 }, { id: 'vip', event: 'purchase', to: 'self', points: 500, trusted: true },
      { id: 'ref', event: 'referral_confirmed', to: 'referrer', points: 50 }],
    fraud: { flag_shared_ip: false, velocity_per_hour: 5 },
  };
  await t.json('POST', '/v1/admin/campaigns', { slug: 'c', config }, 201);
  await t.send([ev('signup', 'owner')]);
  const owner = await t.me('c', 'owner');
  const raw = (body, headers = {}) => request.post(`${EDGE}/v1/batch`, { data: body, headers });
  const cases = [
    ['a JSON body behind a byte-order mark', () => raw(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify({ key: t.pk, events: [] }))])), 400, 'malformed_request'],
    ['a form-encoded body', () => raw(`key=${t.pk}&events=x`, { 'Content-Type': 'application/x-www-form-urlencoded' }), 400, 'malformed_request'],
    ['an empty body', () => raw(''), 400, 'malformed_request'],
    ['a key with a zero-width space', () => raw(JSON.stringify({ key: `${t.pk}\u200b`, events: [] })), 401, 'unknown_key'],
    ['a key repeated, the last one forged', () => raw(`{"key":"${t.pk}","key":"pk_forged_key_123456","events":[]}`), 401, 'unknown_key'],
    ['a limit below zero', () => request.get(`${EDGE}/v1/campaigns/c/leaderboard?key=${t.pk}&limit=-5`), 400, 'invalid_parameter'],
    ['an around code that is no code', () => request.get(`${EDGE}/v1/campaigns/c/leaderboard?key=${t.pk}&around=%00%27`), 404, 'not_found'],
    ['an invitation in code mode', () => request.post(`${EDGE}/v1/invitations`, { data: { key: t.pk, campaign: 'c', anonymous_id: 'owner' } }), 409, 'conflict'],
    ['an invitation with a secret key', () => request.post(`${EDGE}/v1/invitations`, { data: { key: t.sk, campaign: 'c', anonymous_id: 'owner' } }), 403, 'forbidden'],
    ['a QR code of 600 bytes', () => request.get(`${EDGE}/v1/qr.svg?data=${'x'.repeat(600)}`), 400, 'invalid_parameter'],
    ['a trend over two years', () => t.api('GET', '/v1/admin/campaigns/c/stats/trend?from=2024-01-01&to=2026-01-01'), 400, 'invalid_parameter'],
    ['a trend with a date that is no date', () => t.api('GET', '/v1/admin/campaigns/c/stats/trend?from=yesterday'), 400, 'invalid_parameter'],
    ['a grant move to a status that does not exist', () => t.api('POST', '/v1/admin/campaigns/c/grants/1/transitions', { to: 'paid' }), 400, 'invalid_parameter'],
    ['a review without a decision', () => t.api('POST', '/v1/admin/campaigns/c/referrals/1/review', {}), 400, 'malformed_request'],
    ['a tenant with an origin that is a path', () => request.post(`${EDGE}/v1/admin/tenants`, { headers: { Authorization: 'Bearer rk_demo_refloop_root' }, data: { name: 'x', site: { origins: ['https://a.example/path'] } } }), 400, 'invalid_parameter'],
    ['a campaign update that breaks a reference', () => t.api('PUT', '/v1/admin/campaigns/c/rewards', { rewards: [{ id: 'x', name: 'x', kind: { type: 'unicorn' } }] }), 422, 'invalid_config'],
  ];
  const before = rowCounts();
  for (const [name, call, status, code] of cases) {
    const res = await call();
    const body = await res.json().catch(() => null);
    expect.soft(res.status(), name).toBe(status);
    expect.soft(body?.error?.code, name).toBe(code);
  }
  expect(rowCounts()).toEqual(before);

  // Per event: a name with a right-to-left override is not `signup`; an id too
  // long; a NUL in the name; all refused or inert, none makes a participant.
  const tricks = await t.send([
    { ...ev('\u202epunglis', 'trick-1') },
    { ...ev('signup', 'x'.repeat(200)) },
    { ...ev('sign\u0000up', 'trick-3') },
  ]);
  expect(tricks.body.rejected.map((r) => r.index)).toEqual([1, 2]);
  expect(await t.me('c', 'trick-1')).toBeNull();

  // A browser cannot claim trust: `trusted` in the event is ignored, the
  // trusted rule does not fire; points in attribution are ignored too.
  await t.send([{ ...ev('purchase', 'owner'), trusted: true, attribution: { points: 1000 }, properties: { points: 1000 } }]);
  expect((await t.me('c', 'owner')).points).toBe(owner.points);

  // Self-referral: the owner's own code on their own signup makes no referral.
  const referralsBefore = rowCounts().referrals;
  await t.send([ev('signup', 'owner', { attribution: { ref: owner.code } })]);
  expect(rowCounts().referrals).toBe(referralsBefore);

  // A velocity burst: past 5 referrals in an hour, new ones wait for review
  // and earn the referrer nothing until then.
  for (let i = 0; i < 8; i++) await t.send([ev('signup', `burst-${i}`, { attribution: { ref: owner.code } })]);
  const after = await t.me('c', 'owner');
  expect(after.referrals.confirmed).toBe(5);
  const flagged = (await t.json('GET', '/v1/admin/campaigns/c/referrals?review=pending')).referrals;
  expect(flagged).toHaveLength(3);
  expect(flagged.every((r) => r.flags.includes('velocity'))).toBe(true);
  expect(invariantViolations()).toEqual([]);
});
