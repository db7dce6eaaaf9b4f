// The script the tag loads (GET /v1/sdk.js), bundled by esbuild with the
// wasm-bindgen glue into one file. It reads the tag's data-* attributes,
// instantiates the wasm, replays the calls the stub queued, and puts the SDK at
// window.refloop. It defines nothing else global.
import init, { Client } from '../../build/sdk/pkg/refloop_sdk.js';

var METHODS = ['track', 'identify', 'page', 'flush', 'anonymousId', 'reset'];

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
  function warn(message) { if (w.console) console.warn('[refloop] ' + message); }
  function num(v) { return v == null || v === '' ? undefined : Number(v); }

  init({ module_or_path: new URL(REFLOOP_WASM_FILE, src) }).then(function () {
    var client = new Client({
      key: data.key,
      api: data.api || new URL(src).origin,
      batchSize: num(data.batchSize),
      flushMs: num(data.flushMs),
    });
    var api = { __refloop: true };
    METHODS.forEach(function (m) {
      // A bad call warns; it never throws into the host page.
      api[m] = function () {
        try { return client[m].apply(client, arguments); } catch (e) { warn(m + ': ' + e); }
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
    warn('could not start: ' + e);
    queue.__loading = false;
  });
})();
