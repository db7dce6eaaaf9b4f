// The script the tag loads (GET /v1/sdk.js), bundled by esbuild with the
// wasm-bindgen glue into one file: the browser shell of the SDK. It owns the
// page's APIs (storage, timers, fetch, sendBeacon, Web Locks, listeners) and
// asks the wasm (`core`) every question with a rule in it: ids, event JSON,
// the persisted queue, batches, what an answer means and when to retry. It
// replays the calls the stub queued and defines nothing global but
// window.refloop.
import init, * as core from '../../build/sdk/pkg/refloop_sdk.js';

var METHODS = ['track', 'identify', 'page', 'flush', 'anonymousId', 'reset', 'queuedCount'];

(function () {
  var w = window;
  var stub = w.refloop;
  // Included twice: the first tag owns the instance (loaded or loading).
  if (stub && (stub.__refloop || stub.__loading)) return;
  var queue = Array.isArray(stub) ? stub : [];
  queue.__loading = true;
  if (!stub) {
    // No stub on the page: accept calls while the wasm loads.
    METHODS.forEach(function (m) {
      queue[m] = function () { queue.push([m].concat([].slice.call(arguments))); };
    });
  }
  w.refloop = queue;

  var script = document.currentScript;
  var data = (script && script.dataset) || {};
  var src = (script && script.src) || location.href;

  init({ module_or_path: new URL(REFLOOP_WASM_FILE, src) }).then(function () {
    if (!data.key || !core.isPublishableKey(data.key)) throw new Error('data-key must be a publishable key (pk_…)');
    var client = start({
      key: data.key,
      api: (data.api || new URL(src).origin).replace(/\/+$/, ''),
      batchSize: clamp(data.batchSize, 10, 1, 100),
      flushMs: clamp(data.flushMs, 5000, 0, 600000),
    });
    var api = { __refloop: true };
    METHODS.forEach(function (m) {
      // A bad call warns; it never throws into the host page.
      api[m] = function () {
        try { return client[m].apply(client, arguments); } catch (e) { warn(m + ': ' + e.message); }
      };
    });
    // A copy of a stub method taken before load still pushes here.
    api.push = function (call) { dispatch(call); };
    function dispatch(call) {
      var fn = api[call[0]];
      if (typeof fn === 'function') fn.apply(api, call.slice(1));
      else warn('unknown method ' + call[0]);
    }
    w.refloop = api;
    for (var i = 0; i < queue.length; i++) dispatch(queue[i]);
  })['catch'](function (e) {
    warn('could not start: ' + (e && e.message || e));
    queue.__loading = false;
  });
})();

function warn(message) { if (window.console) console.warn('[refloop] ' + message); }
function noop() {}

function clamp(v, d, lo, hi) {
  var n = v == null || v === '' ? d : Number(v);
  return n >= lo && n <= hi ? n : n > hi ? hi : n < lo ? lo : d;
}

// localStorage when the browser lets us, memory when it throws (a sandboxed
// frame, a full quota): from the first throw on, memory for the page.
function makeStore() {
  var memory = {}, broken = false;
  function local() {
    if (broken) return null;
    try { return window.localStorage; } catch (e) { broken = true; return null; }
  }
  return {
    get: function (k) {
      var s = local();
      if (s) { try { return s.getItem(k); } catch (e) { broken = true; } }
      return Object.prototype.hasOwnProperty.call(memory, k) ? memory[k] : null;
    },
    set: function (k, v) {
      var s = local();
      if (s) { try { s.setItem(k, v); return; } catch (e) { broken = true; } }
      memory[k] = v;
    },
    remove: function (k) {
      var s = local();
      if (s) { try { s.removeItem(k); } catch (e) { broken = true; } }
      delete memory[k];
    },
  };
}

function newId() {
  var r = new Uint8Array(10);
  try { crypto.getRandomValues(r); } catch (e) { for (var i = 0; i < 10; i++) r[i] = Math.random() * 256 | 0; }
  return core.newId(Date.now(), r);
}

function start(cfg) {
  var store = makeStore();
  var QUEUE = 'refloop.q:' + cfg.key, LEASE = 'refloop.lease:' + cfg.key, ANON = 'refloop.aid';
  var url = cfg.api + '/v1/batch';
  var tab = newId();
  // Tracked events wait here, in memory, until the next send or until the
  // page is hidden: `track` never writes storage.
  var buffer = [];
  var timer = null, due = 0, attempt = 0, sending = false;
  var anonymousId = store.get(ANON) || resetId();
  var userId = null;

  function resetId() { var a = newId(); store.set(ANON, a); return a; }
  function persist() {
    if (!buffer.length) return;
    store.set(QUEUE, core.queueMerge(store.get(QUEUE) || '', '[' + buffer.join(',') + ']'));
    buffer = [];
  }
  function stored() { persist(); return store.get(QUEUE) || '[]'; }
  function batches(sentAt, skip) {
    var q = skip ? core.queueRemove(stored(), skip) : stored();
    return core.queueBatches(q, cfg.key, sentAt, 0).split('\n').filter(Boolean).map(function (line) {
      var tab = line.indexOf('\t');
      return { ids: line.slice(0, tab), body: line.slice(tab + 1) };
    });
  }
  function post(body) {
    return fetch(url, {
      method: 'POST', body: body, keepalive: true, mode: 'cors',
      // text/plain keeps the request "simple": no CORS preflight.
      headers: { 'Content-Type': 'text/plain;charset=UTF-8' },
    });
  }

  function schedule(ms) {
    var at = Date.now() + ms;
    if (timer !== null && due <= at) return;
    clearTimeout(timer);
    due = at;
    timer = setTimeout(function () { timer = null; flush()['catch'](noop); }, ms);
  }

  // One round: the pending batches in order; a delivered or refused batch
  // leaves the persisted queue, a failed one ends the round with its wait.
  function round() {
    var list = batches(new Date().toISOString());
    function next(i) {
      if (i >= list.length) return 'done';
      return post(list[i].body).then(function (r) {
        return [r.status, r.headers.get('Retry-After')];
      }, function () { return [0, null]; }).then(function (answer) {
        var wait = core.verdict(answer[0], answer[1] || undefined, Date.now(), attempt, Math.random());
        if (wait === -2) warn('the edge refused a batch with ' + answer[0] + '; its events were dropped');
        if (wait >= 0) return wait;
        store.set(QUEUE, core.queueRemove(store.get(QUEUE) || '', list[i].ids));
        return next(i + 1);
      });
    }
    return Promise.resolve(next(0));
  }

  // One tab sends the shared queue at a time: Web Locks, else a lease.
  function locked(fn) {
    if (sending) return Promise.resolve('busy');
    sending = true;
    var p = navigator.locks
      ? navigator.locks.request('refloop.send:' + cfg.key, { ifAvailable: true }, function (lock) { return lock ? fn() : 'busy'; })
      : leased(fn);
    return p.then(function (r) { sending = false; return r; }, function (e) { sending = false; throw e; });
  }
  function leased(fn) {
    var mine = core.takeLease(store.get(LEASE) || undefined, tab, Date.now(), 15000);
    if (!mine) return Promise.resolve('busy');
    store.set(LEASE, mine);
    // Another tab may have written at the same moment: the last writer wins.
    if (store.get(LEASE) !== mine) return Promise.resolve('busy');
    return fn().then(function (r) { if (store.get(LEASE) === mine) store.remove(LEASE); return r; });
  }

  function flush() {
    clearTimeout(timer);
    timer = null;
    persist();
    return locked(round).then(function (r) {
      if (r === 'done') { attempt = 0; return; }
      // Another tab is sending (our persisted events too): look again later.
      if (r === 'busy') { schedule(500 + Math.random() * 2000); return; }
      attempt++;
      schedule(r);
      throw new Error('some events could not be delivered; they stay queued');
    });
  }

  // The page is going away: everything pending goes by sendBeacon (a keepalive
  // fetch when the browser refuses one). Nothing leaves the persisted queue,
  // since no answer will be seen; a later confirmed send clears it, and the
  // edge's dedupe by event id makes the second copy harmless.
  // `hidden` and `pagehide` both come when a page is left: what this page
  // already beaconed is not beaconed again.
  var beaconed = [];
  function beacon() {
    clearTimeout(timer);
    timer = null;
    batches(new Date().toISOString(), beaconed.join(',')).forEach(function (b) {
      if (!(navigator.sendBeacon && navigator.sendBeacon(url, b.body))) post(b.body)['catch'](noop);
      beaconed.push(b.ids);
    });
  }

  function onHidden() { if (document.visibilityState === 'hidden') beacon(); }
  document.addEventListener('visibilitychange', onHidden);
  window.addEventListener('pagehide', beacon);
  window.addEventListener('online', function () { attempt = 0; flush()['catch'](noop); });

  function json(v, what) {
    if (v == null) return undefined;
    if (typeof v !== 'object' || Array.isArray(v)) throw new Error(what + ' must be a plain object');
    return JSON.stringify(v);
  }
  function enqueue(kind, name, user, properties, traits) {
    var id = newId();
    buffer.push(core.eventJson(id, kind, name, anonymousId, user || userId || undefined, new Date().toISOString(),
      json(properties, 'properties'), json(traits, 'traits')));
    schedule(buffer.length >= cfg.batchSize ? 0 : cfg.flushMs);
    return id;
  }

  // What an earlier page could not deliver goes out now.
  if (core.queueLength(stored()) > 0) schedule(0);

  return {
    track: function (event, properties) {
      var name = typeof event === 'string' ? event.trim() : '';
      if (!name || name.length > 128) throw new Error('track needs an event name of 1 to 128 characters');
      return enqueue('track', name, undefined, properties);
    },
    identify: function (user, traits) {
      user = typeof user === 'string' ? user.trim() : '';
      if (!user) throw new Error('identify needs a user id');
      userId = user;
      return enqueue('identify', undefined, user, undefined, traits);
    },
    page: function (properties) { return enqueue('page', undefined, undefined, properties); },
    flush: flush,
    anonymousId: function () { return anonymousId; },
    reset: function () { anonymousId = resetId(); userId = null; },
    queuedCount: function () { return core.queueLength(stored()); },
  };
}
