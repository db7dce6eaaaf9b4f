// Shared by the end-to-end specs: the demo tenant's keys and what the edge
// stored, read through the admin API and straight from local D1.
import { execFileSync } from 'node:child_process';
import { EDGE } from '../../playwright.config.mjs';

export { EDGE };
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
