// Where the visitor came from: each page view's touch (a referral link or
// invitation, utm_* tags, click ids, a referrer from another site), the first
// touch kept and the last replaced, both forgotten after the window. The
// model (first or last touch) and the window are the wasm's, shared with the
// edge's check.
import { KEYS } from './policy.js';

const CLICK_IDS = ['gclid', 'gbraid', 'wbraid', 'fbclid', 'msclkid', 'ttclid', 'li_fat_id', 'twclid'];

// What this page view says about where the visitor came from, or null.
function touchOf(cfg, now) {
  const url = new URL(location.href), t = {};
  let says = false;
  url.searchParams.forEach((v, k) => {
    if (!v) return;
    if (k === cfg.refParam) { t.ref = v.trim(); says = true; }
    else if (k === cfg.inviteParam) { t.invite = v.trim(); says = true; }
    else if (k.indexOf('utm_') === 0 || CLICK_IDS.indexOf(k) >= 0) { t[k] = v; says = true; }
  });
  try {
    const host = new URL(document.referrer).hostname, here = location.hostname;
    if (host !== here && !host.endsWith('.' + here) && !here.endsWith('.' + host)) { t.referrer = document.referrer; says = true; }
  } catch (e) { /* no referrer */ }
  if (!says) return null;
  t.landing_url = location.href;
  t.at = new Date(now).toISOString();
  return t;
}

const hasLink = (t) => !!(t && (t.ref || t.invite));

export function makeAttribution(cfg, store, core) {
  // The SDK's own address-bar cleanup is no page view: it uses the original.
  const replaceState = history.replaceState;
  const touches = () => {
    const now = Date.now();
    return [KEYS.firstTouch, KEYS.lastTouch].map((k) => {
      const t = store.getJson(k, null);
      return t && core.touchCounts(Date.parse(t.at), now, cfg.attributionDays) ? t : null;
    });
  };
  return {
    touches,
    // A page view's touch, unless the page was only reloaded (or reached by
    // back/forward): the same address again is no new touch. The ref and
    // invite params leave the address bar.
    attribute(navigated) {
      const nav = !navigated && performance.getEntriesByType && performance.getEntriesByType('navigation')[0];
      if (nav && (nav.type === 'reload' || nav.type === 'back_forward')) return;
      const t = touchOf(cfg, Date.now());
      if (!t) return;
      if (!touches()[0]) store.set(KEYS.firstTouch, JSON.stringify(t));
      store.set(KEYS.lastTouch, JSON.stringify(t));
      if (hasLink(t)) {
        const clean = new URL(location.href);
        clean.searchParams.delete(cfg.refParam);
        clean.searchParams.delete(cfg.inviteParam);
        replaceState.call(history, history.state, '', clean.pathname + clean.search + clean.hash);
      }
    },
    // What a signup carries: the link of the touch the model chooses, with
    // where it came from for the operator's sources (the campaign tags, a
    // click id's kind, the referring host, the landing path).
    forSignup() {
      const kept = touches();
      const which = core.chosenTouch(hasLink(kept[0]), hasLink(kept[1]), cfg.firstTouch);
      if (which == null) return undefined;
      const t = kept[which];
      const a = { ref: t.ref, invite: t.invite, at: t.at, utm_source: t.utm_source, utm_medium: t.utm_medium, utm_campaign: t.utm_campaign };
      a.click_id = CLICK_IDS.find((c) => t[c]);
      try { if (t.referrer) a.referrer_host = new URL(t.referrer).hostname; } catch (e) { /* not a URL */ }
      try { a.landing_path = new URL(t.landing_url).pathname; } catch (e) { /* none */ }
      return a;
    },
    forget() { store.remove(KEYS.firstTouch); store.remove(KEYS.lastTouch); },
  };
}
