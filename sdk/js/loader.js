// The script the tag loads (GET /v1/sdk.js), bundled by esbuild with the
// wasm-bindgen glue into one file: the browser shell of the SDK. It owns the
// page's APIs (storage, timers, fetch, sendBeacon, Web Locks, listeners) and
// asks the wasm (`core`) every question with a rule in it: ids, event JSON,
// the persisted queue, batches, what an answer means and when to retry. It
// replays the calls the stub queued and defines nothing global but
// window.refloop.
import init, * as core from '../../build/sdk/pkg/refloop_sdk.js';

var METHODS = ['track', 'identify', 'page', 'flush', 'anonymousId', 'reset', 'queuedCount', 'attribution', 'me',
  'invite', 'optIn', 'optOut', 'mount'];
var WIDGETS = { share: 260, leaderboard: 320, progress: 180, stats: 120 };

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
    var widgets = null;
    var client = start({
      // The widget chunk, imported on the first mount only.
      widgets: function () { return widgets || (widgets = import(new URL('widgets.js', src).href)); },
      key: data.key,
      api: (data.api || new URL(src).origin).replace(/\/+$/, ''),
      batchSize: clamp(data.batchSize, 10, 1, 100),
      flushMs: clamp(data.flushMs, 5000, 0, 600000),
      refParam: data.refParam || 'ref',
      inviteParam: data.inviteParam || 'invite',
      firstTouch: data.attribution === 'first-touch',
      attributionDays: clamp(data.attributionDays, 90, 1, 3650),
      cookieDomain: data.cookieDomain,
      pending: data.consent === 'pending',
      plainEmail: data.plainEmail === 'true',
      campaign: data.campaign,
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
    // Elements that ask for a widget mount themselves.
    function auto() {
      Array.prototype.forEach.call(document.querySelectorAll('[data-refloop-widget]'), function (el) {
        if (!el.__refloop) api.mount(el, el.getAttribute('data-refloop-widget'), {
          theme: el.getAttribute('data-theme') || undefined, lang: el.getAttribute('lang') || undefined,
          campaign: el.getAttribute('data-campaign') || undefined,
        });
      });
    }
    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', auto); else auto();
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
  var store = {
    // Consent pending: nothing touches the browser's storage.
    held: false,
  };
  function local() {
    if (broken || store.held) return null;
    try { return window.localStorage; } catch (e) { broken = true; return null; }
  }
  store.get = function (k) {
      var s = local();
      if (s) { try { return s.getItem(k); } catch (e) { broken = true; } }
      return Object.prototype.hasOwnProperty.call(memory, k) ? memory[k] : null;
  };
  store.set = function (k, v) {
      var s = local();
      if (s) { try { s.setItem(k, v); return; } catch (e) { broken = true; } }
      memory[k] = v;
  };
  store.remove = function (k) {
      var s = local();
      if (s) { try { s.removeItem(k); } catch (e) { broken = true; } }
      delete memory[k];
  };
  store.keys = function () {
    var s = local(), out = [];
    if (s) { try { for (var i = 0; i < s.length; i++) out.push(s.key(i)); return out; } catch (e) { broken = true; } }
    return Object.keys(memory);
  };
  // Consent given: what was kept in memory moves to the browser's storage.
  store.release = function () {
    store.held = false;
    for (var k in memory) if (Object.prototype.hasOwnProperty.call(memory, k)) store.set(k, memory[k]);
  };
  return store;
}

// The identity cookie lives on the registrable domain: the shortest parent
// domain the browser accepts a cookie on (it refuses public suffixes).
function cookieDomain(configured) {
  if (configured) return configured;
  var labels = location.hostname.split('.');
  if (labels.length < 2 || /^[\d.]+$|:/.test(location.hostname)) return '';
  for (var n = 2; n <= labels.length; n++) {
    var d = labels.slice(-n).join('.');
    document.cookie = 'refloop_probe=1;domain=' + d + ';path=/;SameSite=Lax';
    if (document.cookie.indexOf('refloop_probe=1') >= 0) {
      document.cookie = 'refloop_probe=;domain=' + d + ';path=/;max-age=0';
      return d;
    }
  }
  return '';
}

function readCookie(name) {
  var m = document.cookie.match(new RegExp('(?:^|; )' + name + '=([^;]*)'));
  return m ? decodeURIComponent(m[1]) : null;
}

// Lower case; Gmail without dots and +tags (the core's `normalise_email`).
function normaliseEmail(email) {
  var e = String(email).trim().toLowerCase(), at = e.lastIndexOf('@');
  if (at < 1 || e.indexOf('.', at) < 0) return null;
  var local = e.slice(0, at).split('+')[0], domain = e.slice(at + 1);
  if (domain === 'googlemail.com') domain = 'gmail.com';
  if (domain === 'gmail.com') local = local.replace(/\./g, '');
  return local ? local + '@' + domain : null;
}

function sha256(text) {
  return crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)).then(function (buf) {
    return Array.prototype.map.call(new Uint8Array(buf), function (b) { return (b < 16 ? '0' : '') + b.toString(16); }).join('');
  });
}

var CLICK_IDS = ['gclid', 'gbraid', 'wbraid', 'fbclid', 'msclkid', 'ttclid', 'li_fat_id', 'twclid'];

// What this page view says about where the visitor came from, or null.
function touchOf(cfg, now) {
  var url = new URL(location.href), t = {}, says = false;
  url.searchParams.forEach(function (v, k) {
    if (!v) return;
    if (k === cfg.refParam) { t.ref = v.trim(); says = true; }
    else if (k === cfg.inviteParam) { t.invite = v.trim(); says = true; }
    else if (k.indexOf('utm_') === 0 || CLICK_IDS.indexOf(k) >= 0) { t[k] = v; says = true; }
  });
  var ref = document.referrer;
  try {
    var host = new URL(ref).hostname, here = location.hostname;
    if (host !== here && !host.endsWith('.' + here) && !here.endsWith('.' + host)) { t.referrer = ref; says = true; }
  } catch (e) { /* no referrer */ }
  if (!says) return null;
  t.landing_url = location.href;
  t.at = new Date(now).toISOString();
  return t;
}

function newId() {
  var r = new Uint8Array(10);
  try { crypto.getRandomValues(r); } catch (e) { for (var i = 0; i < 10; i++) r[i] = Math.random() * 256 | 0; }
  return core.newId(Date.now(), r);
}

function start(cfg) {
  var store = makeStore();
  var tab = newId();
  // Each tab persists its own queue and sends only it, so no two tabs ever
  // write one key or send one event: localStorage is not consistent across a
  // browser's processes, and a shared queue would lose or repeat events. A
  // tab's heartbeat says it is alive; the queue of a tab that is gone (closed,
  // reloaded, crashed) is reclaimed by one live tab under the reclaim lock.
  var PREFIX = 'refloop.q:' + cfg.key + ':', BEAT = 'refloop.hb:' + cfg.key + ':';
  var QUEUE = PREFIX + tab, HEART = BEAT + tab, LEASE = 'refloop.lease:' + cfg.key, ANON = 'refloop.aid';
  var url = cfg.api + '/v1/batch';
  // Tracked events wait here, in memory, until the next send or until the
  // page is hidden: `track` never writes storage.
  var buffer = [];
  var timer = null, due = 0, attempt = 0;
  var FIRST = 'refloop.t1', LAST = 'refloop.t2', CONSENT = 'refloop.consent';
  // The SDK's own address-bar cleanup is no page view: it uses the original.
  var replaceState = history.replaceState;
  // Consent: `data-consent="pending"` holds everything in memory, unsent,
  // until optIn(); a choice made on an earlier page is remembered, and an
  // optOut() on every page after it, whatever the tag says.
  var remembered = null;
  try { remembered = localStorage.getItem(CONSENT); } catch (e) { /* no storage */ }
  var consent = remembered === 'denied' ? 'denied' : cfg.pending ? remembered || 'pending' : 'granted';
  store.held = consent !== 'granted';
  var domain = store.held ? '' : cookieDomain(cfg.cookieDomain);
  // The user id (and the site's signature of it) live beside the anonymous id,
  // so a reload's events and me() still say who the user is.
  var UID = 'refloop.uid';
  var userId = null, userHash = null;
  try { var saved = JSON.parse(store.get(UID) || 'null'); if (saved) { userId = saved.id || null; userHash = saved.hash || null; } } catch (e) { /* none */ }
  function keepUser() { if (userId) store.set(UID, JSON.stringify({ id: userId, hash: userHash })); else store.remove(UID); }
  // The anonymous id lives in a first-party cookie and in localStorage: either
  // one restores the other.
  var anonymousId = readCookie('refloop_aid') || store.get(ANON) || newId();
  keepId();

  function keepId() {
    store.set(ANON, anonymousId);
    if (store.held) return;
    document.cookie = 'refloop_aid=' + anonymousId + ';path=/;max-age=34560000;SameSite=Lax'
      + (domain ? ';domain=' + domain : '') + (location.protocol === 'https:' ? ';Secure' : '');
  }
  function resetId() { anonymousId = newId(); keepId(); return anonymousId; }

  // Attribution: the first touch is kept, the last replaced, both forgotten
  // after data-attribution-days; the ref and invite params leave the address bar.
  function touches() {
    var now = Date.now(), max = cfg.attributionDays * 864e5;
    return [FIRST, LAST].map(function (k) {
      try { var t = JSON.parse(store.get(k)); return t && now - Date.parse(t.at) <= max ? t : null; } catch (e) { return null; }
    });
  }
  function attribute(navigated) {
    // A reload (or back/forward) shows the same address again: no new touch.
    var nav = !navigated && performance.getEntriesByType && performance.getEntriesByType('navigation')[0];
    if (nav && (nav.type === 'reload' || nav.type === 'back_forward')) return;
    var t = touchOf(cfg, Date.now()), kept = touches();
    if (t) {
      if (!kept[0]) store.set(FIRST, JSON.stringify(t));
      store.set(LAST, JSON.stringify(t));
    }
    if (t && (t.ref || t.invite)) {
      var clean = new URL(location.href);
      clean.searchParams['delete'](cfg.refParam);
      clean.searchParams['delete'](cfg.inviteParam);
      replaceState.call(history, history.state, '', clean.pathname + clean.search + clean.hash);
    }
  }
  // What a signup carries: the ref of the chosen touch (data-attribution),
  // else of the other one.
  function signupAttribution() {
    var kept = touches(), order = cfg.firstTouch ? kept : [kept[1], kept[0]];
    for (var i = 0; i < 2; i++) {
      var t = order[i];
      if (t && (t.ref || t.invite)) {
        // Where the signup came from, for the operator's sources: the
        // campaign tags, a click id's kind, the referring host, the landing path.
        var a = { ref: t.ref, invite: t.invite, at: t.at, utm_source: t.utm_source, utm_medium: t.utm_medium, utm_campaign: t.utm_campaign };
        for (var c = 0; c < CLICK_IDS.length; c++) if (t[CLICK_IDS[c]]) { a.click_id = CLICK_IDS[c]; break; }
        try { if (t.referrer) a.referrer_host = new URL(t.referrer).hostname; } catch (e) { /* not a URL */ }
        try { a.landing_path = new URL(t.landing_url).pathname; } catch (e) { /* none */ }
        return a;
      }
    }
    return undefined;
  }
  attribute();
  function persistNow() {
    // Up to the first event whose email hash is not ready yet.
    var ready = [];
    while (buffer.length && !buffer[0].pending) {
      var e = buffer.shift();
      ready.push(typeof e === 'string' ? e : e.json);
    }
    if (ready.length) store.set(QUEUE, core.queueMerge(store.get(QUEUE) || '', '[' + ready.join(',') + ']'));
  }
  function persist() { return Promise.resolve(persistNow()); }
  function stored() { return store.get(QUEUE) || '[]'; }
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
      // A send that never answers (a connection dropped mid-way) must not hold
      // the tab's sends forever: it fails, and is retried. Found by the soak.
      signal: AbortSignal.timeout ? AbortSignal.timeout(20000) : undefined,
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

  // This tab's sends run one after another.
  var sending = false;
  function serial(fn) {
    if (sending) return sending.then(function () { return serial(fn); });
    sending = fn().then(function (r) { sending = false; return r; }, function (e) { sending = false; throw e; });
    return sending;
  }

  // One tab at a time takes over the queues of tabs that are gone: Web Locks,
  // else a lease in localStorage.
  function exclusive(fn) {
    if (navigator.locks) {
      return navigator.locks.request('refloop.reclaim:' + cfg.key, { ifAvailable: true }, function (lock) { return lock ? fn() : 0; });
    }
    var mine = core.takeLease(store.get(LEASE) || undefined, tab, Date.now(), 15000);
    if (!mine) return Promise.resolve(0);
    store.set(LEASE, mine);
    // Another tab may have written at the same moment: the last writer wins.
    if (store.get(LEASE) !== mine) return Promise.resolve(0);
    var n = fn();
    if (store.get(LEASE) === mine) store.remove(LEASE);
    return Promise.resolve(n);
  }
  function beat() { if (consent === 'granted') store.set(HEART, String(Date.now())); }
  function reclaim() {
    if (consent !== 'granted') return Promise.resolve(0);
    return exclusive(function () {
      var now = Date.now(), taken = 0;
      store.keys().forEach(function (k) {
        var other = k.indexOf(PREFIX) === 0 ? k.slice(PREFIX.length) : k === 'refloop.q:' + cfg.key ? '' : null;
        if (other === null || other === tab) return;
        var last = Number(store.get(BEAT + other));
        if (other && now - last < 30000) return;
        var theirs = store.get(k) || '[]';
        taken += core.queueLength(theirs);
        store.set(QUEUE, core.queueMerge(store.get(QUEUE) || '', theirs));
        store.remove(k);
        store.remove(BEAT + other);
      });
      if (taken) schedule(0);
      return taken;
    });
  }

  // flush() waits for what was queued before it: an event whose email hash
  // is still being computed is part of it.
  var hashing = [];
  function flush() {
    clearTimeout(timer);
    timer = null;
    if (consent !== 'granted') return Promise.resolve();
    return Promise.all(hashing.slice()).then(persist).then(function () { return serial(round); }).then(function (r) {
      if (r === 'done') { attempt = 0; return; }
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
    if (consent !== 'granted') return;
    persistNow();
    batches(new Date().toISOString(), beaconed.join(',')).forEach(function (b) {
      if (!(navigator.sendBeacon && navigator.sendBeacon(url, b.body))) post(b.body)['catch'](noop);
      beaconed.push(b.ids);
    });
  }

  function onHidden() { if (document.visibilityState === 'hidden') beacon(); }
  document.addEventListener('visibilitychange', onHidden);
  // Leaving: the queue stays for whoever comes next (the reloaded page, another
  // tab), who may take it at once since this tab says it is gone.
  window.addEventListener('pagehide', function () { beacon(); store.remove(HEART); });
  window.addEventListener('pageshow', function (e) { if (e.persisted) beat(); });
  beat();
  setInterval(function () { beat(); reclaim(); }, 10000);
  window.addEventListener('online', function () { attempt = 0; flush()['catch'](noop); });

  function json(v, what) {
    if (v == null) return undefined;
    if (typeof v !== 'object' || Array.isArray(v)) throw new Error(what + ' must be a plain object');
    return JSON.stringify(v);
  }
  // An event waits in the buffer as its JSON text, or as a slot filled when
  // its email hash is ready (the buffer keeps the order of the calls).
  function enqueue(kind, name, user, properties, traits, attribution, slot) {
    if (consent === 'denied') return undefined;
    var id = newId(), at = new Date().toISOString();
    var make = function (tr) {
      var text = core.eventJson(id, kind, name, anonymousId, user || userId || undefined, at,
        json(properties, 'properties'), json(tr, 'traits'), attribution ? JSON.stringify(attribution) : undefined);
      // data-campaign names the program every event of this page belongs to;
      // the site's signature of the user id lets the edge believe it.
      var extra = (cfg.campaign ? ',"campaign":' + JSON.stringify(cfg.campaign) : '')
        + (userHash && (user || userId) ? ',"user_hash":' + JSON.stringify(userHash) : '');
      return extra ? text.slice(0, -1) + extra + '}' : text;
    };
    if (slot) {
      var entry = { pending: true };
      buffer.push(entry);
      var ready = slot.then(function (tr) { entry.json = make(tr); entry.pending = false; }, function () {
        entry.json = make(undefined); entry.pending = false;
      }).then(function () { hashing.splice(hashing.indexOf(ready), 1); });
      hashing.push(ready);
    } else {
      buffer.push(make(traits));
    }
    if (consent === 'granted') schedule(buffer.length >= cfg.batchSize ? 0 : cfg.flushMs);
    return id;
  }

  // Single-page apps: a route change is a page view.
  ['pushState', 'replaceState'].forEach(function (m) {
    var original = history[m];
    history[m] = function (state, title, url) {
      var before = location.href, r = original.apply(this, arguments);
      if (location.href !== before) { attribute(true); enqueue('page', undefined, undefined, { path: location.pathname }); }
      return r;
    };
  });
  window.addEventListener('popstate', function () { enqueue('page', undefined, undefined, { path: location.pathname }); });

  // What an earlier page could not deliver goes out now.
  reclaim();
  if (consent === 'granted' && core.queueLength(stored()) > 0) schedule(0);

  function edge(path, init) {
    return fetch(cfg.api + path, init).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) {
          var e = new Error((body && body.error && body.error.message) || 'the edge answered ' + r.status);
          e.status = r.status;
          throw e;
        }
        return body;
      });
    });
  }
  // The widgets of a page share one me() per campaign: one asked while
  // another is in flight gets that answer (four widgets refreshing together
  // are one request); once answered, the next ask is fresh.
  var meShared = {};
  function sharedMe(api, campaign) {
    var k = campaign || '';
    if (meShared[k]) return meShared[k];
    var done = function () { delete meShared[k]; };
    var p = api.me(campaign);
    p.then(done, done);
    meShared[k] = p;
    return p;
  }
  function campaignOf(c) {
    if (consent !== 'granted') throw new Error('no consent yet: call optIn() first');
    c = c || cfg.campaign;
    if (!c) throw new Error('name the campaign (data-campaign on the script tag)');
    return encodeURIComponent(c);
  }

  return {
    track: function (event, properties) {
      var name = typeof event === 'string' ? event.trim() : '';
      if (!name || name.length > 128) throw new Error('track needs an event name of 1 to 128 characters');
      return enqueue('track', name, undefined, properties, undefined, name === 'signup' ? signupAttribution() : undefined);
    },
    identify: function (user, traits, options) {
      user = typeof user === 'string' ? user.trim() : '';
      if (!user) throw new Error('identify needs a user id');
      json(traits, 'traits');
      if (user !== userId) userHash = null;
      userId = user;
      // { userHash }: the site's server's HMAC of the user id (README).
      if (options && typeof options.userHash === 'string') userHash = options.userHash;
      keepUser();
      var t = traits || {}, email = t.email;
      if (email == null || cfg.plainEmail) return enqueue('identify', undefined, user, undefined, traits, signupAttribution());
      // The email leaves the browser only as the SHA-256 of its normal form.
      var rest = {};
      for (var k in t) if (k !== 'email' && Object.prototype.hasOwnProperty.call(t, k)) rest[k] = t[k];
      var normal = normaliseEmail(email);
      var slot = normal && window.crypto && crypto.subtle
        ? sha256(normal).then(function (h) { rest.email_sha256 = h; rest.email_domain = normal.split('@')[1]; return rest; })
        : Promise.resolve(rest);
      return enqueue('identify', undefined, user, undefined, undefined, signupAttribution(), slot);
    },
    page: function (properties) { return enqueue('page', undefined, undefined, properties); },
    flush: flush,
    anonymousId: function () { return anonymousId; },
    reset: function () { resetId(); userId = null; userHash = null; keepUser(); },
    queuedCount: function () { return core.queueLength(stored()) + buffer.length; },
    attribution: function () { var kept = touches(); return { first: kept[0], last: kept[1] }; },
    me: function (campaign) {
      return edge('/v1/campaigns/' + campaignOf(campaign) + '/me?key=' + encodeURIComponent(cfg.key)
        + '&anonymous_id=' + encodeURIComponent(anonymousId)
        + (userId && userHash ? '&user_id=' + encodeURIComponent(userId) + '&user_hash=' + encodeURIComponent(userHash) : ''));
    },
    invite: function (campaign) {
      return edge('/v1/invitations', {
        method: 'POST', headers: { 'Content-Type': 'text/plain;charset=UTF-8' },
        body: JSON.stringify({ key: cfg.key, campaign: decodeURIComponent(campaignOf(campaign)), anonymous_id: anonymousId, user_id: userHash ? userId : undefined, user_hash: userHash || undefined }),
      });
    },
    // Never throws into the page: a widget that cannot be shown says why in
    // the console and resolves to null.
    mount: function (target, widget, options) {
      options = options || {};
      var el;
      try {
        el = typeof target === 'string' ? document.querySelector(target) : target;
        if (!el) throw new Error('no element ' + target);
        if (!WIDGETS[widget]) throw new Error('widget is one of ' + Object.keys(WIDGETS).join(', '));
        campaignOf(options.campaign);
      } catch (e) {
        if (window.console) console.warn('refloop: mount: ' + e.message);
        return Promise.resolve(null);
      }
      el.__refloop = true;
      // Space kept from the start, so the page does not jump when it renders.
      if (!el.style.minHeight) el.style.minHeight = WIDGETS[widget] + 'px';
      var campaign = options.campaign;
      var self = this;
      return cfg.widgets().then(function (w) {
        return w.mount(el, widget, options, {
          api: cfg.api,
          me: function () { return sharedMe(self, campaign); },
          invite: function () { return self.invite(campaign); },
          board: function (period, code) {
            return edge('/v1/campaigns/' + campaignOf(campaign) + '/leaderboard?key=' + encodeURIComponent(cfg.key)
              + '&limit=' + (options.limit || 10) + '&period=' + period + (code ? '&around=' + encodeURIComponent(code) : ''));
          },
        });
      });
    },
    optIn: function () {
      if (consent === 'granted') return;
      consent = 'granted';
      store.release();
      try { localStorage.setItem(CONSENT, 'granted'); } catch (e) { /* memory only */ }
      domain = cookieDomain(cfg.cookieDomain);
      keepId();
      attribute(true);
      beat();
      schedule(0);
    },
    optOut: function () {
      // Forget everything: ids, touches, the queue; send nothing from now on.
      consent = 'denied';
      buffer = [];
      [QUEUE, HEART, FIRST, LAST, ANON, LEASE, UID].forEach(store.remove);
      document.cookie = 'refloop_aid=;path=/;max-age=0' + (domain ? ';domain=' + domain : '');
      try { localStorage.setItem(CONSENT, 'denied'); } catch (e) { /* memory only */ }
      anonymousId = newId();
      userId = null;
      userHash = null;
    },
  };
}
