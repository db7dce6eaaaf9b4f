// A waitlist from launch to prizes redeemed, the way an operator runs one:
// the campaign made in the console, people joining on the demo site and
// through each other's links, the end previewed and then run from the
// console (the top two win an early-access coupon), a prize fulfilled, the
// winner seeing her coupon in the progress widget, the shop's checkout
// redeeming it once, and the grants exported.
import { test, expect } from '@playwright/test';
import { EDGE, PK, SK, WWW, consoleCreates, ev, invariantViolations, joinWaitlist, uuid } from './helpers.mjs';

test('a waitlist from launch to prizes redeemed', async ({ browser, request }) => {
  test.setTimeout(120_000);
  const slug = `prize-${uuid().slice(0, 6)}`;
  const operator = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  operator.on('dialog', (d) => d.accept());
  const admin = async (method, path, data, status = 200) => {
    const res = await request.fetch(`${EDGE}/v1/admin${path}`, { method, data, headers: { Authorization: `Bearer ${SK}` } });
    expect(res.status(), `${method} ${path}: ${await res.text()}`).toBe(status);
    return (res.headers()['content-type'] || '').includes('json') ? res.json() : res.text();
  };

  // Launch: the operator makes the waitlist in the console, then sets its prizes.
  await consoleCreates(operator, SK, slug, 'waitlist');
  await admin('PUT', `/campaigns/${slug}`, { config: {
    name: 'Lumen launch', landing_url: `${WWW}/?campaign=${slug}`, ends_at: '2099-01-01T00:00:00Z',
    quest: { steps: [{ event: 'signup' }] },
    point_rules: [{ id: 'joined', event: 'signup', to: 'self', points: 10 }, { id: 'friend', event: 'referral_confirmed', to: 'referrer', points: 50 }],
    rewards: [{ id: 'early', name: 'Early access', kind: { type: 'coupon', prefix: 'EARLY' } }],
    end_distributions: [{ reward: 'early', rule: { type: 'top_n', n: 2 } }],
    fraud: { flag_shared_ip: false },
  } });

  // Ann joins on the site and gets her link; Ben follows it in another browser.
  const ann = await (await browser.newContext()).newPage();
  const link = await joinWaitlist(ann, slug, 'Ann Walker', `ann-${slug}@example.com`);
  await expect(link).toHaveValue(/\/r\/[A-Z2-9]{8}$/);
  const annCode = (await link.inputValue()).slice(-8);
  const ben = await (await browser.newContext()).newPage();
  await ben.goto(`${EDGE}/r/${annCode}`);
  await ben.waitForURL(`${WWW}/?campaign=${slug}`);
  await joinWaitlist(ben, slug, 'Ben Friend', `ben-${slug}@example.com`, null);

  // More people join from their own pages: Cat through Ann, Dan on his own, Eve through Dan.
  const batch = async (events) => {
    const res = await request.post(`${EDGE}/v1/batch`, { data: { key: PK, events }, headers: { Origin: WWW } });
    expect(res.status()).toBe(202);
  };
  await batch([ev('signup', `cat-${slug}`, { campaign: slug, attribution: { ref: annCode } }), ev('signup', `dan-${slug}`, { campaign: slug })]);
  const dan = await (await request.get(`${EDGE}/v1/campaigns/${slug}/me?key=${PK}&anonymous_id=dan-${slug}`)).json();
  await batch([ev('signup', `eve-${slug}`, { campaign: slug, attribution: { ref: dan.code } })]);

  // The operator previews the end (nothing is kept), then ends it.
  await operator.goto(`${EDGE}/admin/#/c/${slug}/program`);
  await operator.click('#endpreview');
  await expect(operator.locator('#ended')).toContainText('If it ended now (nothing kept): 2 grants');
  await expect(operator.locator('#ended tbody tr')).toHaveCount(2);
  await expect(operator.locator('#ended tbody tr').first()).toContainText(annCode);
  await expect(operator.locator('#ended tbody tr').nth(1)).toContainText(dan.code);
  expect((await admin('GET', `/campaigns/${slug}/grants`)).grants).toEqual([]);
  await operator.click('#end');
  await expect(operator.locator('#ended')).toContainText('Ended: 2 grants');
  await expect(operator.locator('#ended tbody tr').first()).toContainText(annCode);
  expect((await admin('GET', `/campaigns/${slug}`)).status).toBe('ended');

  // The prize is sent: the operator moves Ann's grant to fulfilled.
  await operator.goto(`${EDGE}/admin/#/c/${slug}/grants`);
  const annRow = operator.locator('tr', { hasText: annCode });
  await expect(annRow.locator('td.status')).toHaveText('approved');
  await annRow.locator('button[data-grant-to="fulfilled"]').click();
  await expect(operator.locator('tr', { hasText: annCode }).locator('td.status')).toHaveText('fulfilled');

  // Ann sees her prize, its status and her coupon in the progress widget.
  await ann.reload();
  const prize = ann.locator('#progress').locator('#rewards li');
  await expect(prize).toContainText('Early access');
  await expect(prize).toContainText('sent');
  const token = await prize.locator('code.tok').innerText();
  expect(token).toMatch(/^EARLY-[A-Z2-9]{8}$/);
  // Nobody else sees it: a code's public stats carry no token.
  const pub = await (await request.get(`${EDGE}/v1/campaigns/${slug}/participants/${annCode}?key=${PK}`, { headers: { Origin: WWW } })).json();
  expect(JSON.stringify(pub)).not.toContain(token);

  // The shop's checkout redeems it once, from its server.
  const redeemed = await admin('POST', `/campaigns/${slug}/redeem`, { token });
  expect(redeemed.grant.status).toBe('redeemed');
  await admin('POST', `/campaigns/${slug}/redeem`, { token }, 409);
  await ann.reload();
  await expect(ann.locator('#progress').locator('#rewards li')).toContainText('used');

  // The grants export says who won what and that it was used.
  const csv = await admin('GET', `/campaigns/${slug}/export.csv?of=grants`);
  const rows = csv.trim().split('\n');
  expect(rows[0]).toBe('grant_id,participant_id,code,user_id,reward,status,token,source,value_minor,currency,earned_at,expires_at');
  expect(rows.find((r) => r.includes(token))).toContain(',redeemed,');
  expect(rows).toHaveLength(3);
  expect(invariantViolations()).toEqual([]);
});
