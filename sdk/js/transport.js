// How the queue reaches the edge: `fetch` (text/plain, so no CORS preflight)
// when a batch is full, after data-flush-ms, on flush() and when the browser
// is back online, one send after another; `sendBeacon` when the page is
// hidden or left. An answer's meaning and the wait before a retry are the
// wasm's rules (backoff with full jitter, never sooner than Retry-After).
import { KEYS, POLICY, noop, warn } from './policy.js';

// Retry-After as the browser reads it: delay-seconds or an HTTP date, in ms
// from now; -1 when there is none.
function retryAfterMs(value) {
  if (!value) return -1;
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? -1 : Math.max(0, at - Date.now());
}

export function makeTransport(cfg, core, outbox, identity, tab, store) {
  const url = cfg.api + '/v1/batch';
  let timer = null, due = 0, attempt = 0;

  const post = (body) => fetch(url, {
    method: 'POST', body, keepalive: true, mode: 'cors',
    headers: { 'Content-Type': 'text/plain;charset=UTF-8' },
    signal: AbortSignal.timeout ? AbortSignal.timeout(POLICY.sendTimeoutMs) : undefined,
  });

  // One round: the batches in order; an answered batch (taken or refused)
  // leaves the queue, a failed one ends the round: its wait in ms, or
  // undefined when everything was delivered.
  async function round() {
    for (const batch of outbox.batches(new Date().toISOString(), false)) {
      let status = 0, retryAfter = null;
      try {
        const r = await post(batch.body);
        status = r.status;
        retryAfter = r.headers.get('Retry-After');
      } catch (e) { /* no answer: offline, timed out, dropped */ }
      const answer = core.answer(status);
      if (answer === core.Answer.Retry) return core.retryDelay(attempt, Math.random(), retryAfterMs(retryAfter));
      if (answer === core.Answer.Refused) warn('the edge refused a batch with ' + status + '; its events were dropped');
      outbox.remove(batch.ids);
    }
    return undefined;
  }

  // This tab's sends run one after another.
  let sending = null;
  function serial(fn) {
    if (sending) return sending.then(() => serial(fn));
    sending = fn().finally(() => { sending = null; });
    return sending;
  }

  function schedule(ms) {
    const at = Date.now() + ms;
    if (timer !== null && due <= at) return;
    clearTimeout(timer);
    due = at;
    timer = setTimeout(() => { timer = null; flush().catch(noop); }, ms);
  }

  // Resolves once what was queued before it is stored at the edge (events
  // whose email hash is being computed included); rejects, keeping them
  // queued and retrying later, when some could not be delivered.
  function flush() {
    clearTimeout(timer);
    timer = null;
    if (!identity.granted()) return Promise.resolve();
    return outbox.settled().then(() => outbox.persist()).then(() => serial(round)).then((wait) => {
      if (wait === undefined) { attempt = 0; return; }
      attempt++;
      schedule(wait);
      throw new Error('some events could not be delivered; they stay queued');
    });
  }

  // The page is going away: everything pending goes by sendBeacon (a
  // keepalive fetch when the browser refuses one). Nothing leaves the queue,
  // since no answer will be seen; a later confirmed send clears it, and the
  // edge's dedupe by event id makes the second copy harmless. `hidden` and
  // `pagehide` both come when a page is left: what was beaconed is not again.
  const beaconed = new Set();
  function beacon() {
    clearTimeout(timer);
    timer = null;
    if (!identity.granted()) return;
    outbox.persist();
    for (const b of outbox.batches(new Date().toISOString(), true, beaconed)) {
      if (!(navigator.sendBeacon && navigator.sendBeacon(url, b.body))) post(b.body).catch(noop);
      b.ids.forEach((id) => beaconed.add(id));
    }
  }

  // One tab at a time takes over the queues of tabs that are gone: Web Locks,
  // else a lease in localStorage (the last writer wins a race).
  function exclusive(fn) {
    if (navigator.locks) {
      return navigator.locks.request(KEYS.reclaimLock(cfg.key), { ifAvailable: true }, (lock) => (lock ? fn() : 0));
    }
    const key = KEYS.lease(cfg.key), now = Date.now();
    const held = store.getJson(key, {});
    if (!core.leaseFree(held.tab === tab, Number(held.until) || 0, now)) return Promise.resolve(0);
    const lease = JSON.stringify({ tab, until: now + POLICY.leaseMs });
    store.set(key, lease);
    if (store.get(key) !== lease) return Promise.resolve(0);
    const n = fn();
    if (store.get(key) === lease) store.remove(key);
    return Promise.resolve(n);
  }
  function reclaim() {
    if (!identity.granted()) return Promise.resolve(0);
    return exclusive(() => {
      const taken = outbox.takeOver();
      if (taken) schedule(0);
      return taken;
    });
  }
  const beat = () => { if (identity.granted()) outbox.beat(); };

  document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'hidden') beacon(); });
  // Leaving: the queue stays for whoever comes next (the reloaded page, another
  // tab), who may take it at once since this tab says it is gone.
  window.addEventListener('pagehide', () => { beacon(); outbox.leave(); });
  window.addEventListener('pageshow', (e) => { if (e.persisted) beat(); });
  window.addEventListener('online', () => { attempt = 0; flush().catch(noop); });
  beat();
  setInterval(() => { beat(); reclaim(); }, POLICY.heartbeatMs);

  return {
    flush,
    schedule,
    beat,
    // What an earlier page could not deliver goes out now.
    resume() {
      reclaim();
      if (identity.granted() && outbox.count() > 0) schedule(0);
    },
    stop() { clearTimeout(timer); timer = null; },
  };
}
