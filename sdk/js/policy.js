// Every number of the browser shell, named. The rules with a number in them
// (backoff and its ceiling, body and batch limits, how many undelivered
// events are kept, the attribution window's arithmetic) are the wasm's, from
// refloop-core; these are how the shell uses the browser.
export const POLICY = {
  // The tag's data-* defaults and the bounds a value is clamped to.
  batchSize: { fallback: 10, min: 1, max: 100 },
  flushMs: { fallback: 5000, min: 0, max: 600000 },
  attributionDays: { fallback: 90, min: 1, max: 3650 },
  // A send that never answers (a connection dropped mid-way) fails after
  // this and is retried, so it cannot hold the tab's sends (found by the soak).
  sendTimeoutMs: 20000,
  // A live tab says so this often; a tab silent for `deadTabMs` is gone, and
  // its queue is taken over by a live one.
  heartbeatMs: 10000,
  deadTabMs: 30000,
  // The takeover lease of browsers without Web Locks.
  leaseMs: 15000,
  // The identity cookie: 400 days, the longest browsers keep one.
  cookieMaxAgeS: 34560000,
  // Event ids made at once, at most, in one millisecond (10 random bytes each).
  idBurst: 16,
  // Space a widget keeps before it renders, so the page does not jump.
  widgetMinHeightPx: { share: 260, leaderboard: 320, progress: 180, stats: 120 },
};

// Storage keys (localStorage), each a concern's own.
export const KEYS = {
  anonymousId: 'refloop.aid',
  user: 'refloop.uid',
  consent: 'refloop.consent',
  firstTouch: 'refloop.t1',
  lastTouch: 'refloop.t2',
  queue: (key) => 'refloop.q:' + key + ':',
  heartbeat: (key) => 'refloop.hb:' + key + ':',
  lease: (key) => 'refloop.lease:' + key,
  reclaimLock: (key) => 'refloop.reclaim:' + key,
  cookie: 'refloop_aid',
};

export function warn(message) { if (window.console) console.warn('[refloop] ' + message); }
export function noop() {}
