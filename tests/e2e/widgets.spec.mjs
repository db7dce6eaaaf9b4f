// The widgets on the demo site's thank-you page, in Chromium against
// `wrangler dev`: real numbers, copy, the period switch, updates after a
// confirmed referral; screenshots compared with a tolerance (kept in
// docs/screenshots/); an axe-core scan.
import { test, expect } from '@playwright/test';
import { EDGE, PK, SK, uuid } from './helpers.mjs';
import { createRequire } from 'node:module';

const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

async function ready(page) {
  await page.waitForFunction(() => window.refloop && window.refloop.__refloop === true);
}
const shadow = (page, id, sel) => page.locator(`#${id}`).locator(sel);

async function joined(page) {
  await page.goto('/thanks.html');
  await ready(page);
  await page.evaluate(() => { window.refloop.identify(`u-${Math.random()}`, { name: 'Widget Tester' }); window.refloop.track('signup'); return window.refloop.flush(); });
  const me = await page.evaluate(() => window.refloop.me());
  await page.evaluate(() => document.dispatchEvent(new Event('visibilitychange')));
  await expect(shadow(page, 'stats', '#points')).toHaveText(String(me.points));
  return me;
}

test('the four widgets show the participant\'s numbers and update after a confirmed referral', async ({ page, request, context }) => {
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  const me = await joined(page);
  expect(me.points).toBe(10);
  await expect(shadow(page, 'stats', '#confirmed')).toHaveText('0');
  await expect(shadow(page, 'progress', '#next')).toContainText('0 of 1');
  const link = `${EDGE}/r/${me.code}`;
  await expect(shadow(page, 'share', '#link')).toHaveValue(link);
  await expect(shadow(page, 'share', 'img')).toHaveAttribute('src', `${EDGE}/v1/qr.svg?data=${encodeURIComponent(link)}`);
  await expect(shadow(page, 'share', 'a[aria-label="Share on WhatsApp"]')).toHaveAttribute('href', new RegExp(encodeURIComponent(link)));
  await expect(shadow(page, 'leaderboard', '#you')).toHaveText(/^You are #\d+$/);

  // Copy: the link is on the clipboard and a live region says so.
  await shadow(page, 'share', '#copy').click();
  await expect(shadow(page, 'share', '#said')).toHaveText('Copied!');
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(link);

  // The period switch.
  await shadow(page, 'leaderboard', 'button[data-p="week"]').click();
  await expect(shadow(page, 'leaderboard', 'button[data-p="week"]')).toHaveAttribute('aria-pressed', 'true');
  await expect(shadow(page, 'leaderboard', 'li.me')).toContainText('Widget T.');

  // A friend signs up with the link and buys (the trusted conversion).
  const friend = `friend-${uuid()}`;
  await request.post(`${EDGE}/v1/batch`, { data: { key: PK, events: [{ id: uuid(), type: 'track', event: 'signup', anonymous_id: friend, attribution: { ref: me.code } }] } });
  await request.post(`${EDGE}/v1/server/events`, { headers: { Authorization: `Bearer ${SK}` }, data: { events: [{ id: uuid(), type: 'track', event: 'purchase', anonymous_id: friend }] } });
  // The page comes back into view: the widgets refresh.
  await page.evaluate(() => document.dispatchEvent(new Event('visibilitychange')));
  await expect(shadow(page, 'stats', '#confirmed')).toHaveText('1');
  await expect(shadow(page, 'stats', '#points')).toHaveText('160');
  await expect(shadow(page, 'progress', '#rewards')).toContainText('100 bonus points');
  await expect(shadow(page, 'progress', '#rewards')).toContainText('approved');
  await expect(shadow(page, 'progress', '#next')).toContainText('1 of 3');
});

test('a calm message when the edge cannot be reached, and French on request', async ({ page }) => {
  await page.route(`${EDGE}/v1/campaigns/**`, (r) => r.abort('connectionrefused'));
  await page.goto('/thanks.html?lang=fr');
  await ready(page);
  await expect(shadow(page, 'stats', 'p')).toHaveText(/courte pause/);
  await expect(shadow(page, 'leaderboard', 'p')).toHaveText(/courte pause/);
});

test('no serious or critical accessibility violation (axe-core)', async ({ page }) => {
  await joined(page);
  for (const theme of ['light', 'dark']) {
    await page.goto(`/thanks.html?theme=${theme}`);
    await ready(page);
    await expect(page.locator('[data-refloop-widget][data-state="ready"]')).toHaveCount(4);
    await page.addScriptTag({ path: AXE });
    const violations = await page.evaluate(async () => {
      const r = await window.axe.run(document.querySelectorAll('[data-refloop-widget]'), { resultTypes: ['violations'] });
      return r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id}: ${v.help}`);
    });
    expect(violations, theme).toEqual([]);
  }
});

// Fixed numbers (the edge's answers replaced) so the pictures are stable.
const ME = {
  campaign: 'launch', code: 'LUMEN234', link: '/r/LUMEN234', clicks: 42, referrals: { pending: 2, confirmed: 3, rejected: 0, expired: 0 },
  points: 310, rank: 4, tier: 'PRO', mode: 'code', share_text: 'I joined the launch waitlist. Skip the queue with my link:',
  milestones: [], next_milestone: { id: 'elite', name: 'ELITE', at: 5, remaining: 2 },
  rewards: [{ reward: 'bonus', name: '100 bonus points', status: 'approved' }, { reward: 'credit', name: '$10 credit', status: 'pending_review' }],
  quest: null,
};
const BOARD = {
  campaign: 'launch', period: 'all', score_by: 'points',
  top: [['Ada L.', 520], ['Grace H.', 480], ['Linus T.', 350], ['You', 310], ['Ken T.', 120]].map(([name, score], i) => ({ rank: i + 1, name, score, code: i === 3 ? 'LUMEN234' : `CODE${i}ABC` })),
  around: [{ rank: 4, name: 'You', score: 310, code: 'LUMEN234', you: true }],
};

for (const theme of ['light', 'dark']) {
  for (const width of [320, 1280]) {
    test(`screenshots: ${theme}, ${width} px`, async ({ page }) => {
      await page.setViewportSize({ width, height: 900 });
      await page.route(`${EDGE}/v1/campaigns/launch/me*`, (r) => r.fulfill({ json: ME, headers: { 'Access-Control-Allow-Origin': '*' } }));
      await page.route(`${EDGE}/v1/campaigns/launch/leaderboard*`, (r) => r.fulfill({ json: BOARD, headers: { 'Access-Control-Allow-Origin': '*' } }));
      await page.goto(`/thanks.html?theme=${theme}`);
      await ready(page);
      await expect(page.locator('[data-refloop-widget][data-state="ready"]')).toHaveCount(4);
      await expect(page.locator('#share').locator('img')).toHaveJSProperty('complete', true);
      for (const id of ['share', 'leaderboard', 'progress', 'stats']) {
        await expect(page.locator(`#${id}`)).toHaveScreenshot(`${id}-${theme}-${width}.png`, { maxDiffPixelRatio: 0.02 });
      }
    });
  }
}

test('the widget chunk is fetched only when a widget is mounted', async ({ page }) => {
  const chunks = [];
  page.on('request', (r) => { if (r.url().endsWith('/v1/widgets.js')) chunks.push(r.url()); });
  await page.goto('/');
  await ready(page);
  await page.evaluate(() => window.refloop.track('looked'));
  await page.waitForTimeout(300);
  expect(chunks).toEqual([]);
  await page.evaluate(() => {
    const el = document.createElement('div');
    el.id = 'late';
    document.body.append(el);
    return window.refloop.mount(el, 'stats', { campaign: 'launch' });
  });
  expect(chunks).toEqual([`${EDGE}/v1/widgets.js`]);
  // The space was kept before the chunk arrived.
  expect(await page.evaluate(() => document.getElementById('late').style.minHeight)).toBe('120px');
});

test('four widgets ask me() once between them', async ({ page }) => {
  const asks = [];
  page.on('request', (r) => { if (/\/v1\/campaigns\/[^/]+\/me\?/.test(r.url())) asks.push(r.url()); });
  await joined(page);
  // Nothing in flight any more (a me() still pending would be shared, not asked again).
  await page.waitForLoadState('networkidle');
  asks.length = 0;
  // All four come back into view at once: one me() for the page.
  await page.evaluate(() => document.dispatchEvent(new Event('visibilitychange')));
  await page.waitForTimeout(1_500);
  expect(asks).toHaveLength(1);
});

test('the invite-mode share widget keeps its invitation across refreshes', async ({ page }) => {
  const minted = [];
  page.on('request', (r) => { if (r.url().endsWith('/v1/invitations')) minted.push(r.url()); });
  await page.goto('/invite.html');
  await ready(page);
  await page.click('#join');
  await expect(page.locator('#out')).toContainText('You are in');
  const link = await page.evaluate(async () => {
    const host = document.createElement('div');
    host.id = 'share';
    document.body.append(host);
    const widget = await window.refloop.mount(host, 'share');
    for (let i = 0; i < 3; i++) await widget.refresh();
    return host.shadowRoot.querySelector('#link').value;
  });
  expect(link).toContain('invite=');
  expect(minted).toHaveLength(1);
});
