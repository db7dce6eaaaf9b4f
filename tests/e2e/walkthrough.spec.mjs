// The whole loop, the way an operator and two visitors live it: a campaign
// made in the console, a referral link opened in another browser, a signup,
// the quest completed by the shop's trusted conversion, and in the console
// the referral confirmed, the points in the ledger, the leaderboard, the
// reward grant moved from approved to fulfilled, and the charts drawn.
import { test, expect } from '@playwright/test';
import { EDGE, SK, WWW, consoleCreates, joinWaitlist, uuid } from './helpers.mjs';

test('console → referral link → signup → trusted purchase → confirmed, ledger, leaderboard, grant fulfilled', async ({ browser }) => {
  test.setTimeout(120_000);
  const slug = `walk-${uuid().slice(0, 6)}`;
  const operator = await browser.newPage({ viewport: { width: 1280, height: 900 } });

  // The operator signs in and makes the campaign from a preset.
  await consoleCreates(operator, SK, slug, 'waitlist');

  // The form shows the API's validation errors where they belong …
  await operator.fill('#f-milestones', JSON.stringify([{ id: 'first', confirmed_referrals: 1, reward: 'nope' }]));
  await operator.click('button:has-text("Save as version 2")');
  await expect(operator.locator('#e-milestones')).toContainText('milestones[0].reward');
  // … and saves a valid configuration as version 2.
  await operator.fill('#f-landing_url', `${WWW}/?campaign=${slug}`);
  await operator.fill('#f-quest', JSON.stringify({ steps: [{ event: 'signup' }, { event: 'purchase', trusted: true }], window_days: 14 }));
  await operator.fill('#f-milestones', JSON.stringify([{ id: 'first', name: 'FIRST', confirmed_referrals: 1, reward: 'bonus' }]));
  await operator.fill('#f-rewards', JSON.stringify([{ id: 'bonus', name: 'Bonus', kind: { type: 'points', points: 100 } }]));
  await operator.fill('#f-end_distributions', '[]');
  await operator.fill('#f-fraud', JSON.stringify({ flag_shared_ip: false }));
  await operator.click('button:has-text("Save as version 2")');
  await expect(operator.locator('h2:has-text("version 2")')).toBeVisible();
  await operator.click('button:has-text("Diff with current")');
  await expect(operator.locator('#diff .add').first()).toBeVisible();

  // A visitor joins the waitlist and gets their link from the share widget.
  const ann = await (await browser.newContext()).newPage();
  const link = await joinWaitlist(ann, slug, 'Ann Walker', `ann-${slug}@example.com`);
  await expect(link).toHaveValue(/\/r\/[A-Z2-9]{8}$/);
  const referralLink = await link.inputValue();
  const code = referralLink.slice(-8);

  // A friend opens the link in another browser, signs up and buys.
  const ben = await (await browser.newContext()).newPage();
  await ben.goto(referralLink);
  await ben.waitForURL(`${WWW}/?campaign=${slug}`);
  await joinWaitlist(ben, slug, 'Ben Friend', `ben-${slug}@example.com`, null);
  await ben.click('#buy');
  await expect(ben.locator('#bought')).toHaveText(/confirmed/);

  // The operator sees it all.
  await operator.goto(`${EDGE}/admin/#/c/${slug}/referrals`);
  await expect(operator.locator('td.status')).toHaveText(['confirmed']);
  await operator.goto(`${EDGE}/admin/#/c/${slug}/participants/${code}`);
  await operator.click(`a:has-text("${code}")`);
  // 10 for joining, 10 for the confirmed referral, 100 for the first milestone.
  await expect(operator.locator('h2').first()).toContainText('120 points');
  await expect(operator.locator('tbody tr')).toHaveCount(3);
  await operator.goto(`${EDGE}/admin/#/c/${slug}/leaderboard`);
  await operator.click('#snap');
  await expect(operator.locator('table').first().locator('tbody tr').first()).toContainText(code);
  await operator.goto(`${EDGE}/admin/#/c/${slug}/grants`);
  await expect(operator.locator('td.status')).toHaveText(['approved']);
  await operator.click('button[data-grant-to="fulfilled"]');
  await expect(operator.locator('td.status')).toHaveText(['fulfilled']);
  await expect(operator.locator('tbody td.mu').first()).toHaveText('earned → approved → fulfilled');
  // The widget on Ann's page moved too.
  await ann.reload();
  await expect(ann.locator('#stats').locator('#confirmed')).toHaveText('1');
  await expect(ann.locator('#leaderboard').locator('#you')).toHaveText('You are #1');

  // The charts draw something.
  await operator.goto(`${EDGE}/admin/#/c/${slug}/stats`);
  await expect(operator.locator('#funnel canvas')).toBeVisible();
  await expect(operator.locator('#trend canvas')).toBeVisible();
  await expect(operator.locator('#funnelText')).toContainText('1 clicks, 1 referred signups, 1 confirmed');
  const inked = await operator.evaluate(() => {
    const c = document.querySelector('#trend canvas');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
    return n;
  });
  expect(inked).toBeGreaterThan(1000);

  // Screenshots of the console, kept with the docs when asked for.
  if (process.env.REFLOOP_SCREENSHOTS) {
    for (const tab of ['config', 'participants', 'referrals', 'answers', 'grants', 'leaderboard', 'stats', 'program', 'webhooks']) {
      await operator.goto(`${EDGE}/admin/#/c/${slug}/${tab}`);
      await operator.waitForLoadState('networkidle');
      await operator.screenshot({ path: `docs/screenshots/console-${tab}.png`, fullPage: true });
    }
  }
});

test('the console answers why a referral did not count, replays a version, redeems a prize and ends the campaign', async ({ browser, request }) => {
  test.setTimeout(60_000);
  const { freshTenant, ev } = await import('./helpers.mjs');
  const t = await freshTenant(request);
  const config = { name: 'Prize draw', quest: { steps: [] }, fraud: { flag_shared_ip: false },
    point_rules: [{ id: 'joined', event: 'signup', to: 'self', points: 10 }],
    rewards: [{ id: 'coupon', name: '20% off', kind: { type: 'coupon', prefix: 'OFF' } }] };
  await t.json('POST', '/v1/admin/campaigns', { slug: 'draw', config }, 201);
  await t.json('PUT', '/v1/admin/campaigns/draw', { config: { ...config, point_rules: [{ id: 'joined', event: 'signup', to: 'self', points: 15 }] } });
  await t.send([ev('signup', 'host', { campaign: 'draw' }), ev('signup', 'lost', { attribution: { ref: 'NOSUCHCODE' }, campaign: 'draw' })]);
  const { participants } = await t.json('GET', '/v1/admin/campaigns/draw/participants');
  const host = participants.find((p) => p.anonymous_id === 'host');
  const given = await t.json('POST', `/v1/admin/campaigns/draw/participants/${host.id}/grants`, { reward: 'coupon', note: 'console test' }, 201);

  const operator = await browser.newPage();
  await operator.goto(`${EDGE}/admin/`);
  await operator.fill('#k', t.sk);
  await operator.click('button:has-text("Sign in")');
  await expect(operator.locator('h1:has-text("Campaigns")')).toBeVisible();
  await operator.goto(`${EDGE}/admin/#/c/draw/answers/lost`);
  await expect(operator.locator('td.status').first()).toHaveText('unknown_code');
  await operator.goto(`${EDGE}/admin/#/c/draw/program`);
  await expect(operator.locator('#check')).toContainText('Every score is its ledger sum');
  await operator.selectOption('#rv', '1');
  await operator.click('#preview');
  await expect(operator.locator('#replay')).toContainText('not applied');
  await operator.fill('#token', given.grant.token);
  await operator.click('#tcheck');
  await expect(operator.locator('#tout')).toContainText('valid: coupon');
  await operator.click('button:has-text("Redeem")');
  await expect(operator.locator('#tout')).toContainText('redeemed: coupon');
  await operator.click('button:has-text("Redeem")');
  await expect(operator.locator('#tout')).toContainText('redeemed already');
  operator.on('dialog', (d) => d.accept());
  await operator.click('#end');
  await expect(operator.locator('#ended')).toContainText('Ended:');
  expect((await t.json('GET', '/v1/admin/campaigns/draw')).status).toBe('ended');
});
