// Where the SDK keeps things: localStorage when the browser lets it, memory
// when it throws (a sandboxed frame, a full quota), and nothing in the
// browser while consent is pending (`held`). The identity cookie lives on
// the registrable domain, found by probing.

export function makeStore(held) {
  const memory = {};
  let broken = false;
  const store = { held };
  const local = () => {
    if (broken || store.held) return null;
    try { return window.localStorage; } catch (e) { broken = true; return null; }
  };
  const has = (k) => Object.prototype.hasOwnProperty.call(memory, k);
  store.get = (k) => {
    const s = local();
    if (s) { try { return s.getItem(k); } catch (e) { broken = true; } }
    return has(k) ? memory[k] : null;
  };
  store.set = (k, v) => {
    const s = local();
    if (s) { try { s.setItem(k, v); return; } catch (e) { broken = true; } }
    memory[k] = v;
  };
  store.remove = (k) => {
    const s = local();
    if (s) { try { s.removeItem(k); } catch (e) { broken = true; } }
    delete memory[k];
  };
  store.keys = () => {
    const s = local();
    if (s) {
      try { const out = []; for (let i = 0; i < s.length; i++) out.push(s.key(i)); return out; } catch (e) { broken = true; }
    }
    return Object.keys(memory);
  };
  // Consent given: what was kept in memory moves to the browser's storage.
  store.release = () => {
    store.held = false;
    for (const k of Object.keys(memory)) store.set(k, memory[k]);
  };
  // JSON values; a corrupted one reads as `fallback`.
  store.getJson = (k, fallback) => {
    try { const v = JSON.parse(store.get(k)); return v == null ? fallback : v; } catch (e) { return fallback; }
  };
  return store;
}

// The shortest parent domain the browser accepts a cookie on: it refuses
// public suffixes, so this is the registrable domain.
export function cookieDomain(configured) {
  if (configured) return configured;
  const host = location.hostname, labels = host.split('.');
  if (labels.length < 2 || /^[\d.]+$|:/.test(host)) return '';
  for (let n = 2; n <= labels.length; n++) {
    const d = labels.slice(-n).join('.');
    document.cookie = 'refloop_probe=1;domain=' + d + ';path=/;SameSite=Lax';
    if (document.cookie.indexOf('refloop_probe=1') >= 0) {
      document.cookie = 'refloop_probe=;domain=' + d + ';path=/;max-age=0';
      return d;
    }
  }
  return '';
}

export function readCookie(name) {
  const m = document.cookie.match(new RegExp('(?:^|; )' + name + '=([^;]*)'));
  return m ? decodeURIComponent(m[1]) : null;
}

export function writeCookie(name, value, maxAgeS, domain) {
  document.cookie = name + '=' + value + ';path=/;max-age=' + maxAgeS + ';SameSite=Lax'
    + (domain ? ';domain=' + domain : '') + (location.protocol === 'https:' && maxAgeS ? ';Secure' : '');
}
