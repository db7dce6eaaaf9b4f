// The demo client site's server: static files from www/, with the edge's
// address and the publishable key filled into HTML. No dependencies.
//   PORT=8080 REFLOOP_EDGE=http://127.0.0.1:8787 REFLOOP_KEY=pk_… node www/serve.mjs
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';

const root = fileURLToPath(new URL('.', import.meta.url));
const port = Number(process.env.PORT || 8080);
const edge = process.env.REFLOOP_EDGE || 'http://127.0.0.1:8787';
const key = process.env.REFLOOP_KEY || 'pk_demo_refloop_public';
// The client's server-side secret: it sends trusted conversions (/api/buy).
const secret = process.env.REFLOOP_SECRET || 'sk_demo_refloop_secret';
const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml' };

// A purchase, reported by the shop's server with the secret key: the trusted
// conversion that completes a referee's quest.
async function buy(req, res) {
  let body = '';
  for await (const chunk of req) body += chunk;
  let anonymousId;
  try { anonymousId = JSON.parse(body).anonymous_id; } catch { /* below */ }
  if (typeof anonymousId !== 'string' || !anonymousId) return send(res, 400, 'anonymous_id is required');
  const r = await fetch(`${edge}/v1/server/events`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${secret}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ events: [{ id: randomUUID(), type: 'track', event: 'purchase', anonymous_id: anonymousId, properties: { plan: 'pro' } }] }),
  });
  res.writeHead(r.status, { 'Content-Type': 'application/json' });
  res.end(await r.text());
}

createServer(async (req, res) => {
  const url = new URL(req.url, 'http://localhost');
  if (req.method === 'POST' && url.pathname === '/api/buy') return buy(req, res);
  let path = normalize(decodeURIComponent(url.pathname)).replace(/^(\.\.[/\\])+/, '');
  if (path.endsWith('/')) path += 'index.html';
  const file = join(root, path);
  if (!file.startsWith(root) || file.endsWith('.mjs')) return send(res, 404, 'not found');
  try {
    let body = await readFile(file);
    const type = types[extname(file)] || 'application/octet-stream';
    if (type.startsWith('text/html')) {
      body = body.toString('utf8').replaceAll('%%REFLOOP_EDGE%%', edge).replaceAll('%%REFLOOP_KEY%%', key);
    }
    res.writeHead(200, { 'Content-Type': type, 'Cache-Control': 'no-store' });
    res.end(body);
  } catch {
    send(res, 404, 'not found');
  }
}).listen(port, '127.0.0.1', () => console.log(`demo site on http://127.0.0.1:${port}/ (edge ${edge})`));

function send(res, status, text) {
  res.writeHead(status, { 'Content-Type': 'text/plain' });
  res.end(text);
}
