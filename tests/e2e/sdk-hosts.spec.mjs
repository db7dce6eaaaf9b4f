// The SDK on real multi-label host names (Chromium resolves *.refloop.test
// to this machine): the identity cookie on the registrable domain found by
// probing, shared by a site's subdomains, and `data-cookie-domain` when the
// site names it; and the queue takeover of browsers without Web Locks, by
// the lease in localStorage.
import { test, expect } from '@playwright/test';
import config from '../../playwright.config.mjs';
import { EDGE, WWW, d1 } from './helpers.mjs';

const PORT = new URL(WWW).port;
const host = (name) => `http://${name}.refloop.test:${PORT}`;
test.use({
  launchOptions: {
    ...config.use.launchOptions,
    args: [...config.use.launchOptions.args, '--host-resolver-rules=MAP *.refloop.test 127.0.0.1'],
  },
});

const ready = (page) => page.waitForFunction(() => window.refloop && window.refloop.__refloop === true);

test('the identity cookie lives on the registrable domain, so a site\'s subdomains share one visitor', async ({ context }) => {
  const shop = await context.newPage();
  await shop.goto(`${host('shop')}/tagged.html`);
  await ready(shop);
  const id = await shop.evaluate(() => window.refloop.anonymousId());
  const cookie = (await context.cookies()).find((c) => c.name === 'refloop_aid');
  expect(cookie.domain).toBe('.refloop.test');
  expect(cookie.value).toBe(id);
  // Another subdomain of the site: a fresh localStorage, the same visitor.
  const blog = await context.newPage();
  await blog.goto(`${host('blog')}/tagged.html`);
  await ready(blog);
  expect(await blog.evaluate(() => window.refloop.anonymousId())).toBe(id);
});

test('data-cookie-domain names the cookie\'s domain', async ({ context }) => {
  const page = await context.newPage();
  await page.goto(`${host('www.shop')}/tagged.html?tag-data-cookie-domain=shop.refloop.test`);
  await ready(page);
  const cookie = (await context.cookies()).find((c) => c.name === 'refloop_aid');
  expect(cookie.domain).toBe('.shop.refloop.test');
});

test('without Web Locks, a closed tab\'s queue is taken over under the lease', async ({ context }) => {
  test.setTimeout(60_000);
  // A browser without navigator.locks; every lease the SDK writes is noted.
  await context.addInitScript(() => {
    Object.defineProperty(Navigator.prototype, 'locks', { get: () => undefined, configurable: true });
    const set = Storage.prototype.setItem;
    window.__leases = [];
    Storage.prototype.setItem = function (k, v) {
      if (k.startsWith('refloop.lease:')) window.__leases.push(v);
      return set.call(this, k, v);
    };
  });
  let blocked = true;
  await context.route(`${EDGE}/v1/batch`, (route) => (blocked ? route.abort('internetdisconnected') : route.continue()));
  const a = await context.newPage();
  const b = await context.newPage();
  for (const p of [a, b]) { await p.goto(`${WWW}/tagged.html`); await ready(p); }
  expect(await a.evaluate(() => navigator.locks)).toBeUndefined();
  const ids = await b.evaluate(() => Array.from({ length: 5 }, (_, i) => window.refloop.track('leased', { i })));
  await b.evaluate(() => window.refloop.flush().catch(() => 0));
  await b.close({ runBeforeUnload: true });
  blocked = false;
  // The remaining tab's next look (a reload starts one at once) takes the queue.
  await a.reload();
  await ready(a);
  await expect.poll(() => d1(`SELECT count(*) AS n FROM events WHERE event_id IN (${ids.map((i) => `'${i}'`).join(',')})`)[0].n, { timeout: 15_000 }).toBe(5);
  const leases = await a.evaluate(() => window.__leases);
  expect(leases.length).toBeGreaterThan(0);
  expect(JSON.parse(leases[0])).toEqual({ tab: expect.any(String), until: expect.any(Number) });
  // Released once the queue was taken.
  expect(await a.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('refloop.lease:')))).toEqual([]);
});
