// The public API of `window.refloop`, over the shell's parts: identity and
// consent, attribution, the outbox and its transport. Each call checks its
// arguments and throws a plain Error; the loader turns that into a warning,
// never into the host page.
import { KEYS, POLICY } from './policy.js';
import { makeStore } from './storage.js';
import { hashedEmail, makeIdentity } from './identity.js';
import { makeAttribution } from './attribution.js';
import { makeOutbox } from './outbox.js';
import { makeTransport } from './transport.js';

export function start(cfg, core) {
  // Event ids: UUID v7 from the wasm, made a burst at a time: the ids of one
  // millisecond come from one call (a new millisecond makes a new burst, so
  // an id always carries the time it was taken).
  const random = new Uint8Array(POLICY.idBurst * 10);
  let burst = '', burstMs = -1, used = 0;
  const newId = () => {
    const now = Date.now();
    if (now !== burstMs || used === POLICY.idBurst) {
      try { crypto.getRandomValues(random); } catch (e) { for (let i = 0; i < random.length; i++) random[i] = Math.random() * 256 | 0; }
      burst = core.newIds(now, random);
      burstMs = now;
      used = 0;
    }
    used++;
    return burst.slice(used * 36 - 36, used * 36);
  };
  // The time of an event, written once per millisecond.
  let isoMs = -1, iso = '';
  const timestamp = () => {
    const now = Date.now();
    if (now !== isoMs) { isoMs = now; iso = new Date(now).toISOString(); }
    return iso;
  };

  const store = makeStore(false);
  const tab = newId();
  const identity = makeIdentity(cfg, store, newId);
  const attribution = makeAttribution(cfg, store, core);
  const outbox = makeOutbox(cfg, store, core, tab);
  const transport = makeTransport(cfg, core, outbox, identity, tab, store);

  const plainObject = (v, what) => {
    if (v != null && (typeof v !== 'object' || Array.isArray(v))) throw new Error(what + ' must be a plain object');
    return v == null ? undefined : v;
  };
  // One event into the outbox; `later` fills fields not known yet (traits
  // whose email is being hashed). Returns its id.
  function enqueue(type, fields, later) {
    if (identity.consent === 'denied') return undefined;
    const user = fields.user_id || identity.userId || undefined;
    const event = Object.assign({ id: newId(), type, anonymous_id: identity.anonymousId, timestamp: timestamp() }, fields);
    event.user_id = user;
    // data-campaign names the program every event of this page belongs to;
    // the site's signature of the user id lets the edge believe it.
    if (cfg.campaign) event.campaign = cfg.campaign;
    if (identity.userHash && user) event.user_hash = identity.userHash;
    if (later) outbox.addLater(event, later); else outbox.add(event);
    if (identity.granted()) transport.schedule(outbox.buffered() >= cfg.batchSize ? 0 : cfg.flushMs);
    return event.id;
  }
  const pageView = () => enqueue('page', { properties: { path: location.pathname } });

  attribution.attribute();
  // Single-page apps: a route change is a page view.
  for (const m of ['pushState', 'replaceState']) {
    const original = history[m];
    history[m] = function () {
      const before = location.href, r = original.apply(this, arguments);
      if (location.href !== before) { attribution.attribute(true); pageView(); }
      return r;
    };
  }
  window.addEventListener('popstate', pageView);
  transport.resume();

  function edge(path, init) {
    return fetch(cfg.api + path, init).then((r) => r.json().then((body) => {
      if (r.ok) return body;
      const e = new Error((body && body.error && body.error.message) || 'the edge answered ' + r.status);
      e.status = r.status;
      throw e;
    }));
  }
  function campaignOf(c) {
    if (!identity.granted()) throw new Error('no consent yet: call optIn() first');
    c = c || cfg.campaign;
    if (!c) throw new Error('name the campaign (data-campaign on the script tag)');
    return encodeURIComponent(c);
  }
  // The widgets of a page share one me() per campaign: one asked while
  // another is in flight gets that answer (four widgets refreshing together
  // are one request); once answered, the next ask is fresh.
  const meShared = {};
  function sharedMe(api, campaign) {
    const k = campaign || '';
    if (!meShared[k]) {
      const done = () => { delete meShared[k]; };
      meShared[k] = api.me(campaign);
      meShared[k].then(done, done);
    }
    return meShared[k];
  }
  let widgets = null;

  return {
    track(event, properties) {
      const name = typeof event === 'string' ? event.trim() : '';
      if (!name || name.length > 128) throw new Error('track needs an event name of 1 to 128 characters');
      return enqueue('track', {
        event: name,
        properties: plainObject(properties, 'properties'),
        attribution: name === 'signup' ? attribution.forSignup() : undefined,
      });
    },
    identify(user, traits, options) {
      user = typeof user === 'string' ? user.trim() : '';
      if (!user) throw new Error('identify needs a user id');
      plainObject(traits, 'traits');
      identity.identify(user, options);
      const fields = { user_id: user, attribution: attribution.forSignup() };
      if (!traits || traits.email == null || cfg.plainEmail) return enqueue('identify', Object.assign(fields, { traits }));
      // The email leaves the browser only as the SHA-256 of its normal form.
      return enqueue('identify', fields, hashedEmail(traits).then((t) => ({ traits: t })));
    },
    page: (properties) => enqueue('page', { properties: plainObject(properties, 'properties') }),
    flush: () => transport.flush(),
    anonymousId: () => identity.anonymousId,
    reset() { identity.reset(); },
    queuedCount: () => outbox.count(),
    attribution() { const kept = attribution.touches(); return { first: kept[0], last: kept[1] }; },
    me(campaign) {
      return edge('/v1/campaigns/' + campaignOf(campaign) + '/me?key=' + encodeURIComponent(cfg.key)
        + '&anonymous_id=' + encodeURIComponent(identity.anonymousId)
        + (identity.userId && identity.userHash ? '&user_id=' + encodeURIComponent(identity.userId) + '&user_hash=' + encodeURIComponent(identity.userHash) : ''));
    },
    invite(campaign) {
      return edge('/v1/invitations', {
        method: 'POST', headers: { 'Content-Type': 'text/plain;charset=UTF-8' },
        body: JSON.stringify({ key: cfg.key, campaign: decodeURIComponent(campaignOf(campaign)), anonymous_id: identity.anonymousId,
          user_id: identity.userHash ? identity.userId : undefined, user_hash: identity.userHash || undefined }),
      });
    },
    // Never throws into the page: a widget that cannot be shown says why in
    // the console and resolves to null.
    mount(target, widget, options) {
      options = options || {};
      let el;
      try {
        el = typeof target === 'string' ? document.querySelector(target) : target;
        if (!el) throw new Error('no element ' + target);
        if (!POLICY.widgetMinHeightPx[widget]) throw new Error('widget is one of ' + Object.keys(POLICY.widgetMinHeightPx).join(', '));
        campaignOf(options.campaign);
      } catch (e) {
        if (window.console) console.warn('refloop: mount: ' + e.message);
        return Promise.resolve(null);
      }
      el.__refloop = true;
      if (!el.style.minHeight) el.style.minHeight = POLICY.widgetMinHeightPx[widget] + 'px';
      const campaign = options.campaign, self = this;
      // The widget chunk, imported on the first mount only.
      widgets = widgets || import(new URL('widgets.js', cfg.src).href);
      return widgets.then((w) => w.mount(el, widget, options, {
        api: cfg.api,
        me: () => sharedMe(self, campaign),
        invite: () => self.invite(campaign),
        board: (period, code) => edge('/v1/campaigns/' + campaignOf(campaign) + '/leaderboard?key=' + encodeURIComponent(cfg.key)
          + '&limit=' + (options.limit || 10) + '&period=' + period + (code ? '&around=' + encodeURIComponent(code) : '')),
      }));
    },
    optIn() {
      if (identity.granted()) return;
      identity.optIn();
      attribution.attribute(true);
      transport.beat();
      transport.schedule(0);
    },
    optOut() {
      // Forget everything: ids, touches, the queue; send nothing from now on.
      transport.stop();
      outbox.forget();
      attribution.forget();
      store.remove(KEYS.lease(cfg.key));
      identity.optOut();
    },
  };
}
