// What waits to be delivered. Tracked events wait in memory (`track` never
// writes storage) until the next send or until the page is hidden; then
// they are persisted in this tab's own queue in localStorage, and leave it
// only when the edge answered for them. Each tab sends only its own queue,
// so no two tabs ever write one key or send one event (localStorage is not
// consistent across a browser's processes); the queue of a tab that is gone
// is taken over by one live tab. How a queue is cut into bodies and how many
// events are kept are the wasm's rules.
import { KEYS, POLICY, warn } from './policy.js';

// Bytes of a JSON text as it goes over the wire (UTF-8).
const encoder = new TextEncoder();
const bytes = (text) => (/^[\x00-\x7f]*$/.test(text) ? text.length : encoder.encode(text).length);

export function makeOutbox(cfg, store, core, tab) {
  const prefix = KEYS.queue(cfg.key), beatPrefix = KEYS.heartbeat(cfg.key);
  const mine = prefix + tab, heart = beatPrefix + tab;
  // In memory, in the order of the calls: { id, text }, or a slot whose text
  // comes later (an event whose email hash is being computed).
  let buffer = [];
  const hashing = [];

  // A persisted queue is a JSON array of event objects (a corrupted one
  // starts over); in memory, its entries as { id, text } (the JSON text each
  // is sent as, made once). This tab is the only writer of its own queue, so
  // its copy in memory is the stored one.
  const entry = (e) => ({ id: e.id, text: JSON.stringify(e) });
  const load = (key) => {
    const list = store.getJson(key, []);
    return Array.isArray(list) ? list.filter((e) => e && typeof e.id === 'string').map(entry) : [];
  };
  let queue = load(mine);
  const save = () => store.set(mine, '[' + queue.map((e) => e.text).join(',') + ']');
  // `more` after the queue, an id stored once, the oldest beyond the cap dropped.
  const append = (more) => {
    const seen = new Set(queue.map((e) => e.id));
    for (const e of more) if (!seen.has(e.id)) { seen.add(e.id); queue.push(e); }
    queue = queue.slice(core.overflow(queue.length));
    save();
  };

  const outbox = {
    // An event, as JSON text now (a value that cannot be sent throws at the
    // call, not later in the queue).
    add(event) { buffer.push(entry(event)); },
    // An event whose fields `later` fills; the buffer keeps its place.
    addLater(event, later) {
      const slot = { id: event.id, text: null };
      buffer.push(slot);
      const done = later.then((fields) => Object.assign(event, fields), () => event)
        .then((e) => { slot.text = JSON.stringify(e); })
        .then(() => { hashing.splice(hashing.indexOf(done), 1); });
      hashing.push(done);
    },
    buffered: () => buffer.length,
    // Settles once every event added so far can be persisted.
    settled: () => Promise.all(hashing.slice()),
    // The buffer into this tab's queue, up to the first event not ready yet.
    persist() {
      let n = 0;
      while (n < buffer.length && buffer[n].text !== null) n++;
      if (n) append(buffer.splice(0, n));
    },
    count: () => queue.length + buffer.length,
    // This tab's queue cut into request bodies (under a beacon's limit when
    // `beacon`), without the ids in `skip`: [{ ids, body }]. An event too
    // large to ever be sent leaves the queue with a warning.
    batches(sentAt, beacon, skip) {
      const list = skip ? queue.filter((e) => !skip.has(e.id)) : queue;
      const head = '{"key":' + JSON.stringify(cfg.key) + ',"sent_at":' + JSON.stringify(sentAt) + ',"events":[';
      const plan = core.batchPlan(Uint32Array.from(list, (e) => e.bytes || (e.bytes = bytes(e.text))), head.length + 2, beacon);
      const out = [];
      const dropped = [];
      plan.forEach((b, i) => {
        if (b === 0xffffffff) { dropped.push(list[i].id); return; }
        (out[b] = out[b] || { ids: [], texts: [] }).ids.push(list[i].id);
        out[b].texts.push(list[i].text);
      });
      if (dropped.length) { warn(dropped.length + ' events too large to send were dropped'); outbox.remove(dropped); }
      return out.filter(Boolean).map((b) => ({ ids: b.ids, body: head + b.texts.join(',') + ']}' }));
    },
    // The edge answered for these events: they leave the queue.
    remove(ids) {
      const gone = new Set(ids);
      queue = queue.filter((e) => !gone.has(e.id));
      save();
    },
    // This tab is alive (read by the others' takeover).
    beat() { store.set(heart, String(Date.now())); },
    leave() { store.remove(heart); },
    // The queues of tabs that are gone (closed, reloaded, crashed, or the
    // shared queue of an earlier SDK) join this one: how many events came.
    takeOver() {
      const now = Date.now();
      let taken = [];
      for (const k of store.keys()) {
        const other = k.indexOf(prefix) === 0 ? k.slice(prefix.length) : k === 'refloop.q:' + cfg.key ? '' : null;
        if (other === null || other === tab) continue;
        if (other && now - Number(store.get(beatPrefix + other)) < POLICY.deadTabMs) continue;
        taken = taken.concat(load(k));
        store.remove(k);
        store.remove(beatPrefix + other);
      }
      if (taken.length) append(taken);
      return taken.length;
    },
    // Forget it all (optOut).
    forget() { buffer = []; queue = []; store.remove(mine); store.remove(heart); },
  };
  return outbox;
}
