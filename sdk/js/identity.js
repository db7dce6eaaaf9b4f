// Who the visitor is and what they allowed: consent (granted, pending until
// optIn(), or denied, remembered across pages), the anonymous id (a
// first-party cookie and localStorage, each restoring the other), the user
// id with the site's signature of it, and emails hashed before they leave.
import { KEYS, POLICY } from './policy.js';
import { cookieDomain, readCookie, writeCookie } from './storage.js';

export function makeIdentity(cfg, store, newId) {
  // A choice made on an earlier page is remembered, and an optOut() holds on
  // every page after it, whatever the tag says.
  let remembered = null;
  try { remembered = localStorage.getItem(KEYS.consent); } catch (e) { /* no storage */ }
  const id = {
    consent: remembered === 'denied' ? 'denied' : cfg.pending ? remembered || 'pending' : 'granted',
    anonymousId: null,
    userId: null,
    userHash: null,
    domain: '',
  };
  id.granted = () => id.consent === 'granted';
  store.held = !id.granted();
  id.domain = store.held ? '' : cookieDomain(cfg.cookieDomain);

  const saved = store.getJson(KEYS.user, null);
  if (saved) { id.userId = saved.id || null; id.userHash = saved.hash || null; }
  id.keepUser = () => {
    if (id.userId) store.set(KEYS.user, JSON.stringify({ id: id.userId, hash: id.userHash }));
    else store.remove(KEYS.user);
  };
  id.keepId = () => {
    store.set(KEYS.anonymousId, id.anonymousId);
    if (!store.held) writeCookie(KEYS.cookie, id.anonymousId, POLICY.cookieMaxAgeS, id.domain);
  };
  id.anonymousId = readCookie(KEYS.cookie) || store.get(KEYS.anonymousId) || newId();
  id.keepId();

  id.identify = (user, options) => {
    if (user !== id.userId) id.userHash = null;
    id.userId = user;
    // { userHash }: the site's server's HMAC of the user id (README).
    if (options && typeof options.userHash === 'string') id.userHash = options.userHash;
    id.keepUser();
  };
  id.reset = () => {
    id.anonymousId = newId();
    id.keepId();
    id.userId = null;
    id.userHash = null;
    id.keepUser();
  };
  id.optIn = () => {
    id.consent = 'granted';
    store.release();
    try { localStorage.setItem(KEYS.consent, 'granted'); } catch (e) { /* memory only */ }
    id.domain = cookieDomain(cfg.cookieDomain);
    id.keepId();
  };
  // Forget everything this module keeps; the caller forgets the rest.
  id.optOut = () => {
    id.consent = 'denied';
    store.remove(KEYS.anonymousId);
    store.remove(KEYS.user);
    writeCookie(KEYS.cookie, '', 0, id.domain);
    try { localStorage.setItem(KEYS.consent, 'denied'); } catch (e) { /* memory only */ }
    id.anonymousId = newId();
    id.userId = null;
    id.userHash = null;
  };
  return id;
}

// Lower case; Gmail without dots and +tags (the core's `normalise_email`).
export function normaliseEmail(email) {
  const e = String(email).trim().toLowerCase(), at = e.lastIndexOf('@');
  if (at < 1 || e.indexOf('.', at) < 0) return null;
  let local = e.slice(0, at).split('+')[0], domain = e.slice(at + 1);
  if (domain === 'googlemail.com') domain = 'gmail.com';
  if (domain === 'gmail.com') local = local.replace(/\./g, '');
  return local ? local + '@' + domain : null;
}

// Traits with `email` replaced by the SHA-256 of its normal form and its
// domain: the address never leaves the browser (unless data-plain-email).
export function hashedEmail(traits) {
  const rest = {};
  for (const k of Object.keys(traits)) if (k !== 'email') rest[k] = traits[k];
  const normal = normaliseEmail(traits.email);
  if (!normal || !(window.crypto && crypto.subtle)) return Promise.resolve(rest);
  return crypto.subtle.digest('SHA-256', new TextEncoder().encode(normal)).then((buf) => {
    rest.email_sha256 = Array.from(new Uint8Array(buf), (b) => (b < 16 ? '0' : '') + b.toString(16)).join('');
    rest.email_domain = normal.split('@')[1];
    return rest;
  });
}
