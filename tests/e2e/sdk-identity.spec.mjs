// Identity, attribution and consent in Chromium against `wrangler dev`.
import { test, expect } from '@playwright/test';
import { EDGE, PK, SK, WWW, d1, uuid } from './helpers.mjs';

async function ready(page) {
  await page.waitForFunction(() => window.refloop && window.refloop.__refloop === true);
}

const admin = (request, method, path, data) =>
  request.fetch(`${EDGE}${path}`, { method, data, headers: { Authorization: `Bearer ${SK}` } });

test('first touch and last touch across two referral-link clicks; the ref leaves the address bar; the signup goes to the last', async ({ page, request }) => {
  // A campaign of the demo tenant whose links land on the test's demo site.
  const slug = `touch-${uuid().slice(0, 8)}`;
  const config = { name: 'Touch', landing_url: `${WWW}/`, quest: { steps: [] }, fraud: { flag_shared_ip: false } };
  expect((await admin(request, 'POST', '/v1/admin/campaigns', { slug, config })).status()).toBe(201);
  const codes = [];
  for (const who of ['ann', 'ben']) {
    const anon = `${who}-${uuid()}`;
    await request.post(`${EDGE}/v1/batch`, { data: { key: PK, events: [{ id: uuid(), type: 'track', event: 'signup', anonymous_id: anon }] } });
    codes.push((await (await request.get(`${EDGE}/v1/campaigns/${slug}/me?key=${PK}&anonymous_id=${anon}`)).json()).code);
  }
  const [ann, ben] = codes;
  try {
    await page.goto(`${EDGE}/r/${ann}?`);
    await ready(page);
    await expect.poll(() => page.url()).toBe(`${WWW}/`);
    await page.goto(`${EDGE}/r/${ben}`);
    await ready(page);
    await expect.poll(() => page.url()).toBe(`${WWW}/`);
    const touches = await page.evaluate(() => window.refloop.attribution());
    expect(touches.first.ref).toBe(ann);
    expect(touches.last.ref).toBe(ben);
    expect(touches.first.landing_url).toContain(`ref=${ann}`);
    expect(Date.parse(touches.last.at)).toBeGreaterThanOrEqual(Date.parse(touches.first.at));
    await page.evaluate(() => { window.refloop.track('signup'); return window.refloop.flush(); });
    const me = async (code) => (await (await request.get(`${EDGE}/v1/campaigns/${slug}/participants/${code}?key=${PK}`)).json()).referrals.confirmed;
    expect(await me(ben)).toBe(1);
    expect(await me(ann)).toBe(0);
  } finally {
    await admin(request, 'POST', `/v1/admin/campaigns/${slug}/status`, { status: 'ended' });
  }
});

test('the anonymous id lives in a cookie and in localStorage: either one restores the other', async ({ page, context }) => {
  await page.goto('/');
  await ready(page);
  const id = await page.evaluate(() => window.refloop.anonymousId());
  expect((await context.cookies()).find((c) => c.name === 'refloop_aid')?.value).toBe(id);
  await page.evaluate(() => localStorage.clear());
  await page.reload();
  await ready(page);
  expect(await page.evaluate(() => window.refloop.anonymousId())).toBe(id);
  await context.clearCookies();
  await page.reload();
  await ready(page);
  expect(await page.evaluate(() => window.refloop.anonymousId())).toBe(id);
  expect((await context.cookies()).find((c) => c.name === 'refloop_aid')?.value).toBe(id);
  await page.evaluate(() => window.refloop.reset());
  const fresh = await page.evaluate(() => window.refloop.anonymousId());
  expect(fresh).not.toBe(id);
  await page.reload();
  await ready(page);
  expect(await page.evaluate(() => window.refloop.anonymousId())).toBe(fresh);
});

test('an email trait leaves the browser only as the SHA-256 of its normal form', async ({ page }) => {
  await page.goto('/');
  await ready(page);
  const bodies = [];
  page.on('request', (r) => { if (r.url() === `${EDGE}/v1/batch`) bodies.push(r.postData()); });
  const id = await page.evaluate(async () => {
    const id = window.refloop.identify('user-1', { email: ' J.Doe+news@GMail.com ', plan: 'pro' });
    await new Promise((r) => setTimeout(r, 50));
    await window.refloop.flush();
    return id;
  });
  expect(bodies.join('')).not.toContain('Doe');
  const [row] = d1(`SELECT payload FROM events WHERE event_id = '${id}'`);
  const traits = JSON.parse(row.payload).traits;
  // sha256("jdoe@gmail.com"), as the core's test computes it.
  expect(traits).toEqual({ plan: 'pro', email_domain: 'gmail.com' });
  expect(bodies.join('')).toContain('910789803908d9ab8a57b28ff0af7ab81b9607356aef6f18d8499eb1489ed8ab');
});

test('consent pending: no request and nothing stored until optIn(); optOut() forgets', async ({ page, context }) => {
  const requests = [];
  page.on('request', (r) => { if (r.url().startsWith(`${EDGE}/v1/`) && !r.url().endsWith('.js') && !r.url().endsWith('.wasm')) requests.push(r.url()); });
  await page.goto('/consent.html?ref=ABCD2345');
  await ready(page);
  const ids = await page.evaluate(() => [window.refloop.track('viewed'), window.refloop.track('clicked')]);
  await page.evaluate(() => window.refloop.flush());
  await page.waitForTimeout(500);
  expect(requests).toEqual([]);
  expect(await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('refloop')))).toEqual([]);
  expect((await context.cookies()).filter((c) => c.name.startsWith('refloop'))).toEqual([]);
  await page.click('#accept');
  await expect.poll(() => d1(`SELECT count(*) AS n FROM events WHERE event_id IN ('${ids[0]}', '${ids[1]}')`)[0].n).toBe(2);
  expect(await page.evaluate(() => window.refloop.attribution().last.ref)).toBe('ABCD2345');
  expect(await page.evaluate(() => localStorage.getItem('refloop.aid'))).toBeTruthy();
  // The choice is remembered on the next page; optOut forgets everything.
  await page.reload();
  await ready(page);
  await page.click('#decline');
  expect(await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('refloop') && k !== 'refloop.consent'))).toEqual([]);
  expect(await page.evaluate(() => window.refloop.track('after-opt-out'))).toBeUndefined();
});

test("optOut() is remembered on a page whose tag asks for no consent, and mount() never throws into the page", async ({ page }) => {
  const requests = [];
  page.on('request', (r) => { if (r.url().startsWith(`${EDGE}/v1/batch`)) requests.push(r.url()); });
  await page.goto('/');
  await ready(page);
  await page.evaluate(() => window.refloop.optOut());
  // The demo page's tag has no data-consent: the choice still holds there.
  await page.reload();
  await ready(page);
  expect(await page.evaluate(() => window.refloop.track('after-opt-out'))).toBeUndefined();
  await page.evaluate(() => window.refloop.flush());
  await page.waitForTimeout(300);
  expect(requests).toEqual([]);
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const mounted = await page.evaluate(async () => [
    await window.refloop.mount('#nowhere', 'stats'),
    await window.refloop.mount(document.body, 'no-such-widget'),
    await window.refloop.mount(document.body, 'stats'),
  ]);
  expect(mounted).toEqual([null, null, null]);
  expect(errors).toEqual([]);
  await page.evaluate(() => { localStorage.clear(); });
});

test("identify with the site's userHash: the user's second device is the same participant, and me() finds them by user id", async ({ browser, request }) => {
  const user = `u-${uuid()}`;
  const identity = await (await admin(request, 'GET', `/v1/admin/identity?user_id=${user}`)).json();
  const userHash = identity.example.user_hash;
  const codes = [];
  for (const device of [0, 1]) {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${WWW}/?campaign=launch`);
    await ready(page);
    await page.evaluate(async ({ user, userHash, device }) => {
      window.refloop.identify(user, { name: 'Two Devices' }, device ? { userHash } : undefined);
      window.refloop.track('signup');
      await new Promise((r) => setTimeout(r, 100));
      await window.refloop.flush();
    }, { user, userHash, device });
    await expect.poll(async () => (await page.evaluate(() => window.refloop.me('launch').catch(() => null)))?.code ?? null).not.toBeNull();
    codes.push((await page.evaluate(() => window.refloop.me('launch'))).code);
    await context.close();
  }
  // The first device joined; the second, signed, is the same person.
  expect(codes[1]).toBe(codes[0]);
});

test('the user id survives a reload (reset() forgets it), and a reload is no new touch', async ({ page }) => {
  await page.goto('/?ref=KEEPME22&utm_source=news');
  await ready(page);
  expect(await page.evaluate(() => window.refloop.attribution().last.ref)).toBe('KEEPME22');
  await page.evaluate(() => window.refloop.identify('user-kept'));
  // The address bar still says utm_source=news: reloading it is the same visit.
  await page.reload();
  await ready(page);
  expect(await page.evaluate(() => window.refloop.attribution().last.ref)).toBe('KEEPME22');
  const id = await page.evaluate(async () => { const id = window.refloop.track('after-reload'); await window.refloop.flush(); return id; });
  expect(d1(`SELECT user_id FROM events WHERE event_id = '${id}'`)[0].user_id).toBe('user-kept');
  await page.evaluate(() => window.refloop.reset());
  await page.reload();
  await ready(page);
  const other = await page.evaluate(async () => { const id = window.refloop.track('after-reset'); await window.refloop.flush(); return id; });
  expect(d1(`SELECT user_id FROM events WHERE event_id = '${other}'`)[0].user_id).toBeNull();
  await page.evaluate(() => localStorage.clear());
});

test('single-page navigation is a page view', async ({ page }) => {
  await page.goto('/');
  await ready(page);
  const ids = await page.evaluate(async () => {
    const before = window.refloop.queuedCount();
    history.pushState({}, '', '/pricing');
    history.replaceState({}, '', '/pricing?tab=2');
    return [before, window.refloop.queuedCount()];
  });
  expect(ids[1] - ids[0]).toBe(2);
});

test('touches expire after data-attribution-days; data-attribution="first-touch" sends the first ref', async ({ page }) => {
  // The demo site's page whose tag says first-touch, 30 days.
  await page.goto(`${WWW}/attribution.html?ref=FIRST222`);
  await ready(page);
  await page.goto(`${WWW}/attribution.html?ref=LAST3333`);
  await ready(page);
  const bodies = [];
  page.on('request', (r) => { if (r.url() === `${EDGE}/v1/batch`) bodies.push(r.postData()); });
  await page.evaluate(() => { window.refloop.track('signup'); return window.refloop.flush(); });
  const signup = JSON.parse(bodies.find((b) => b.includes('"signup"'))).events.find((e) => e.event === 'signup');
  expect(signup.attribution.ref).toBe('FIRST222');
  // 31 days later (the touches' times moved back), both have expired.
  await page.evaluate(() => {
    for (const k of ['refloop.t1', 'refloop.t2']) {
      const t = JSON.parse(localStorage.getItem(k));
      t.at = new Date(Date.now() - 31 * 864e5).toISOString();
      localStorage.setItem(k, JSON.stringify(t));
    }
  });
  expect(await page.evaluate(() => window.refloop.attribution())).toEqual({ first: null, last: null });
});

test('a touch keeps utm_* and click ids, and a referrer only from another site', async ({ page }) => {
  // The referring page is on another site.
  await page.goto(`/?utm_source=news&utm_campaign=spring&gclid=G1&fbclid=F2&other=x`, { referer: 'https://news.example/post' });
  await ready(page);
  const { first } = await page.evaluate(() => window.refloop.attribution());
  expect(first).toMatchObject({ utm_source: 'news', utm_campaign: 'spring', gclid: 'G1', fbclid: 'F2', referrer: 'https://news.example/post' });
  expect(first.other).toBeUndefined();
  expect(first.landing_url).toContain('utm_source=news');
  // The site linking to itself is no new touch.
  await page.goto('/?page=2', { referer: `${WWW}/next.html` });
  await ready(page);
  expect((await page.evaluate(() => window.refloop.attribution())).last).toEqual(first);
});

test('a signup carries where it came from, and the operator sees referrals by source', async ({ page, request, browser }) => {
  // A host on the demo campaign, and their link shared in a newsletter.
  const hostPage = await (await browser.newContext()).newPage();
  await hostPage.goto(`${WWW}/?campaign=launch`);
  await ready(hostPage);
  const code = await hostPage.evaluate(async () => { window.refloop.track('signup'); await window.refloop.flush(); return (await window.refloop.me('launch')).code; });
  await page.goto(`/?ref=${code}&utm_source=newsletter&utm_medium=email`);
  await ready(page);
  await page.evaluate(async () => { window.refloop.track('signup'); await window.refloop.flush(); });
  const res = await admin(request, 'GET', '/v1/admin/campaigns/launch/stats/sources');
  const { sources } = await res.json();
  expect(sources.find((s) => s.source === 'newsletter / email')?.referrals).toBeGreaterThanOrEqual(1);
});
