// Every `data-*` attribute of the script tag the README promises, in Chromium
// against `wrangler dev`: a page made for each (served at the demo site's
// origin, so the demo key's origin check passes), and what the SDK sends.
import { test, expect } from '@playwright/test';
import { WWW, d1 } from './helpers.mjs';

/** Opens the demo site's `tagged.html`, whose tag carries `attrs` (an object
 * of data-* attributes), with `query` after them. */
async function tagged(page, attrs, query = '') {
  const tag = Object.entries(attrs).map(([k, v]) => `tag-${k}=${encodeURIComponent(v)}`).join('&');
  await page.goto(`${WWW}/tagged.html?${[tag, query].filter(Boolean).join('&')}`);
  await page.waitForFunction(() => window.refloop && window.refloop.__refloop === true);
}

/** The batches the page posts, with their events. */
function batches(page) {
  const seen = [];
  page.on('request', (r) => {
    if (r.url().endsWith('/v1/batch') && r.method() === 'POST') seen.push(JSON.parse(r.postData() || '{}').events || []);
  });
  return seen;
}

test('data-batch-size sends a full batch at once; data-flush-ms holds a partial one', async ({ page }) => {
  const sent = batches(page);
  await tagged(page, { 'data-batch-size': '3', 'data-flush-ms': '60000' });
  await page.evaluate(() => { for (let i = 0; i < 3; i++) window.refloop.track('batched', { i }); });
  await expect.poll(() => sent.filter((b) => b.some((e) => e.event === 'batched')).length, { timeout: 5_000 }).toBe(1);
  expect(sent.find((b) => b.some((e) => e.event === 'batched')).filter((e) => e.event === 'batched')).toHaveLength(3);
  await page.evaluate(() => window.refloop.track('held'));
  await page.waitForTimeout(1_500);
  expect(sent.some((b) => b.some((e) => e.event === 'held'))).toBe(false);
});

test('data-flush-ms sends a partial batch after that long, without flush()', async ({ page }) => {
  const sent = batches(page);
  await tagged(page, { 'data-flush-ms': '300' });
  const id = await page.evaluate(() => window.refloop.track('timed'));
  await expect.poll(() => sent.some((b) => b.some((e) => e.id === id)), { timeout: 5_000 }).toBe(true);
  await expect.poll(() => d1(`SELECT count(*) AS n FROM events WHERE event_id = '${id}'`)[0].n).toBe(1);
});

test('data-ref-param and data-invite-param name the link parameters, which leave the address bar', async ({ page }) => {
  await tagged(page, { 'data-ref-param': 'via', 'data-invite-param': 'inv' }, 'via=VIACODE22&inv=INVTOKEN9&x=1');
  const last = await page.evaluate(() => window.refloop.attribution().last);
  expect(last).toMatchObject({ ref: 'VIACODE22', invite: 'INVTOKEN9' });
  const left = new URL(page.url()).searchParams;
  expect([left.get('via'), left.get('inv'), left.get('x')]).toEqual([null, null, '1']);
});

test('data-plain-email sends the email as given; without it only its hash leaves', async ({ page, browser }) => {
  const sent = batches(page);
  await tagged(page, { 'data-plain-email': 'true' });
  await page.evaluate(async () => { window.refloop.identify('plain-user', { email: 'Plain@Example.com' }); await window.refloop.flush(); });
  const identify = sent.flat().find((e) => e.type === 'identify');
  expect(identify.traits.email).toBe('Plain@Example.com');
  const other = await (await browser.newContext()).newPage();
  const hashed = batches(other);
  await tagged(other, {});
  await other.evaluate(async () => { window.refloop.identify('hashed-user', { email: 'Plain@Example.com' }); await window.refloop.flush(); });
  const traits = hashed.flat().find((e) => e.type === 'identify').traits;
  expect(traits.email).toBeUndefined();
  expect(traits.email_sha256).toMatch(/^[0-9a-f]{64}$/);
});

test('data-api sends to another edge address than the script came from', async ({ page }) => {
  const other = 'http://127.0.0.1:9191';
  const got = [];
  await page.route(`${other}/v1/batch`, async (route) => {
    got.push(JSON.parse(route.request().postData() || '{}'));
    await route.fulfill({ status: 202, contentType: 'application/json', headers: { 'Access-Control-Allow-Origin': WWW }, body: '{"accepted":1,"duplicates":0,"rejected":[]}' });
  });
  await tagged(page, { 'data-api': `${other}/` });
  await page.evaluate(async () => { window.refloop.track('elsewhere'); await window.refloop.flush(); });
  expect(got.flatMap((b) => b.events).some((e) => e.event === 'elsewhere')).toBe(true);
});
