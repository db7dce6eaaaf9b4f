// Shared by the end-to-end specs: the demo tenant's keys and what the edge
// stored, read through the admin API and straight from local D1.
import { execFileSync } from 'node:child_process';
import { EDGE, WWW } from '../../playwright.config.mjs';

export { EDGE, WWW };
export const PK = 'pk_demo_refloop_public';
export const SK = 'sk_demo_refloop_secret';

/** Stored events, newest first, through `GET /v1/admin/events`. */
export async function storedEvents(request, limit = 1000) {
  const res = await request.get(`${EDGE}/v1/admin/events?limit=${limit}`, {
    headers: { Authorization: `Bearer ${SK}` },
  });
  if (res.status() !== 200) throw new Error(`admin events: ${res.status()} ${await res.text()}`);
  return (await res.json()).events;
}

/** Rows of the events table with this id, asked of the local D1 database itself. */
export function d1RowsWithId(eventId) {
  const out = execFileSync('wrangler', [
    'd1', 'execute', 'refloop', '--local', '--persist-to', '../.wrangler/test-state', '--json',
    '--command', `SELECT event_id FROM events WHERE event_id = '${eventId.replace(/'/g, "''")}'`,
  ], { cwd: new URL('../../edge', import.meta.url).pathname, env: { ...process.env, WRANGLER_SEND_METRICS: 'false' } });
  return JSON.parse(out.toString())[0].results;
}

/** Waits until `predicate(events)` holds, polling the admin API. */
export async function waitForEvents(request, predicate, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  let events = [];
  while (Date.now() < deadline) {
    events = await storedEvents(request);
    if (predicate(events)) return events;
    await new Promise((r) => setTimeout(r, 200));
  }
  return events;
}

export function uuid() {
  return crypto.randomUUID();
}

export const ROOT = 'rk_demo_refloop_root';

/** Rows of a query, asked of the test edge's local D1 database itself. */
export function d1(sql) {
  const out = execFileSync('wrangler', [
    'd1', 'execute', 'refloop', '--local', '--persist-to', '../.wrangler/test-state', '--json', '--command', sql,
  ], { cwd: new URL('../../edge', import.meta.url).pathname, env: { ...process.env, WRANGLER_SEND_METRICS: 'false' } });
  return JSON.parse(out.toString())[0].results;
}

/** What the root key's check says of the whole edge: every campaign's
 * invariants restated by its object from its own tables, and row counts of
 * the campaigns' tables and of the directory. Synchronous, like `d1`. */
export function edgeCheck() {
  const out = execFileSync('curl', ['-sf', '-H', `Authorization: Bearer ${ROOT}`, `${EDGE}/v1/admin/check`]);
  return JSON.parse(out.toString());
}

/** Row counts of every table an input could write (rate windows aside): the
 * directory's in D1 and every campaign object's, summed. */
export function rowCounts() {
  const { counts, directory } = edgeCheck();
  return { ...directory, ...counts };
}

/** The ledger invariants over every campaign: each score is its ledger's sum,
 * each confirmed count its counting referrals, each board score its ledger's. */
export function invariantViolations() {
  return edgeCheck().violations;
}

/** A tenant of its own (created with the root key), so a test sees only its data. */
export async function freshTenant(request, site = {}) {
  const res = await request.post(`${EDGE}/v1/admin/tenants`, {
    headers: { Authorization: `Bearer ${ROOT}` },
    data: { name: `t-${uuid().slice(0, 8)}`, site: { name: 'site', origins: ['http://127.0.0.1:8081'], ...site } },
  });
  if (res.status() !== 201) throw new Error(`tenant: ${res.status()} ${await res.text()}`);
  const body = await res.json();
  const { publishable_key: pk, secret_key: sk } = body.site;
  const api = (method, path, data) => request.fetch(`${EDGE}${path}`, {
    method, data, headers: { Authorization: `Bearer ${sk}` },
  });
  const json = async (method, path, data, status = 200) => {
    const res = await api(method, path, data);
    if (res.status() !== status) throw new Error(`${method} ${path}: ${res.status()} ${await res.text()}`);
    return res.json();
  };
  const send = async (events, extra = {}) => {
    const res = await request.post(`${EDGE}/v1/batch`, { data: { key: pk, events }, ...extra });
    return { status: res.status(), body: await res.json().catch(() => null), headers: res.headers() };
  };
  const server = async (events, extra = {}) => {
    const headers = { ...(extra.headers || {}), Authorization: `Bearer ${sk}` };
    const res = await request.post(`${EDGE}/v1/server/events`, { data: { events }, headers });
    return { status: res.status(), body: await res.json().catch(() => null) };
  };
  const me = async (campaign, anonymousId) => {
    const res = await request.get(`${EDGE}/v1/campaigns/${campaign}/me?key=${pk}&anonymous_id=${encodeURIComponent(anonymousId)}`);
    return res.status() === 200 ? res.json() : null;
  };
  return { pk, sk, api, json, send, server, me, tenant: body.tenant };
}

/** One event of the contract's shape. */
export function ev(event, anonymousId, extra = {}) {
  return { id: uuid(), type: 'track', event, anonymous_id: anonymousId, ...extra };
}

/** A visitor joins the demo site's waitlist of campaign `slug` and lands on
 * the thank-you page; their referral link, from the share widget. */
export async function joinWaitlist(page, slug, name, email, from = `${WWW}/?campaign=${slug}`) {
  if (from) await page.goto(from);
  await page.fill('#name', name);
  await page.fill('#email', email);
  await page.click('button:has-text("Join the waitlist")');
  await page.waitForURL(`**/thanks.html?campaign=${slug}`);
  const link = page.locator('#share').locator('#link');
  await link.waitFor();
  return link;
}

/** The operator signs in to the console and makes campaign `slug` from a
 * preset; resolves once its configuration form shows. */
export async function consoleCreates(operator, sk, slug, preset) {
  await operator.goto(`${EDGE}/admin/`);
  await operator.fill('#k', sk);
  await operator.click('button:has-text("Sign in")');
  await operator.fill('#slug', slug);
  await operator.selectOption('#preset', preset);
  await operator.click('button:has-text("Create")');
  await operator.locator('#cfg').waitFor();
}
