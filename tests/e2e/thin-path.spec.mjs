// The walking skeleton, end to end: script tag → SDK → beacon / fetch → edge → D1.
import { test, expect } from '@playwright/test';
import { createServer } from 'node:http';
import { EDGE, PK, d1RowsWithId, storedEvents, uuid, waitForEvents } from './helpers.mjs';

async function openDemo(page) {
  await page.goto('/');
  await page.waitForFunction(() => window.refloop && window.refloop.__refloop === true);
}

test('an event tracked on the demo page reaches D1 exactly once by beacon when the page is left', async ({ page, request }) => {
  // Record what the SDK hands to sendBeacon (the real one still sends it), in
  // sessionStorage so the next page can tell.
  await page.addInitScript(() => {
    const send = navigator.sendBeacon.bind(navigator);
    navigator.sendBeacon = (url, body) => {
      const seen = JSON.parse(sessionStorage.getItem('beacons') || '[]');
      seen.push({ url, kind: typeof body, body: String(body) });
      sessionStorage.setItem('beacons', JSON.stringify(seen));
      return send(url, body);
    };
  });
  await openDemo(page);
  const id = await page.evaluate(() => window.refloop.track('hello', { from: 'e2e' }));
  expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  expect(await page.evaluate(() => window.refloop.anonymousId())).toBeTruthy();

  // Leaving the page hides it: the SDK hands its queue to sendBeacon.
  await page.click('#next');
  await page.waitForURL('**/next.html');

  const events = await waitForEvents(request, (es) => es.some((e) => e.id === id));
  const mine = events.filter((e) => e.id === id);
  expect(mine).toHaveLength(1);
  expect(mine[0]).toMatchObject({ type: 'track', event: 'hello', properties: { from: 'e2e' } });
  expect(d1RowsWithId(id)).toHaveLength(1);
  // The calls queued by the stub before the SDK loaded (page()) were replayed.
  expect(events.some((e) => e.type === 'page')).toBe(true);
  // It went by beacon, as a string body: the browser sends that as text/plain.
  const beacons = await page.evaluate(() => JSON.parse(sessionStorage.getItem('beacons') || '[]'));
  const carried = beacons.filter((b) => b.url === `${EDGE}/v1/batch` && b.body.includes(id));
  expect(carried).toHaveLength(1);
  expect(carried[0].kind).toBe('string');
});

test('flush() delivers with fetch and resolves once the edge has stored the event', async ({ page, request }) => {
  await openDemo(page);
  const [response, id] = await Promise.all([
    page.waitForResponse((r) => r.url() === `${EDGE}/v1/batch` && r.request().method() === 'POST'),
    page.evaluate(async () => {
      const id = window.refloop.track('hello', { via: 'flush' });
      await window.refloop.flush();
      return id;
    }),
  ]);
  expect(response.status()).toBe(202);
  expect(response.request().resourceType()).toBe('fetch');
  const events = await storedEvents(request);
  expect(events.filter((e) => e.id === id)).toHaveLength(1);
});

test('the same batch posted twice is stored once', async ({ request }) => {
  const id = uuid();
  const batch = {
    key: PK,
    sent_at: new Date().toISOString(),
    events: [{ id, type: 'track', event: 'hello', anonymous_id: 'anon-twice', timestamp: new Date().toISOString() }],
  };
  const headers = { 'Content-Type': 'text/plain', Origin: 'http://127.0.0.1:8081' };
  const first = await request.post(`${EDGE}/v1/batch`, { headers, data: JSON.stringify(batch) });
  expect(first.status()).toBe(202);
  expect(await first.json()).toEqual({ accepted: 1, duplicates: 0, rejected: [] });
  const second = await request.post(`${EDGE}/v1/batch`, { headers, data: JSON.stringify(batch) });
  expect(second.status()).toBe(202);
  expect(await second.json()).toEqual({ accepted: 0, duplicates: 1, rejected: [] });
  expect(d1RowsWithId(id)).toHaveLength(1);
});

test('a wrong key gets 401 and a foreign origin 403, and nothing is stored', async ({ request }) => {
  const id = uuid();
  const events = [{ id, type: 'track', event: 'hello', anonymous_id: 'anon-refused' }];
  const wrongKey = await request.post(`${EDGE}/v1/batch`, {
    headers: { 'Content-Type': 'text/plain', Origin: 'http://127.0.0.1:8081' },
    data: JSON.stringify({ key: 'pk_not_a_real_key', events }),
  });
  expect(wrongKey.status()).toBe(401);
  expect((await wrongKey.json()).error.code).toBe('unknown_key');
  const foreign = await request.post(`${EDGE}/v1/batch`, {
    headers: { 'Content-Type': 'text/plain', Origin: 'https://evil.example' },
    data: JSON.stringify({ key: PK, events }),
  });
  expect(foreign.status()).toBe(403);
  expect((await foreign.json()).error.code).toBe('origin_not_allowed');
  expect(d1RowsWithId(id)).toHaveLength(0);
  expect((await storedEvents(request)).some((e) => e.id === id)).toBe(false);
});

test('CORS: a preflight from an allowed origin passes, from a foreign one it does not', async ({ request }) => {
  const ok = await request.fetch(`${EDGE}/v1/batch`, {
    method: 'OPTIONS',
    headers: { Origin: 'http://127.0.0.1:8081', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type' },
  });
  expect(ok.status()).toBe(204);
  expect(ok.headers()['access-control-allow-origin']).toBe('http://127.0.0.1:8081');
  expect(ok.headers()['access-control-allow-methods']).toContain('POST');
  const foreign = await request.fetch(`${EDGE}/v1/batch`, {
    method: 'OPTIONS',
    headers: { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'POST' },
  });
  expect(foreign.status()).toBe(403);
});

test('a page on a foreign origin is refused by the edge, in a real browser', async ({ page }) => {
  // A real page on an origin no site allows (loopback, since Chromium keeps
  // public pages from calling loopback addresses at all).
  const server = createServer((_, res) => res.end('<!doctype html><title>foreign</title>'));
  await new Promise((resolve) => server.listen(0, '127.0.0.2', resolve));
  await page.goto(`http://127.0.0.2:${server.address().port}/`);
  const id = crypto.randomUUID();
  const status = await page.evaluate(async ([edge, key, id]) => {
    const r = await fetch(`${edge}/v1/batch`, {
      method: 'POST',
      headers: { 'Content-Type': 'text/plain' },
      body: JSON.stringify({ key, events: [{ id, type: 'track', event: 'x', anonymous_id: 'a' }] }),
    });
    return r.status;
  }, [EDGE, PK, id]);
  server.close();
  expect(status).toBe(403);
  expect(d1RowsWithId(id)).toHaveLength(0);
});

test('the admin listing needs the secret key', async ({ request }) => {
  const none = await request.get(`${EDGE}/v1/admin/events?limit=5`);
  expect(none.status()).toBe(401);
  // A publishable key is refused as such: it can never read admin data.
  const publishable = await request.get(`${EDGE}/v1/admin/events?limit=5`, { headers: { Authorization: `Bearer ${PK}` } });
  expect(publishable.status()).toBe(403);
  expect((await publishable.json()).error.code).toBe('forbidden');
  const bad = await request.get(`${EDGE}/v1/admin/events?limit=0`, { headers: { Authorization: 'Bearer sk_demo_refloop_secret' } });
  expect(bad.status()).toBe(400);
  expect((await bad.json()).error.code).toBe('invalid_parameter');
});
