// Every route of the contract, end to end under `wrangler dev`.
import { test, expect } from '@playwright/test';
import { createServer } from 'node:http';
import { createHmac } from 'node:crypto';
import { EDGE, ev, freshTenant, invariantViolations } from './helpers.mjs';

// The shop's own origin, where its campaigns' referral links land.
const SHOP = { origins: ['http://127.0.0.1:8081', 'https://shop.example'] };
const LOOP = {
  name: 'Loop',
  landing_url: 'https://shop.example/welcome?utm_source=refloop',
  quest: { steps: [{ event: 'signup' }, { event: 'purchase', trusted: true }], window_days: 30 },
  point_rules: [
    { id: 'joined', event: 'signup', to: 'self', points: 10 },
    { id: 'per', event: 'referral_confirmed', to: 'referrer', points: 50 },
    { id: 'vip', event: 'purchase', to: 'self', points: 5, trusted: true },
  ],
  milestones: [{ id: 'first', name: 'FIRST', confirmed_referrals: 1, reward: 'bonus' }, { id: 'two', confirmed_referrals: 2, reward: 'coupon' }],
  rewards: [
    { id: 'bonus', name: 'Bonus', kind: { type: 'points', points: 100 }, requires_review: true },
    { id: 'coupon', name: 'Coupon', kind: { type: 'coupon', prefix: 'THANKS' } },
  ],
  fraud: { flag_shared_ip: false },
};

test('the referral loop through the public routes: link, signup, trusted conversion, stats, leaderboard', async ({ request }) => {
  const t = await freshTenant(request, SHOP);
  const created = await t.json('POST', '/v1/admin/campaigns', { slug: 'loop', config: LOOP }, 201);
  expect(created).toMatchObject({ slug: 'loop', version: 1, status: 'active' });
  await t.send([ev('signup', 'ann', { traits: { name: 'Ann Lee' } })]);
  const ann = await t.me('loop', 'ann');
  expect(ann).toMatchObject({ points: 10, rank: 1, link: `/r/${ann.code}` });
  expect(ann.code).toMatch(/^[A-HJ-KMNP-Z2-9]{8}$/);

  // The link counts a click and sends the visitor on with the code.
  const click = await request.get(`${EDGE}/r/${ann.code}`, { maxRedirects: 0 });
  expect(click.status()).toBe(302);
  expect(click.headers().location).toBe(`https://shop.example/welcome?utm_source=refloop&ref=${ann.code}`);
  expect((await request.get(`${EDGE}/r/NOSUCH22`, { maxRedirects: 0 })).status()).toBe(404);

  // Signup with the code: a pending referral; the browser's "purchase" is not trusted.
  await t.send([ev('signup', 'bob', { attribution: { ref: ann.code } })]);
  await t.send([ev('purchase', 'bob')]);
  expect((await t.me('loop', 'ann')).referrals).toMatchObject({ pending: 1, confirmed: 0 });
  const bobBefore = await t.me('loop', 'bob');
  expect(bobBefore.quest.steps).toEqual([{ event: 'signup', done: true }, { event: 'purchase', done: false }]);

  // The trusted conversion from the server completes the quest.
  const conv = await t.server([ev('purchase', 'bob')]);
  expect(conv).toMatchObject({ status: 202, body: { accepted: 1 } });
  const after = await t.me('loop', 'ann');
  expect(after).toMatchObject({ clicks: 1, points: 60, tier: 'FIRST', referrals: { confirmed: 1, pending: 0 } });
  expect(after.rewards).toEqual([expect.objectContaining({ reward: 'bonus', status: 'pending_review' })]);
  expect((await t.me('loop', 'bob')).points).toBe(15);

  // Public stats by code; the leaderboard with masked names and "around me".
  const pub = await request.get(`${EDGE}/v1/campaigns/loop/participants/${ann.code}?key=${t.pk}`);
  expect(pub.status()).toBe(200);
  expect(await pub.json()).toMatchObject({ code: ann.code, points: 60, rank: 1 });
  const board = await (await request.get(`${EDGE}/v1/campaigns/loop/leaderboard?key=${t.pk}&around=${ann.code}&limit=5`)).json();
  expect(board.top.map((r) => [r.rank, r.name, r.score])).toEqual([[1, 'Ann L.', 60], [2, `${bobBefore.code.slice(0, 3)}•••`, 15]]);
  expect(board.around.find((r) => r.you)).toMatchObject({ rank: 1, score: 60 });
  for (const period of ['month', 'week']) {
    const r = await (await request.get(`${EDGE}/v1/campaigns/loop/leaderboard?key=${t.pk}&period=${period}`)).json();
    expect(r.top[0]).toMatchObject({ score: 60 });
  }
  expect((await request.get(`${EDGE}/v1/campaigns/loop/leaderboard?key=${t.pk}&period=year`)).status()).toBe(400);
  expect((await request.get(`${EDGE}/v1/campaigns/nope/leaderboard?key=${t.pk}`)).status()).toBe(404);
  expect(invariantViolations()).toEqual([]);
});

test('the admin API: versions, rules, rewards, participants, ledger, adjustments, grants, review, stats, export, erasure', async ({ request }) => {
  const t = await freshTenant(request, SHOP);
  await t.json('POST', '/v1/admin/campaigns', { slug: 'loop', config: LOOP }, 201);
  expect((await t.api('POST', '/v1/admin/campaigns', { slug: 'loop', config: LOOP })).status()).toBe(409);
  const invalid = await t.api('POST', '/v1/admin/campaigns', { slug: 'bad', config: { ...LOOP, point_rules: [{ id: 'x', event: '', to: 'self', points: 1 }] } });
  expect(invalid.status()).toBe(422);
  expect((await invalid.json()).error).toMatchObject({ code: 'invalid_config', message: expect.stringContaining('point_rules[0]') });
  expect((await t.json('GET', '/v1/admin/campaigns')).campaigns.map((c) => c.slug)).toEqual(['loop']);

  await t.send([ev('signup', 'ann')]);
  const { code } = await t.me('loop', 'ann');
  await t.send([ev('signup', 'bob', { attribution: { ref: code } })]);
  await t.server([ev('purchase', 'bob')]);

  // An update is a new version; referrals stay pinned to theirs.
  const rules = [...LOOP.point_rules.map((r) => (r.id === 'per' ? { ...r, points: 70 } : r))];
  const v2 = await t.json('PUT', '/v1/admin/campaigns/loop/point-rules', { point_rules: rules });
  expect(v2.version).toBe(2);
  const v3 = await t.json('PUT', '/v1/admin/campaigns/loop/rewards', { rewards: LOOP.rewards.map((r) => ({ ...r, name: `${r.name}!` })) });
  expect(v3.version).toBe(3);
  const v4 = await t.json('PUT', '/v1/admin/campaigns/loop', { config: { ...LOOP, name: 'Loop 2', point_rules: rules } });
  expect(v4).toMatchObject({ version: 4, name: 'Loop 2' });
  expect((await t.api('PUT', '/v1/admin/campaigns/loop', { config: LOOP, version: 1 })).status()).toBe(409);
  const versions = (await t.json('GET', '/v1/admin/campaigns/loop/versions')).versions;
  expect(versions.map((v) => v.version)).toEqual([1, 2, 3, 4]);
  expect((await t.json('GET', '/v1/admin/campaigns/loop')).config.name).toBe('Loop 2');

  // Participants, their ledger, an idempotent adjustment.
  const people = (await t.json('GET', '/v1/admin/campaigns/loop/participants')).participants;
  expect(people).toHaveLength(2);
  const annRow = (await t.json('GET', `/v1/admin/campaigns/loop/participants?q=${code}`)).participants[0];
  const adj = { points: -7, note: 'typo fix', idempotency_key: 'fix-1' };
  expect(await t.json('POST', `/v1/admin/campaigns/loop/participants/${annRow.id}/adjustments`, adj, 201)).toMatchObject({ score: 53 });
  expect(await t.json('POST', `/v1/admin/campaigns/loop/participants/${annRow.id}/adjustments`, adj, 200)).toMatchObject({ score: 53, duplicate: true });
  const ledger = await t.json('GET', `/v1/admin/campaigns/loop/participants/${annRow.id}/ledger`);
  expect(ledger.score).toBe(53);
  expect(ledger.entries.map((e) => e.reason.type).sort()).toEqual(['manual', 'rule', 'rule']);

  // The milestone grant waits for review; its lifecycle is enforced and recorded.
  let grants = (await t.json('GET', '/v1/admin/campaigns/loop/grants')).grants;
  expect(grants).toHaveLength(1);
  const g = grants[0];
  expect(g.status).toBe('pending_review');
  const bad = await t.api('POST', `/v1/admin/campaigns/loop/grants/${g.id}/transitions`, { to: 'redeemed' });
  expect(bad.status()).toBe(409);
  await t.json('POST', `/v1/admin/campaigns/loop/grants/${g.id}/transitions`, { to: 'approved', note: 'ok' });
  expect((await t.me('loop', 'ann')).points).toBe(153);
  await t.json('POST', `/v1/admin/campaigns/loop/grants/${g.id}/transitions`, { to: 'fulfilled' });
  const revoked = await t.json('POST', `/v1/admin/campaigns/loop/grants/${g.id}/transitions`, { to: 'revoked', note: 'fraud after all' });
  expect(revoked.history.map((h) => h.to)).toEqual(['earned', 'pending_review', 'approved', 'fulfilled', 'revoked']);
  expect((await t.me('loop', 'ann')).points).toBe(53);

  // A flagged referral (disposable email) waits for review; approval counts it.
  await t.send([ev('signup', 'cat', { attribution: { ref: code }, traits: { email: 'cat@mailinator.com' } })]);
  await t.server([ev('purchase', 'cat')]);
  const flagged = (await t.json('GET', '/v1/admin/campaigns/loop/referrals?review=pending')).referrals;
  expect(flagged).toHaveLength(1);
  expect(flagged[0].flags).toContain('disposable_email');
  expect((await t.me('loop', 'ann')).referrals.confirmed).toBe(1);
  await t.json('POST', `/v1/admin/campaigns/loop/referrals/${flagged[0].id}/review`, { approve: true });
  const ann = await t.me('loop', 'ann');
  expect(ann.referrals.confirmed).toBe(2);
  grants = (await t.json('GET', '/v1/admin/campaigns/loop/grants?status=approved')).grants;
  expect(grants.map((x) => x.token)).toEqual([expect.stringMatching(/^THANKS-[A-HJ-KMNP-Z2-9]{8}$/)]);
  expect((await t.api('POST', `/v1/admin/campaigns/loop/referrals/${flagged[0].id}/review`, { approve: true })).status()).toBe(409);

  // Snapshots, statistics, export.
  const snap = await t.json('POST', '/v1/admin/campaigns/loop/snapshots', { period: 'all' }, 201);
  const snaps = (await t.json('GET', '/v1/admin/campaigns/loop/snapshots')).snapshots;
  expect(snaps[0]).toMatchObject({ id: snap.id, period: 'all' });
  expect(snaps[0].rows[0]).toMatchObject({ rank: 1, code });
  const funnel = await t.json('GET', '/v1/admin/campaigns/loop/stats/funnel');
  expect(funnel.funnel).toMatchObject({ signups: 2, confirmed: 2 });
  const trend = await t.json('GET', '/v1/admin/campaigns/loop/stats/trend');
  expect(trend.days).toHaveLength(30);
  expect(trend.days.reduce((s, d) => s + d.signups, 0)).toBe(2);
  const csv = await t.api('GET', '/v1/admin/campaigns/loop/export.csv');
  expect(csv.headers()['content-type']).toContain('text/csv');
  const lines = (await csv.text()).trim().split('\n');
  expect(lines[0]).toBe('participant_id,code,user_id,joined_at,confirmed_referrals,points,rank,erased');
  expect(lines).toHaveLength(4);

  // Erasure forgets the person and keeps every sum.
  const cat = (await t.json('GET', '/v1/admin/campaigns/loop/participants?q=cat')).participants[0];
  await t.json('DELETE', `/v1/admin/campaigns/loop/participants/${cat.id}`);
  expect(await t.me('loop', 'cat')).toBeNull();
  const audit = (await t.json('GET', '/v1/admin/audit')).entries.map((e) => e.action);
  expect(audit).toEqual(expect.arrayContaining(['campaign.create', 'campaign.update', 'ledger.adjust', 'grant.transition', 'referral.approve', 'participant.erase']));
  await t.json('POST', '/v1/admin/campaigns/loop/status', { status: 'paused' });
  expect((await t.send([ev('signup', 'late')])).status).toBe(202);
  expect(await t.me('loop', 'late')).toBeNull();
  expect(invariantViolations()).toEqual([]);
});

test('invite mode: a minted invitation is claimed once', async ({ request }) => {
  const t = await freshTenant(request, SHOP);
  await t.json('POST', '/v1/admin/campaigns', { slug: 'inv', config: { ...LOOP, mode: 'invite', quest: { steps: [] } } }, 201);
  await t.send([ev('signup', 'host')]);
  const res = await request.post(`${EDGE}/v1/invitations`, { data: { key: t.pk, campaign: 'inv', anonymous_id: 'host' } });
  expect(res.status()).toBe(201);
  const inv = await res.json();
  expect(inv.url).toBe(`https://shop.example/welcome?utm_source=refloop&invite=${inv.token}`);
  await t.send([ev('signup', 'guest-1', { attribution: { invite: inv.token } })]);
  await t.send([ev('signup', 'guest-2', { attribution: { invite: inv.token } })]);
  expect((await t.me('inv', 'host')).referrals.confirmed).toBe(1);
  const stranger = await request.post(`${EDGE}/v1/invitations`, { data: { key: t.pk, campaign: 'inv', anonymous_id: 'nobody' } });
  expect(stranger.status()).toBe(404);
  const codeMode = await request.post(`${EDGE}/v1/invitations`, { data: { key: t.pk, campaign: 'nope', anonymous_id: 'host' } });
  expect(codeMode.status()).toBe(404);
});

test('webhooks: signed delivery by the campaign\'s alarm, retried by the cron when no alarm did', async ({ request }) => {
  const received = [];
  let failFirst = true;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      if (failFirst) { failFirst = false; res.writeHead(500).end(); return; }
      received.push({ headers: req.headers, body });
      res.writeHead(204).end();
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}/hook`;
  try {
    const t = await freshTenant(request, SHOP);
    await t.json('POST', '/v1/admin/campaigns', { slug: 'hooks', config: { ...LOOP, quest: { steps: [] } } }, 201);
    const hook = await t.json('POST', '/v1/admin/webhooks', { url, events: ['referral.confirmed'] }, 201);
    expect(hook.secret).toMatch(/^whsec_/);
    expect((await t.api('POST', '/v1/admin/webhooks', { url: 'http://evil.example/x' })).status()).toBe(400);
    await t.send([ev('signup', 'a')]);
    const { code } = await t.me('hooks', 'a');
    await t.send([ev('signup', 'b', { attribution: { ref: code } })]);
    // The campaign's alarm sends it within seconds; the receiver fails; the
    // delivery is kept for a retry (30 s on).
    let log;
    await expect.poll(async () => {
      log = (await t.json('GET', `/v1/admin/webhooks/${hook.id}/deliveries`)).deliveries;
      return log[0]?.attempts ?? 0;
    }, { timeout: 15_000, intervals: [250] }).toBe(1);
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({ attempts: 1, last_status: 500, delivered_at: null });
    expect(received).toHaveLength(0);
    // Make it long overdue, as if no alarm had come: the cron sends it.
    const { d1 } = await import('./helpers.mjs');
    d1(`UPDATE outbox SET next_attempt_at = 0 WHERE webhook_id = ${hook.id}`);
    await request.get(`${EDGE}/__scheduled?cron=*/5+*+*+*+*`);
    expect(received).toHaveLength(1);
    const [{ headers, body }] = received;
    const [, ts, sig] = headers['refloop-signature'].match(/^t=(\d+),v1=([0-9a-f]{64})$/);
    expect(sig).toBe(createHmac('sha256', hook.secret).update(`${ts}.${body}`).digest('hex'));
    // The same delivery verifies as a Standard Webhooks message (webhook-id/-timestamp/-signature).
    const key = Buffer.from(hook.secret.slice('whsec_'.length), 'base64');
    const signed = `${headers['webhook-id']}.${headers['webhook-timestamp']}.${body}`;
    expect(headers['webhook-signature']).toBe(`v1,${createHmac('sha256', key).update(signed).digest('base64')}`);
    expect(headers['webhook-id']).toBe(JSON.parse(body).id);
    expect(JSON.parse(body)).toMatchObject({ type: 'referral.confirmed', campaign: 'hooks' });
    log = (await t.json('GET', `/v1/admin/webhooks/${hook.id}/deliveries`)).deliveries;
    expect(log[0]).toMatchObject({ attempts: 2, last_status: 204 });
    expect((await t.json('GET', '/v1/admin/webhooks')).webhooks).toHaveLength(1);
    await t.json('DELETE', `/v1/admin/webhooks/${hook.id}`);
    // Deleted is gone: not listed, no log, not deleted twice.
    expect((await t.json('GET', '/v1/admin/webhooks')).webhooks).toHaveLength(0);
    expect((await t.api('GET', `/v1/admin/webhooks/${hook.id}/deliveries`)).status()).toBe(404);
    expect((await t.api('DELETE', `/v1/admin/webhooks/${hook.id}`)).status()).toBe(404);
  } finally {
    server.close();
  }
});

test('tenants are created with the root key only, and sites see only their own data', async ({ request }) => {
  expect((await request.post(`${EDGE}/v1/admin/tenants`, { data: { name: 'x' } })).status()).toBe(401);
  expect((await request.post(`${EDGE}/v1/admin/tenants`, { data: { name: 'x' }, headers: { Authorization: 'Bearer rk_wrong' } })).status()).toBe(401);
  const list = await request.get(`${EDGE}/v1/admin/tenants`, { headers: { Authorization: 'Bearer rk_demo_refloop_root' } });
  expect(list.status()).toBe(200);
  const a = await freshTenant(request, SHOP);
  const b = await freshTenant(request, SHOP);
  await a.json('POST', '/v1/admin/campaigns', { slug: 'mine', config: LOOP }, 201);
  expect((await b.api('GET', '/v1/admin/campaigns/mine')).status()).toBe(404);
  expect((await request.get(`${EDGE}/v1/campaigns/mine/leaderboard?key=${b.pk}`)).status()).toBe(404);
});
