// The script the tag loads (GET /v1/sdk.js), bundled by esbuild with the
// wasm-bindgen glue into one file: the browser shell of the SDK. It starts
// the wasm (`core`: every rule), replays the calls the stub queued, mounts
// the widgets the page asks for, and defines nothing global but
// window.refloop. The shell's parts: policy.js (its numbers), storage.js,
// identity.js (and consent), attribution.js, outbox.js, transport.js, and
// client.js (the public API).
import init, * as core from '../../build/sdk/pkg/refloop_sdk.js';
// The wasm's bytes, embedded by the bundler (xtask's --alias): the SDK is
// one request, and ready as soon as it is compiled.
import wasm from 'refloop-sdk-wasm';
import { POLICY, warn } from './policy.js';
import { start } from './client.js';

const METHODS = ['track', 'identify', 'page', 'flush', 'anonymousId', 'reset', 'queuedCount', 'attribution', 'me',
  'invite', 'optIn', 'optOut', 'mount'];

function clamp(v, bounds) {
  const n = v == null || v === '' ? bounds.fallback : Number(v);
  return n >= bounds.min && n <= bounds.max ? n : n > bounds.max ? bounds.max : n < bounds.min ? bounds.min : bounds.fallback;
}

(function () {
  const w = window, stub = w.refloop;
  // Included twice: the first tag owns the instance (loaded or loading).
  if (stub && (stub.__refloop || stub.__loading)) return;
  const queue = Array.isArray(stub) ? stub : [];
  queue.__loading = true;
  // No stub on the page: accept calls while the wasm loads.
  if (!stub) for (const m of METHODS) queue[m] = (...args) => { queue.push([m, ...args]); };
  w.refloop = queue;

  const script = document.currentScript;
  const data = (script && script.dataset) || {};
  const src = (script && script.src) || location.href;

  init({ module_or_path: wasm }).then(() => {
    if (!data.key || !core.isPublishableKey(data.key)) throw new Error('data-key must be a publishable key (pk_…)');
    const client = start({
      src,
      key: data.key,
      api: (data.api || new URL(src).origin).replace(/\/+$/, ''),
      batchSize: clamp(data.batchSize, POLICY.batchSize),
      flushMs: clamp(data.flushMs, POLICY.flushMs),
      refParam: data.refParam || 'ref',
      inviteParam: data.inviteParam || 'invite',
      firstTouch: data.attribution === 'first-touch',
      attributionDays: clamp(data.attributionDays, POLICY.attributionDays),
      cookieDomain: data.cookieDomain,
      pending: data.consent === 'pending',
      plainEmail: data.plainEmail === 'true',
      campaign: data.campaign,
    }, core);
    const api = { __refloop: true };
    for (const m of METHODS) {
      // A bad call warns; it never throws into the host page.
      api[m] = function () {
        try { return client[m].apply(client, arguments); } catch (e) { warn(m + ': ' + e.message); return undefined; }
      };
    }
    const dispatch = (call) => {
      const fn = api[call[0]];
      if (typeof fn === 'function') fn.apply(api, call.slice(1));
      else warn('unknown method ' + call[0]);
    };
    // A copy of a stub method taken before load still pushes here.
    api.push = dispatch;
    w.refloop = api;
    for (const call of queue) dispatch(call);
    // Elements that ask for a widget mount themselves.
    const auto = () => {
      for (const el of document.querySelectorAll('[data-refloop-widget]')) {
        if (!el.__refloop) api.mount(el, el.getAttribute('data-refloop-widget'), {
          theme: el.getAttribute('data-theme') || undefined, lang: el.getAttribute('lang') || undefined,
          campaign: el.getAttribute('data-campaign') || undefined,
        });
      }
    };
    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', auto); else auto();
  }).catch((e) => {
    warn('could not start: ' + ((e && e.message) || e));
    queue.__loading = false;
  });
})();
