// An operator's account and codes under `wrangler dev`, from the console:
// several sites with their origins, keys rotated with a grace period, a
// participant's vanity code and a fresh code for a leaked one, credits sized
// by the shop's purchases, and the exports of referrals and grants.
import { test, expect } from '@playwright/test';
import { EDGE, WWW, ev, freshTenant, invariantViolations } from './helpers.mjs';

async function signIn(browser, sk) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(`${EDGE}/admin/`);
  await page.fill('#k', sk);
  await page.click('button:has-text("Sign in")');
  await expect(page.locator('h1:has-text("Campaigns")')).toBeVisible();
  return page;
}

/** A page view with `key` from `origin`: the status the edge answers. */
async function pageView(request, key, origin) {
  const res = await request.post(`${EDGE}/v1/batch`, { data: { key, events: [ev('page', 'visitor', { type: 'page' })] }, headers: { Origin: origin } });
  return res.status();
}

test('sites, origins and key rotation from the console', async ({ browser, request }) => {
  const t = await freshTenant(request);
  const operator = await signIn(browser, t.sk);
  await operator.click('a:has-text("Sites & keys")');
  await expect(operator.locator('code.pk').first()).toHaveText(t.pk);

  // A second site for the shop, with its own keys and origin.
  await operator.fill('#sname', 'shop');
  await operator.fill('#sorigins', 'https://shop.example');
  await operator.click('#newsite button');
  await expect(operator.locator('#skeys')).toContainText('secret key (shown once');
  const shopPk = (await operator.locator('#skeys').innerText()).match(/pk_[0-9a-f]{32}/)[0];
  expect(await pageView(request, shopPk, 'https://shop.example')).toBe(202);
  expect(await pageView(request, shopPk, 'https://blog.example')).toBe(403);

  // Its origins edited: the blog in, the shop out.
  const shop = operator.locator('section[data-site]', { hasText: 'shop' });
  await shop.locator('textarea').fill('https://blog.example');
  await shop.locator('button[data-origins]').click();
  await expect(operator.locator('section[data-site]', { hasText: 'shop' }).locator('textarea')).toHaveValue('https://blog.example');
  expect(await pageView(request, shopPk, 'https://blog.example')).toBe(202);
  expect(await pageView(request, shopPk, 'https://shop.example')).toBe(403);

  // The first site's keys rotated with a day's grace: both pairs work …
  const first = operator.locator(`section[data-site]`, { hasText: t.pk });
  await first.locator('button[data-rotate]').click();
  const keys = operator.locator('[data-keys]').first();
  await expect(keys).toContainText('shown once');
  const [, newPk] = (await keys.innerText()).match(/(pk_[0-9a-f]{32})/);
  const newSk = (await keys.innerText()).match(/sk_[0-9a-f]{64}/)[0];
  expect(newPk).not.toBe(t.pk);
  expect(await pageView(request, t.pk, WWW)).toBe(202);
  expect(await pageView(request, newPk, WWW)).toBe(202);
  await expect(operator.locator('section[data-site]').first()).toContainText('the previous keys work until');
  // … and rotated again at once (no grace): only the newest pair works.
  const rotated = await request.post(`${EDGE}/v1/admin/sites/${await operator.locator('section[data-site]').first().getAttribute('data-site')}/keys`, {
    data: { grace_hours: 0 }, headers: { Authorization: `Bearer ${newSk}` },
  });
  expect(rotated.status()).toBe(200);
  const newest = await rotated.json();
  expect(await pageView(request, t.pk, WWW)).toBe(401);
  expect(await pageView(request, newPk, WWW)).toBe(401);
  expect(await pageView(request, newest.publishable_key, WWW)).toBe(202);
  const old = await request.get(`${EDGE}/v1/admin/sites`, { headers: { Authorization: `Bearer ${t.sk}` } });
  expect(old.status()).toBe(401);
});

test('a vanity code, a fresh code and a reward by hand from the console; a retired code names no one', async ({ browser, request }) => {
  const t = await freshTenant(request);
  const config = { name: 'Codes', landing_url: `${WWW}/`, quest: { steps: [{ event: 'signup' }] }, fraud: { flag_shared_ip: false },
    rewards: [{ id: 'thanks', name: 'Thank-you coupon', kind: { type: 'coupon', prefix: 'THX' } }] };
  await t.json('POST', '/v1/admin/campaigns', { slug: 'codes', config }, 201);
  await t.send([ev('signup', 'ann', { campaign: 'codes' })]);
  const before = (await t.me('codes', 'ann')).code;
  const { participants } = await t.json('GET', '/v1/admin/campaigns/codes/participants');
  const operator = await signIn(browser, t.sk);
  await operator.goto(`${EDGE}/admin/#/c/codes/p/${participants[0].id}`);
  await operator.fill('#vanity', 'annaxyz');
  await operator.click('#code button');
  await expect(operator.locator('#cdone')).toHaveText(`Now ANNAXYZ; ${before} is retired.`);
  // Taken by someone: the console says so.
  await t.send([ev('signup', 'bob', { campaign: 'codes' })]);
  const bob = (await t.json('GET', '/v1/admin/campaigns/codes/participants?q=bob')).participants[0];
  await operator.goto(`${EDGE}/admin/#/c/codes/p/${bob.id}`);
  await expect(operator.locator('h2').first()).toContainText(`Ledger of ${bob.code}`);
  await operator.fill('#vanity', before);
  await operator.click('#code button');
  await expect(operator.locator('#ce')).toContainText('taken');
  await operator.fill('#vanity', '');
  await operator.click('#code button');
  await expect(operator.locator('#cdone')).toContainText('is retired');

  // A reward given by hand from the same page: a coupon, with its token.
  await operator.goto(`${EDGE}/admin/#/c/codes/p/${participants[0].id}`);
  await expect(operator.locator('h2').first()).toContainText('Ledger of ANNAXYZ');
  await operator.selectOption('#reward', 'thanks');
  await operator.fill('#gnote', 'contest winner');
  await operator.click('#give button');
  await expect(operator.locator('#gdone')).toHaveText(/^Given: thanks, approved, token THX-[A-Z2-9]{8}\.$/);
  const { grants } = await t.json('GET', '/v1/admin/campaigns/codes/grants');
  expect(grants.map((g) => [g.participant.code, g.reward, g.source.type])).toEqual([['ANNAXYZ', 'thanks', 'manual']]);

  // The links: the vanity code's carries it, the retired one lands bare.
  const go = async (code) => (await request.get(`${EDGE}/r/${code}`, { maxRedirects: 0 })).headers().location;
  expect(await go('ANNAXYZ')).toBe(`${WWW}/?ref=ANNAXYZ`);
  expect(await go(before)).toBe(`${WWW}/`);
  await t.send([ev('signup', 'cat', { campaign: 'codes', attribution: { ref: 'ANNAXYZ' } }), ev('signup', 'dan', { campaign: 'codes', attribution: { ref: before } })]);
  expect((await t.me('codes', 'ann')).referrals.confirmed).toBe(1);
  const { answers } = await t.json('GET', '/v1/admin/campaigns/codes/answers?q=dan');
  expect(answers[0].reason).toBe('retired_code');

  // Codes that run out, set in the configuration form.
  await operator.goto(`${EDGE}/admin/#/c/codes/config`);
  await operator.fill('#f-code_valid_days', '30');
  await operator.click('button:has-text("Save as version 2")');
  await expect(operator.locator('h2:has-text("version 2")')).toBeVisible();
  expect((await t.json('GET', '/v1/admin/campaigns/codes')).config.code_valid_days).toBe(30);
  expect((await t.me('codes', 'ann')).code_valid_until).toMatch(/^\d{4}-/);
});

test('credits sized by the shop\'s purchases, and the exports of referrals and grants', async ({ browser, request }) => {
  const t = await freshTenant(request);
  const config = { name: 'Cashback', quest: { steps: [{ event: 'signup' }, { event: 'purchase', trusted: true }] }, fraud: { flag_shared_ip: false },
    rewards: [{ id: 'cash', name: 'Cashback', kind: { type: 'credit', amount_minor: 500, currency: 'EUR', sized: { percent: 10, max_minor: 2500 } } }],
    milestones: [{ id: 'each', every: 1, reward: 'cash' }] };
  await t.json('POST', '/v1/admin/campaigns', { slug: 'cash', config }, 201);
  await t.send([ev('signup', 'ann', { campaign: 'cash' })]);
  const code = (await t.me('cash', 'ann')).code;
  await t.send([ev('signup', 'bob', { campaign: 'cash', attribution: { ref: code, utm_source: 'newsletter' } }), ev('signup', 'cat', { campaign: 'cash', attribution: { ref: code } })]);
  // A page claiming a purchase changes nothing; the shop's server sizes the credit.
  await t.send([ev('purchase', 'bob', { campaign: 'cash', properties: { amount_minor: 999999 } })]);
  expect((await t.me('cash', 'ann')).rewards).toEqual([]);
  expect((await t.server([ev('purchase', 'bob', { campaign: 'cash', properties: { amount_minor: 12345, currency: 'EUR' } })])).status).toBe(202);
  expect((await t.server([ev('purchase', 'cat', { campaign: 'cash', properties: { amount_minor: 90000 } })])).status).toBe(202);
  const me = await t.me('cash', 'ann');
  expect(me.rewards.map((r) => r.value_minor).sort((a, b) => a - b)).toEqual([1234, 2500]);
  const money = await t.json('GET', '/v1/admin/campaigns/cash/stats/money');
  expect(money.currencies[0].committed_minor).toBe(3734);

  // The console downloads the referrals and the grants.
  const operator = await signIn(browser, t.sk);
  await operator.goto(`${EDGE}/admin/#/c/cash/stats`);
  const [referrals] = await Promise.all([operator.waitForEvent('download'), operator.click('button[data-csv="referrals"]')]);
  expect(referrals.suggestedFilename()).toBe('cash-referrals.csv');
  const text = await (await referrals.createReadStream()).toArray().then((b) => Buffer.concat(b).toString());
  const lines = text.trim().split('\n');
  expect(lines[0]).toBe('referral_id,referrer_id,referrer_code,referee_id,referee_code,status,review,reason,via,source,created_at,confirmed_at,config_version');
  expect(lines).toHaveLength(3);
  expect(lines[1]).toContain(',confirmed,');
  expect(lines[1]).toContain('newsletter');
  const [grants] = await Promise.all([operator.waitForEvent('download'), operator.click('button[data-csv="grants"]')]);
  const g = await (await grants.createReadStream()).toArray().then((b) => Buffer.concat(b).toString());
  expect(g).toContain(',1234,EUR,');
  expect(g).toContain(',2500,EUR,');
  expect(invariantViolations()).toEqual([]);
});
