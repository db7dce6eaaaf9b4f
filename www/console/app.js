// The refloop console, served by the edge at /admin. Signed in with a secret
// key kept in sessionStorage only; every screen is the admin API, drawn.
import uPlot from 'uplot';

const app = document.getElementById('app');
const KEY = 'refloop.console.key';
const key = () => sessionStorage.getItem(KEY);

function esc(v) {
  return String(v == null ? '' : v).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

async function api(method, path, body) {
  const r = await fetch(`/v1/admin${path}`, {
    method,
    headers: { Authorization: `Bearer ${key()}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (r.status === 401) { sessionStorage.removeItem(KEY); location.hash = '#/login'; throw new Error('signed out'); }
  const type = r.headers.get('Content-Type') || '';
  const data = type.includes('json') ? await r.json() : await r.text();
  if (!r.ok) {
    const e = new Error(data.error ? data.error.message : `HTTP ${r.status}`);
    e.code = data.error && data.error.code;
    throw e;
  }
  return data;
}

const when = (iso) => (iso ? new Date(iso).toLocaleString() : '');
const table = (heads, rows) => `<table><thead><tr>${heads.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.join('') || `<tr><td colspan="${heads.length}" class="mu">Nothing yet.</td></tr>`}</tbody></table>`;

// ---- sign in -------------------------------------------------------------------

function login(message) {
  app.innerHTML = `<section><h1>Sign in</h1><p class="mu">Your site's secret key. It stays in this tab (sessionStorage) and goes only to this edge.</p>
    <form id="f" class="row"><input id="k" type="password" autocomplete="off" placeholder="sk_…" aria-label="Secret key" size="40" required><button>Sign in</button></form>
    <p class="err" id="e">${esc(message || '')}</p></section>`;
  document.getElementById('f').onsubmit = async (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(KEY, document.getElementById('k').value.trim());
    // One render: a hash change routes by itself (rendering twice could wipe what was just typed).
    try {
      await api('GET', '/campaigns');
      if (location.hash === '#/') route(); else location.hash = '#/';
    } catch (e) { login(e.message); }
  };
}

// ---- campaigns -------------------------------------------------------------------

async function campaigns() {
  const { campaigns } = await api('GET', '/campaigns');
  app.innerHTML = `<section><h1>Campaigns</h1>${table(['Campaign', 'Status', 'Version'], campaigns.map((c) =>
    `<tr><td><a href="#/c/${esc(c.slug)}/config">${esc(c.name)}</a> <span class="mu">${esc(c.slug)}</span></td><td>${esc(c.status)}</td><td>${c.version}</td></tr>`))}</section>
    <section><h2>New campaign</h2><form id="new" class="row">
      <input id="slug" placeholder="slug, e.g. spring-launch" aria-label="Slug" required pattern="[a-z0-9-]+">
      <select id="preset" aria-label="Start from">${['waitlist', 'signup', 'conversion', 'reactivation', 'cross_sell', 'renewal', 'feedback', 'product_education', 'switch_up', 'newsletter'].map((p) => `<option>${p}</option>`).join('')}</select>
      <button>Create</button></form><p class="err" id="e"></p></section>`;
  document.getElementById('new').onsubmit = async (ev) => {
    ev.preventDefault();
    try {
      const c = await api('POST', '/campaigns', { slug: document.getElementById('slug').value.trim(), preset: document.getElementById('preset').value });
      location.hash = `#/c/${c.slug}/config`;
    } catch (e) { document.getElementById('e').textContent = e.message; }
  };
}

// The configuration form, driven by this description of the schema: scalar
// fields as inputs, lists and objects as JSON, each with its JSON path so the
// API's validation errors land next to their field.
const SCHEMA = [
  { path: 'name', label: 'Name', type: 'text' },
  { path: 'mode', label: 'Mode', type: 'select', options: ['code', 'invite'] },
  { path: 'landing_url', label: 'Landing URL (where referral links go)', type: 'text' },
  { path: 'starts_at', label: 'Starts at (RFC 3339)', type: 'text' },
  { path: 'ends_at', label: 'Ends at (RFC 3339)', type: 'text' },
  { path: 'attribution_window_days', label: 'Attribution window (days)', type: 'number' },
  { path: 'code_valid_days', label: 'Referral codes valid for (days; empty: always)', type: 'number' },
  { path: 'share_text', label: 'Share text', type: 'text' },
  { path: 'quest', label: 'Quest (steps, window)', type: 'json' },
  { path: 'point_rules', label: 'Point rules', type: 'json' },
  { path: 'milestones', label: 'Milestones', type: 'json' },
  { path: 'rewards', label: 'Rewards', type: 'json' },
  { path: 'referee_reward', label: 'Referee reward (id)', type: 'text' },
  { path: 'end_distributions', label: 'End-of-campaign distributions', type: 'json' },
  { path: 'caps', label: 'Caps', type: 'json' },
  { path: 'fraud', label: 'Fraud signals', type: 'json' },
  { path: 'leaderboard', label: 'Leaderboard', type: 'json' },
];

function field(f, config) {
  const v = config[f.path];
  const id = `f-${f.path}`;
  let input;
  if (f.type === 'select') input = `<select id="${id}">${f.options.map((o) => `<option${o === v ? ' selected' : ''}>${o}</option>`).join('')}</select>`;
  else if (f.type === 'json') input = `<textarea id="${id}" rows="${Math.min(14, JSON.stringify(v ?? null, null, 2).split('\n').length + 1)}">${esc(JSON.stringify(v ?? null, null, 2))}</textarea>`;
  else input = `<input id="${id}" type="${f.type}" value="${esc(v ?? '')}" size="60">`;
  return `<label for="${id}">${esc(f.label)} <span class="err" id="e-${f.path}"></span></label>${input}`;
}

function readForm(base) {
  const config = { ...base };
  const problems = [];
  for (const f of SCHEMA) {
    const raw = document.getElementById(`f-${f.path}`).value;
    if (f.type === 'json') {
      try { const v = JSON.parse(raw); if (v === null) delete config[f.path]; else config[f.path] = v; } catch (e) { problems.push([f.path, `not JSON: ${e.message}`]); }
    } else if (raw === '') delete config[f.path];
    else if (f.type === 'number') config[f.path] = Number(raw);
    else config[f.path] = raw;
  }
  return { config, problems };
}

function showErrors(message) {
  for (const el of document.querySelectorAll('[id^="e-"]')) el.textContent = '';
  const rest = [];
  for (const part of message.split('; ')) {
    const [path, ...why] = part.split(': ');
    const top = path.split(/[.[]/)[0];
    const el = document.getElementById(`e-${top}`);
    if (el) el.textContent = `${path}: ${why.join(': ')}`; else rest.push(part);
  }
  document.getElementById('e').textContent = rest.join('; ');
}

// A line diff (longest common subsequence) of two texts.
function diff(a, b) {
  const x = a.split('\n'), y = b.split('\n');
  const n = x.length, m = y.length, L = Array.from({ length: n + 1 }, () => new Array(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) L[i][j] = x[i] === y[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  const out = [];
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && x[i] === y[j]) { out.push(`  ${esc(x[i])}`); i++; j++; }
    else if (j < m && (i === n || L[i][j + 1] >= L[i + 1][j])) { out.push(`<span class="add">+ ${esc(y[j])}</span>`); j++; }
    else { out.push(`<span class="del">- ${esc(x[i])}</span>`); i++; }
  }
  return out.join('\n');
}

async function config(slug) {
  const c = await api('GET', `/campaigns/${slug}`);
  const { versions } = await api('GET', `/campaigns/${slug}/versions`);
  return `<section><h2>Configuration <span class="mu">version ${c.version}</span></h2>
    <form id="cfg">${SCHEMA.map((f) => field(f, c.config)).join('')}
    <p class="row"><button>Save as version ${c.version + 1}</button>
      <select id="status" aria-label="Status">${['active', 'paused', 'ended'].map((s) => `<option${s === c.status ? ' selected' : ''}>${s}</option>`).join('')}</select>
      <button type="button" class="o" id="setStatus">Set status</button></p><p class="err" id="e"></p></form></section>
    <section><h2>Version history</h2>${table(['Version', 'Saved', ''], versions.slice().reverse().map((v) =>
      `<tr><td>${v.version}</td><td>${when(v.created_at)}</td><td>${v.version === c.version ? '<span class="mu">current</span>' : `<button class="o" data-v="${v.version}">Diff with current</button>`}</td></tr>`))}
      <pre class="diff" id="diff"></pre></section>`;
}

function wireConfig(slug, c, versions) {
  document.getElementById('cfg').onsubmit = async (ev) => {
    ev.preventDefault();
    const { config, problems } = readForm(c.config);
    if (problems.length) return showErrors(problems.map((p) => `${p[0]}: ${p[1]}`).join('; '));
    try { await api('PUT', `/campaigns/${slug}`, { config, version: c.version }); route(); } catch (e) { showErrors(e.message); }
  };
  document.getElementById('setStatus').onclick = async () => {
    await api('POST', `/campaigns/${slug}/status`, { status: document.getElementById('status').value });
    route();
  };
  for (const b of document.querySelectorAll('[data-v]')) {
    b.onclick = () => {
      const old = versions.find((v) => v.version === Number(b.dataset.v));
      document.getElementById('diff').innerHTML = diff(JSON.stringify(old.config, null, 2), JSON.stringify(c.config, null, 2));
    };
  }
}

// ---- participants, referrals, grants, leaderboard, stats, webhooks -------------------

async function participants(slug, q) {
  const { participants } = await api('GET', `/campaigns/${slug}/participants?q=${encodeURIComponent(q || '')}&limit=50`);
  return `<section><h2>Participants</h2><form id="search" class="row"><input id="q" value="${esc(q || '')}" placeholder="code, user id or anonymous id" aria-label="Search participants" size="40"><button>Search</button></form>
    ${table(['Code', 'User', 'Joined', 'Confirmed', 'Points'], participants.map((p) =>
      `<tr><td><a href="#/c/${esc(slug)}/p/${p.id}">${esc(p.code)}</a></td><td>${esc(p.user_id || p.anonymous_id || '')}</td><td>${when(p.joined_at)}</td><td>${p.confirmed_referrals}</td><td>${p.points}</td></tr>`))}</section>`;
}

async function ledger(slug, id) {
  const [l, c] = await Promise.all([api('GET', `/campaigns/${slug}/participants/${id}/ledger?limit=200`), api('GET', `/campaigns/${slug}`)]);
  const rewards = (c.config.rewards || []).map((r) => `<option value="${esc(r.id)}">${esc(r.name)} (${esc(r.id)})</option>`).join('');
  return `<section><h2>Ledger of ${esc(l.participant.code)} <span class="mu">${l.score} points = the sum of ${l.entries.length} entries</span></h2>
    ${table(['When', 'Points', 'Why', 'Source', 'Key'], l.entries.map((e) => `<tr><td>${when(e.at)}</td><td>${e.points > 0 ? '+' : ''}${e.points}</td><td>${esc(e.reason.type)} ${esc(e.reason.rule || e.reason.reward || e.reason.note || '')}</td><td class="mu">${esc(e.source_event || '')}</td><td class="mu">${esc(e.idempotency_key)}</td></tr>`))}
    <form id="adjust" class="row" style="margin-top:.8rem"><input id="pts" type="number" placeholder="points" aria-label="Points" required><input id="note" placeholder="why" aria-label="Note" required size="30"><button>Adjust</button></form><p class="err" id="e"></p></section>
    <section><h2>Give a reward by hand</h2><p class="mu">Caps apply as to any grant; the note is kept in the audit log.</p>
    <form id="give" class="row"><select id="reward" aria-label="Reward" required>${rewards}</select><input id="gnote" placeholder="why, e.g. contest winner" aria-label="Why" required size="30"><button>Give</button></form><p class="err" id="ge"></p><p id="gdone" class="mu"></p></section>
    <section><h2>Referral code</h2><p class="mu">A new code retires the old one: its links land on your site without a referral, and no one else can ever take it.</p>
    <form id="code" class="row"><input id="vanity" placeholder="vanity code, e.g. ANNA (or empty for a fresh one)" aria-label="New code" size="36" maxlength="20"><button>Give this code</button></form><p class="err" id="ce"></p><p id="cdone" class="mu"></p></section>`;
}

async function referrals(slug, review) {
  const { referrals } = await api('GET', `/campaigns/${slug}/referrals?limit=200${review ? '&review=pending' : ''}`);
  return `<section><h2>Referrals</h2><p class="row"><a href="#/c/${esc(slug)}/referrals">All</a> <a href="#/c/${esc(slug)}/review">Waiting for review</a></p>
    ${table(['Referrer', 'Referee', 'Status', 'Review', 'Flags', 'Started', ''], referrals.map((r) =>
      `<tr data-referral="${r.id}"><td>${esc(r.referrer.code)}</td><td>${esc(r.referee.code)}</td><td class="status">${esc(r.status)}</td><td>${esc(r.review)}</td>
       <td>${(r.flags || []).map((f) => `<span class="flag">${esc(f)}</span>`).join('')}</td><td>${when(r.created_at)}</td>
       <td>${r.review === 'pending' ? `<button data-approve="${r.id}">Approve</button> <button class="o" data-reject="${r.id}">Reject</button>` : ''}</td></tr>`))}</section>`;
}

const NEXT = {
  earned: ['pending_review', 'approved', 'rejected', 'expired'], pending_review: ['approved', 'rejected', 'expired'],
  approved: ['fulfilled', 'expired', 'revoked'], fulfilled: ['redeemed', 'expired', 'revoked'], redeemed: ['revoked'],
};

async function grants(slug) {
  const { grants } = await api('GET', `/campaigns/${slug}/grants?limit=200`);
  return `<section><h2>Reward grants</h2>${table(['Participant', 'Reward', 'Status', 'Token', 'History', 'Move to'], grants.map((g) =>
    `<tr data-grant="${g.id}"><td>${esc(g.participant.code)}</td><td>${esc(g.reward)}</td><td class="status">${esc(g.status)}</td><td>${esc(g.token || '')}</td>
     <td class="mu">${g.history.map((h) => esc(h.to)).join(' → ')}</td>
     <td>${(NEXT[g.status] || []).map((s) => `<button class="o" data-grant-to="${s}" data-id="${g.id}">${esc(s)}</button>`).join(' ')}</td></tr>`))}</section>`;
}

async function board(slug) {
  const { snapshots } = await api('GET', `/campaigns/${slug}/snapshots?limit=10`);
  const last = snapshots[0];
  return `<section><h2>Leaderboard</h2><p class="row"><button id="snap">Take a snapshot now</button>${last ? `<span class="mu">latest: ${when(last.taken_at)}</span>` : ''}</p>
    ${last ? table(['Rank', 'Code', 'Score'], last.rows.slice(0, 25).map((r) => `<tr><td>#${r.rank}</td><td>${esc(r.code)}</td><td>${r.score}</td></tr>`)) : '<p class="mu">No snapshot yet.</p>'}</section>
    <section><h2>Snapshots</h2>${table(['Taken', 'Period', 'Rows'], snapshots.map((s) => `<tr><td>${when(s.taken_at)}</td><td>${esc(s.period)}</td><td>${s.rows.length}</td></tr>`))}</section>`;
}

async function stats(slug) {
  return `<section><h2>Funnel</h2><div id="funnel" class="chart"></div><p id="funnelText" class="mu"></p></section>
    <section><h2>Daily trend, last 30 days</h2><div id="trend" class="chart"></div></section>
    <section><h2>Sources</h2><div id="sources"></div></section>
    <section><h2>Money</h2><div id="money"></div></section>
    <section><h2>Export</h2><p class="row">${['participants', 'referrals', 'grants'].map((of) => `<button class="o" data-csv="${of}">Download ${of} (CSV)</button>`).join(' ')}</p></section>`;
}

async function drawStats(slug) {
  // The exports first: they need none of the charts.
  for (const b of document.querySelectorAll('[data-csv]')) {
    b.onclick = async () => {
      const of = b.dataset.csv;
      const text = await api('GET', `/campaigns/${slug}/export.csv?of=${of}`);
      const a = document.createElement('a');
      a.href = URL.createObjectURL(new Blob([text], { type: 'text/csv' }));
      a.download = `${slug}-${of}.csv`;
      a.click();
    };
  }
  const [{ funnel }, { days }] = await Promise.all([api('GET', `/campaigns/${slug}/stats/funnel`), api('GET', `/campaigns/${slug}/stats/trend`)]);
  const width = Math.min(document.getElementById('app').clientWidth - 40, 1000);
  const bars = uPlot.paths.bars({ size: [0.6, 80] });
  new uPlot({
    width, height: 220, title: 'Clicked → signed up → confirmed',
    scales: { x: { time: false, range: [-0.6, 2.6] }, y: { range: (u, min, max) => [0, max * 1.1] } }, legend: { show: false },
    axes: [{ values: (u, ticks) => ticks.map((t) => ['Clicks', 'Signups', 'Confirmed'][t] || '') }, {}],
    series: [{}, { label: 'count', stroke: '#3949c7', fill: 'rgba(57,73,199,.35)', paths: bars }],
  }, [[0, 1, 2], [funnel.clicks, funnel.signups, funnel.confirmed]], document.getElementById('funnel'));
  document.getElementById('funnelText').textContent = `${funnel.clicks} clicks, ${funnel.signups} referred signups, ${funnel.confirmed} confirmed; K-factor ${funnel.k_factor.toFixed(2)}`;
  new uPlot({
    width, height: 260,
    series: [{}, { label: 'Clicks', stroke: '#9aa8ff' }, { label: 'Signups', stroke: '#3949c7' }, { label: 'Confirmed', stroke: '#1f8a4c', width: 2 }],
  }, [days.map((d) => Date.parse(d.day) / 1000), days.map((d) => d.clicks), days.map((d) => d.signups), days.map((d) => d.confirmed)], document.getElementById('trend'));
  const { sources } = await api('GET', `/campaigns/${slug}/stats/sources`);
  document.getElementById('sources').innerHTML = table(['Source', 'Referrals', 'Confirmed'],
    sources.map((x) => `<tr><td>${esc(x.source)}</td><td>${x.referrals}</td><td>${x.confirmed}</td></tr>`));
  const money = await api('GET', `/campaigns/${slug}/stats/money`);
  const fmt = (minor, cur) => `${(minor / 100).toFixed(2)} ${esc(cur)}`;
  document.getElementById('money').innerHTML = (money.budget ? `<p>Budget ${fmt(money.budget.amount_minor, money.budget.currency)}: ${fmt(money.budget.committed_minor, money.budget.currency)} committed, ${fmt(money.budget.left_minor, money.budget.currency)} left.</p>` : '')
    + table(['Currency', 'Committed', 'By status'], money.currencies.map((c) => `<tr><td>${esc(c.currency)}</td><td>${fmt(c.committed_minor, c.currency)}</td><td class="mu">${Object.entries(c.by_status).map(([k, v]) => `${esc(k)}: ${v.grants} (${fmt(v.amount_minor, c.currency)})`).join(', ')}</td></tr>`));
}

async function answers(slug, q) {
  const { answers } = await api('GET', `/campaigns/${slug}/answers?limit=200${q ? `&q=${encodeURIComponent(q)}` : ''}`);
  return `<section><h2>Why it did not count</h2><p class="mu">Every refused referral and every reward a cap withheld, with its reason.</p>
    <form id="asearch" class="row"><input id="aq" value="${esc(q)}" placeholder="anonymous id, user id, code or email" aria-label="Search answers"><button>Search</button></form>
    ${table(['When', 'Who', 'Code', 'What', 'Reason'], answers.map((a) => `<tr><td>${when(a.at)}</td><td>${esc(a.user_id || a.anonymous_id || '')}</td><td>${esc(a.code || '')}</td><td>${esc(a.kind)}</td><td class="status">${esc(a.reason)}</td></tr>`))}</section>`;
}

async function program(slug) {
  const [check, { versions }] = await Promise.all([api('GET', `/campaigns/${slug}/check`), api('GET', `/campaigns/${slug}/versions`)]);
  return `<section><h2>Invariants</h2><p id="check" class="${check.violations.length ? 'err' : 'mu'}">${check.violations.length ? esc(check.violations.join(', ')) : 'Every score is its ledger sum; every count holds.'}</p></section>
    <section><h2>Replay under a version</h2><p class="mu">Every input again under another version: the correcting entries are previewed, then appended (never edits).</p>
      <p class="row"><select id="rv" aria-label="Version">${versions.map((v) => `<option value="${v.version}">version ${v.version}</option>`).join('')}</select>
      <button id="preview" class="o">Preview</button><button id="apply">Apply</button></p><div id="replay"></div></section>
    <section><h2>Redeem a coupon or token</h2><form id="redeem" class="row"><input id="token" placeholder="token" aria-label="Token" required>
      <button type="button" id="tcheck" class="o">Check</button><button>Redeem</button></form><p id="tout" role="status"></p></section>
    <section><h2>End the campaign</h2><p class="mu">Runs the end distributions now (top N, minimum score or referrals, the raffle with a recorded seed). Preview first: it shows who would get what and keeps nothing; ending with the same seed grants the same people.</p>
      <p class="row"><input id="seed" inputmode="numeric" pattern="[0-9]{1,19}" aria-label="Raffle seed" placeholder="raffle seed" size="22">
      <button id="endpreview" class="o">Preview</button><button id="end">End now</button></p><div id="ended"></div></section>`;
}

function wireProgram(slug) {
  const replay = async (apply) => {
    const r = await api('POST', `/campaigns/${slug}/replay`, { version: Number(document.getElementById('rv').value), apply });
    document.getElementById('replay').innerHTML = `<p class="mu">${r.corrections.length} corrections, ${r.points} points${r.applied ? ', appended' : ', not applied'}</p>`
      + table(['Participant', 'Points', 'Corrects'], r.corrections.map((c) => `<tr><td>${c.participant}</td><td>${c.points}</td><td class="mu">${esc(c.corrects)}</td></tr>`));
  };
  document.getElementById('preview').onclick = () => replay(false);
  document.getElementById('apply').onclick = () => replay(true);
  const redeem = async (check) => {
    try {
      const r = await api('POST', `/campaigns/${slug}/redeem`, { token: document.getElementById('token').value.trim(), check });
      document.getElementById('tout').textContent = check ? `valid: ${r.grant.reward} (${r.grant.status})` : `redeemed: ${r.grant.reward}`;
    } catch (e) { document.getElementById('tout').textContent = e.message; }
  };
  document.getElementById('tcheck').onclick = () => redeem(true);
  document.getElementById('redeem').onsubmit = (ev) => { ev.preventDefault(); redeem(false); };
  // A seed typed (or the one a preview drew) makes the end draw the same raffle.
  const end = async (preview) => {
    const typed = document.getElementById('seed').value.trim();
    try {
      const r = await api('POST', `/campaigns/${slug}/end`, typed ? { seed: typed, preview } : { preview });
      document.getElementById('seed').value = r.seed;
      document.getElementById('ended').innerHTML = `<p>${preview ? 'If it ended now (nothing kept)' : 'Ended'}: ${r.grants.length} grants. Raffle seed ${esc(r.seed)}.${r.capped.length ? ` Withheld: ${esc(r.capped.join('; '))}.` : ''}</p>`
        + table(['Participant', 'Reward', 'Status', 'Token'], r.awarded.map((g) => `<tr><td>${esc(g.participant.code)}</td><td>${esc(g.reward)}</td><td class="status">${esc(g.status)}</td><td>${esc(g.token || '')}</td></tr>`));
    } catch (e) { document.getElementById('ended').innerHTML = `<p class="err">${esc(e.message)}</p>`; }
  };
  document.getElementById('endpreview').onclick = () => end(true);
  document.getElementById('end').onclick = async () => {
    if (!window.confirm('End this campaign now? This cannot be undone.')) return;
    await end(false);
  };
}

async function webhooks() {
  const { webhooks } = await api('GET', '/webhooks');
  const logs = await Promise.all(webhooks.map((w) => api('GET', `/webhooks/${w.id}/deliveries?limit=10`)));
  return `<section><h2>Webhooks</h2>${table(['URL', 'Events', 'Active', 'Recent deliveries'], webhooks.map((w, i) =>
    `<tr><td>${esc(w.url)}</td><td>${esc(w.events)}</td><td>${w.active ? 'yes' : 'no'}</td><td class="mu">${logs[i].deliveries.map((d) =>
      `${esc(d.type)}: ${d.delivered_at ? `delivered (${d.last_status})` : `${d.attempts} attempts${d.last_status ? `, last ${d.last_status}` : ''}`}`).join('<br>') || 'none'}</td></tr>`))}
    <form id="hook" class="row" style="margin-top:.8rem"><input id="url" placeholder="https://…" aria-label="Webhook URL" size="40" required><button>Add</button></form>
    <p class="err" id="e"></p><p id="secret" class="mu"></p></section>`;
}

// ---- sites, keys and origins -------------------------------------------------------------

async function sites() {
  const { sites } = await api('GET', '/sites');
  return `<section><h1>Sites</h1><p class="mu">Every site of your account, with its publishable key and the origins its pages may send from. Any secret key of the account manages all of them.</p>
    ${sites.map((s) => `<section data-site="${s.id}"><h2>${esc(s.name)} <span class="mu">#${s.id}</span></h2>
      <p>Publishable key <code class="pk">${esc(s.publishable_key)}</code>${s.previous_keys_valid_until ? ` <span class="mu">(the previous keys work until ${when(s.previous_keys_valid_until)})</span>` : ''}</p>
      <label for="o${s.id}">Origins, one per line</label><textarea id="o${s.id}" rows="3">${esc(s.origins.join('\n'))}</textarea>
      <p class="row"><button data-origins="${s.id}">Save origins</button>
      <input id="g${s.id}" type="number" min="0" max="720" value="24" aria-label="Hours the old keys keep working" style="width:6em"> <span class="mu">hours for the old keys</span>
      <button class="o" data-rotate="${s.id}">Rotate keys</button></p><p class="err" data-err="${s.id}"></p><p class="mu" data-keys="${s.id}"></p></section>`).join('')}
    </section>
    <section><h2>New site</h2><form id="newsite" class="row"><input id="sname" placeholder="name, e.g. shop.example" aria-label="Site name" required>
      <input id="sorigins" placeholder="https://shop.example" aria-label="Origins (space-separated)" size="40"><button>Create</button></form>
      <p class="err" id="se"></p><p class="mu" id="skeys"></p></section>`;
}

const origins = (text) => text.split(/[\s,]+/).map((o) => o.trim()).filter(Boolean);
const keysShownOnce = (k) => `Publishable key ${k.publishable_key}; secret key (shown once, only its hash is kept): ${k.secret_key}`;

function wireSites() {
  for (const b of document.querySelectorAll('[data-origins]')) {
    b.onclick = async () => {
      const id = b.dataset.origins;
      try {
        await api('PUT', `/sites/${id}/origins`, { origins: origins(document.getElementById(`o${id}`).value) });
        await showSites();
      } catch (e) { document.querySelector(`[data-err="${id}"]`).textContent = e.message; }
    };
  }
  for (const b of document.querySelectorAll('[data-rotate]')) {
    b.onclick = async () => {
      const id = b.dataset.rotate;
      try {
        const k = await api('POST', `/sites/${id}/keys`, { grace_hours: Number(document.getElementById(`g${id}`).value) });
        await showSites();
        document.querySelector(`[data-keys="${id}"]`).textContent = keysShownOnce(k);
      } catch (e) { document.querySelector(`[data-err="${id}"]`).textContent = e.message; }
    };
  }
  document.getElementById('newsite').onsubmit = async (ev) => {
    ev.preventDefault();
    try {
      const k = await api('POST', '/sites', { name: document.getElementById('sname').value.trim(), origins: origins(document.getElementById('sorigins').value) });
      await showSites();
      document.getElementById('skeys').textContent = keysShownOnce(k);
    } catch (e) { document.getElementById('se').textContent = e.message; }
  };
}

async function showSites() {
  app.innerHTML = await sites();
  wireSites();
}

// ---- routing ---------------------------------------------------------------------------

const TABS = [['config', 'Configuration'], ['participants', 'Participants'], ['referrals', 'Referrals'], ['answers', 'Answers'], ['grants', 'Grants'], ['leaderboard', 'Leaderboard'], ['stats', 'Stats'], ['program', 'End & replay'], ['webhooks', 'Webhooks']];

async function route() {
  if (!key()) return login();
  const parts = location.hash.replace(/^#\/?/, '').split('/');
  if (parts[0] === 'logout') { sessionStorage.removeItem(KEY); location.hash = '#/login'; return login(); }
  if (parts[0] === 'login') return login();
  document.getElementById('nav').innerHTML = '<a href="#/">Campaigns</a> <a href="#/sites">Sites &amp; keys</a>';
  try {
    if (parts[0] === 'sites') return await showSites();
    if (parts[0] !== 'c') return await campaigns();
    const slug = decodeURIComponent(parts[1]);
    const tab = parts[2] || 'config';
    const head = `<h1>${esc(slug)}</h1><p class="tabs">${TABS.map(([t, l]) => `<a href="#/c/${esc(slug)}/${t}" class="${t === tab || (tab === 'p' && t === 'participants') || (tab === 'review' && t === 'referrals') ? 'on' : ''}">${l}</a>`).join('')}</p>`;
    if (tab === 'config') {
      const [c, { versions }] = await Promise.all([api('GET', `/campaigns/${slug}`), api('GET', `/campaigns/${slug}/versions`)]);
      app.innerHTML = head + await config(slug);
      wireConfig(slug, c, versions);
    } else if (tab === 'participants') {
      app.innerHTML = head + await participants(slug, parts[3] ? decodeURIComponent(parts[3]) : '');
      document.getElementById('search').onsubmit = (ev) => { ev.preventDefault(); location.hash = `#/c/${slug}/participants/${encodeURIComponent(document.getElementById('q').value)}`; };
    } else if (tab === 'p') {
      app.innerHTML = head + await ledger(slug, parts[3]);
      document.getElementById('adjust').onsubmit = async (ev) => {
        ev.preventDefault();
        try {
          await api('POST', `/campaigns/${slug}/participants/${parts[3]}/adjustments`, { points: Number(document.getElementById('pts').value), note: document.getElementById('note').value });
          route();
        } catch (e) { document.getElementById('e').textContent = e.message; }
      };
      document.getElementById('give').onsubmit = async (ev) => {
        ev.preventDefault();
        try {
          const given = await api('POST', `/campaigns/${slug}/participants/${parts[3]}/grants`, { reward: document.getElementById('reward').value, note: document.getElementById('gnote').value });
          document.getElementById('gdone').textContent = given.grant ? `Given: ${given.grant.reward}, ${given.grant.status}${given.grant.token ? `, token ${given.grant.token}` : ''}.` : 'Given before.';
        } catch (e) { document.getElementById('ge').textContent = e.message; }
      };
      document.getElementById('code').onsubmit = async (ev) => {
        ev.preventDefault();
        const code = document.getElementById('vanity').value.trim();
        try {
          const given = await api('POST', `/campaigns/${slug}/participants/${parts[3]}/code`, code ? { code } : {});
          await route();
          document.getElementById('cdone').textContent = given.duplicate ? `${given.code} was theirs already.` : `Now ${given.code}; ${given.previous_code} is retired.`;
        } catch (e) { document.getElementById('ce').textContent = e.message; }
      };
    } else if (tab === 'referrals' || tab === 'review') {
      app.innerHTML = head + await referrals(slug, tab === 'review');
      for (const b of document.querySelectorAll('[data-approve],[data-reject]')) {
        b.onclick = async () => {
          const id = b.dataset.approve || b.dataset.reject;
          await api('POST', `/campaigns/${slug}/referrals/${id}/review`, { approve: Boolean(b.dataset.approve) });
          route();
        };
      }
    } else if (tab === 'grants') {
      app.innerHTML = head + await grants(slug);
      for (const b of document.querySelectorAll('[data-grant-to]')) {
        b.onclick = async () => { await api('POST', `/campaigns/${slug}/grants/${b.dataset.id}/transitions`, { to: b.dataset.grantTo, note: 'from the console' }); route(); };
      }
    } else if (tab === 'leaderboard') {
      app.innerHTML = head + await board(slug);
      document.getElementById('snap').onclick = async () => { await api('POST', `/campaigns/${slug}/snapshots`, { period: 'all' }); route(); };
    } else if (tab === 'stats') {
      app.innerHTML = head + await stats(slug);
      await drawStats(slug);
    } else if (tab === 'answers') {
      app.innerHTML = head + await answers(slug, parts[3] ? decodeURIComponent(parts[3]) : '');
      document.getElementById('asearch').onsubmit = (ev) => { ev.preventDefault(); location.hash = `#/c/${slug}/answers/${encodeURIComponent(document.getElementById('aq').value)}`; };
    } else if (tab === 'program') {
      app.innerHTML = head + await program(slug);
      wireProgram(slug);
    } else if (tab === 'webhooks') {
      app.innerHTML = head + await webhooks();
      document.getElementById('hook').onsubmit = async (ev) => {
        ev.preventDefault();
        try {
          const w = await api('POST', '/webhooks', { url: document.getElementById('url').value.trim() });
          await route();
          document.getElementById('secret').textContent = `Signing secret (shown once): ${w.secret}`;
        } catch (e) { document.getElementById('e').textContent = e.message; }
      };
    }
  } catch (e) {
    if (e.message !== 'signed out') app.innerHTML = `<section><p class="err">${esc(e.message)}</p></section>`;
  }
}

window.addEventListener('hashchange', route);
route();
