// Seeds the demo campaign `launch` with a believable month: about 2,000
// participants and 6,000 events over the last 30 days, through the edge's own
// API (so every point is in the ledger and every invariant holds) as the
// site's server imports history (trusted server events keep their time; a
// browser's are stamped with the server's), plus the
// referral-link clicks, through the links themselves (a click is stamped with
// the time it arrives, so they are all today's). Runs once: a campaign that
// already has participants is left alone.
//   node scripts/seed-demo.mjs http://127.0.0.1:8787 .wrangler/dev-state
import { randomUUID } from 'node:crypto';

const [edge = 'http://127.0.0.1:8787'] = process.argv.slice(2);
const PK = 'pk_demo_refloop_public';
const SK = 'sk_demo_refloop_secret';
const DAY = 86_400_000;
const now = Date.now();
const admin = { Authorization: `Bearer ${SK}`, 'Content-Type': 'application/json' };

let seed = 7;
const rand = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
const pick = (xs) => xs[Math.floor(rand() * xs.length)];
// A moment `upTo` ms after `at`, but before now (spread, not piled on today).
const after = (at, upTo) => at + Math.floor(rand() * Math.max(1000, Math.min(upTo, now - 60_000 - at)));
const FIRST = ['Ada', 'Grace', 'Linus', 'Ken', 'Barbara', 'Edsger', 'Margaret', 'Alan', 'Radia', 'Donald', 'Frances', 'John', 'Hedy', 'Tim', 'Annie', 'Guido', 'Sophie', 'Yukihiro', 'Karen', 'Niklaus'];
const LAST = ['Lovelace', 'Hopper', 'Torvalds', 'Thompson', 'Liskov', 'Dijkstra', 'Hamilton', 'Turing', 'Perlman', 'Knuth', 'Allen', 'Backus', 'Lamarr', 'Berners-Lee', 'Easley', 'van Rossum', 'Wilson', 'Matsumoto', 'Jones', 'Wirth'];

async function post(path, body, headers = { 'Content-Type': 'application/json' }) {
  for (let attempt = 0; attempt < 8; attempt++) {
    const r = await fetch(`${edge}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
    if (r.ok) return r.json();
    if (r.status !== 503 && r.status !== 429) throw new Error(`${path}: ${r.status} ${await r.text()}`);
    await new Promise((res) => setTimeout(res, 500 * (attempt + 1)));
  }
  throw new Error(`${path}: still busy`);
}

async function sendAll(events, path, headers) {
  for (let i = 0; i < events.length; i += 100) {
    const chunk = events.slice(i, i + 100);
    await post(path, path === '/v1/batch' ? { key: PK, events: chunk } : { events: chunk }, headers);
  }
}

const funnel = await (await fetch(`${edge}/v1/admin/campaigns/launch/stats/funnel`, { headers: admin })).json();
if (funnel.participants >= 500) {
  console.log(`demo data: already seeded (${funnel.participants} participants)`);
  process.exit(0);
}
console.log('demo data: seeding a month of the launch campaign (about a minute) …');

// Every event names the demo's campaign, as a page tagged data-campaign="launch" would.
const ev = (event, anon, at, extra = {}) => ({ id: randomUUID(), type: 'track', event, anonymous_id: anon, timestamp: new Date(at).toISOString(), campaign: 'launch', ...extra });
const person = (i, at) => ({ id: randomUUID(), type: 'identify', anonymous_id: `seed-${i}`, user_id: `seed-user-${i}`, timestamp: new Date(at).toISOString(), campaign: 'launch', traits: { name: `${pick(FIRST)} ${pick(LAST)}` } });

// 1. The first 500 people came on their own, over the month.
const organic = [];
for (let i = 0; i < 500; i++) {
  const at = now - 30 * DAY + Math.floor(rand() * 29 * DAY);
  organic.push({ i, at });
}
organic.sort((a, b) => a.at - b.at);
const first = organic.flatMap(({ i, at }) => [person(i, at), ev('signup', `seed-${i}`, at + 1000), ev('page', `seed-${i}`, at + 2000)]);
first.forEach((e) => { if (e.event === 'page') { e.type = 'page'; delete e.event; } });
await sendAll(first, '/v1/server/events', admin);

// Their codes, to refer with.
const { participants } = await (await fetch(`${edge}/v1/admin/campaigns/launch/participants?limit=500`, { headers: admin })).json();
const byAnon = new Map(participants.map((p) => [p.anonymous_id, p.code]));
const referrers = organic.map(({ i, at }) => ({ code: byAnon.get(`seed-${i}`), at })).filter((r) => r.code);

// 2. About 1,500 friends came by their links: a few referrers bring many
// (preferential attachment), most bring one or none.
const weights = referrers.map(() => 1);
const referred = [];
const clicks = [];
for (let j = 0; j < 1500; j++) {
  let k = Math.floor(rand() * weights.reduce((a, b) => a + b, 0));
  let r = 0;
  while (k >= weights[r]) { k -= weights[r]; r++; }
  weights[r] += 2;
  const ref = referrers[r];
  const at = after(ref.at, 10 * DAY);
  referred.push({ i: 1000 + j, at, code: ref.code });
  clicks.push({ code: ref.code, at: at - 60_000 });
  if (rand() < 0.8) clicks.push({ code: ref.code, at: at - Math.floor(rand() * 3 * DAY) });
}
referred.sort((a, b) => a.at - b.at);
const second = referred.flatMap(({ i, at, code }) => [person(i, at), ev('signup', `seed-${i}`, at + 1000, { attribution: { ref: code, at: new Date(at - 60_000).toISOString() } })]);
await sendAll(second, '/v1/server/events', admin);

// 3. Three in five of them bought within a few days: the trusted conversion.
const bought = referred.filter(() => rand() < 0.6).map(({ i, at }) => ev('purchase', `seed-${i}`, after(at + 2000, 4 * DAY)));
bought.sort((a, b) => Date.parse(a.timestamp) - Date.parse(b.timestamp));
await sendAll(bought, '/v1/server/events', admin);

// 4. Page views, to make the month's traffic.
const views = [];
for (let v = 0; v < 900; v++) {
  const { i, at } = pick(referred);
  views.push({ id: randomUUID(), type: 'page', campaign: 'launch', anonymous_id: `seed-${i}`, timestamp: new Date(after(at, 5 * DAY)).toISOString(), properties: { path: pick(['/', '/pricing', '/thanks.html']) } });
}
await sendAll(views, '/v1/server/events', admin);

// 5. The clicks on the referral links, 20 at a time.
const recent = clicks.filter((c) => c.at > now - 30 * DAY);
for (let i = 0; i < recent.length; i += 20) {
  // Many visitors, not one address (the edge limits clicks per IP).
  await Promise.all(recent.slice(i, i + 20).map((c, k) => fetch(`${edge}/r/${c.code}`,
    { redirect: 'manual', headers: { 'cf-connecting-ip': `203.0.113.${(i + k) % 250}` } })));
}
const rows = recent;

const total = first.length + second.length + bought.length + views.length;
console.log(`demo data: ${500 + referred.length} participants, ${total} events, ${rows.length} clicks over 30 days`);
