// refloop's widgets: share, leaderboard, progress, stats. A chunk of its own
// (GET /v1/widgets.js), imported by the loader on the first mount, so pages
// without a widget never download it. Each widget renders into a Shadow DOM
// (the site's CSS cannot reach in, ours cannot leak out), is themed by CSS
// custom properties and data-theme="light|dark", speaks English or French,
// and shows a calm message when the edge cannot be reached.

var STRINGS = {
  en: {
    yourLink: 'Your referral link', copy: 'Copy link', copied: 'Copied!', share: 'Share', qr: 'QR code of your link',
    shareOn: 'Share on', email: 'Email', joinFirst: 'Sign up to get your referral link.',
    board: 'Leaderboard', all: 'All time', month: 'This month', week: 'This week', you: 'You are #',
    empty: 'No one on the board yet. Be the first!', points: 'points', notRanked: 'You are not on the board yet.',
    progress: 'Your progress', steps: 'Your steps', toNext: ' of ', toNextEnd: ' confirmed referrals to your next reward',
    allReached: 'Every milestone reached. Thank you!', rewards: 'Your rewards', noRewards: 'No rewards yet.', useCode: 'Your code:',
    stats: 'Your referrals', clicks: 'Clicks', pending: 'Pending', confirmed: 'Confirmed', rank: 'Rank', score: 'Points',
    calm: 'The referral program is taking a short break. Please try again in a moment.',
    status: { earned: 'earned', pending_review: 'in review', approved: 'approved', fulfilled: 'sent', redeemed: 'used', rejected: 'declined', expired: 'expired', revoked: 'withdrawn' },
  },
  fr: {
    yourLink: 'Votre lien de parrainage', copy: 'Copier le lien', copied: 'Copié !', share: 'Partager', qr: 'QR code de votre lien',
    shareOn: 'Partager sur', email: 'E-mail', joinFirst: 'Inscrivez-vous pour obtenir votre lien.',
    board: 'Classement', all: 'Depuis le début', month: 'Ce mois-ci', week: 'Cette semaine', you: 'Vous êtes n°',
    empty: 'Personne au classement pour l’instant. Soyez le premier !', points: 'points', notRanked: 'Vous n’êtes pas encore classé.',
    progress: 'Votre progression', steps: 'Vos étapes', toNext: ' sur ', toNextEnd: ' parrainages confirmés avant votre prochaine récompense',
    allReached: 'Tous les paliers atteints. Merci !', rewards: 'Vos récompenses', noRewards: 'Pas encore de récompense.', useCode: 'Votre code :',
    stats: 'Vos parrainages', clicks: 'Clics', pending: 'En attente', confirmed: 'Confirmés', rank: 'Rang', score: 'Points',
    calm: 'Le programme de parrainage fait une courte pause. Réessayez dans un instant.',
    status: { earned: 'obtenue', pending_review: 'en vérification', approved: 'validée', fulfilled: 'envoyée', redeemed: 'utilisée', rejected: 'refusée', expired: 'expirée', revoked: 'retirée' },
  },
};

var CSS = ':host{display:block;box-sizing:border-box;max-width:100%;font:var(--refloop-font,15px/1.5 system-ui,sans-serif);'
  + 'color:var(--refloop-fg,#1d2330);--a:var(--refloop-accent,#3949c7);--bg:var(--refloop-bg,#fff);--mu:var(--refloop-muted,#5b6478);--ln:var(--refloop-line,#dfe3ee)}'
  + ':host([data-theme=dark]){color:var(--refloop-fg,#eef1f8);--a:var(--refloop-accent,#9aa8ff);--bg:var(--refloop-bg,#171b26);--mu:var(--refloop-muted,#b4bccd);--ln:var(--refloop-line,#343b4f)}'
  + '*{box-sizing:border-box}.w{background:var(--bg);border:1px solid var(--ln);border-radius:var(--refloop-radius,12px);padding:16px;overflow-wrap:anywhere}'
  + 'h2{font-size:1.05em;margin:0 0 12px}p{margin:0 0 8px}.mu{color:var(--mu)}'
  + 'button,a.b{font:inherit;display:inline-flex;align-items:center;min-height:40px;padding:6px 12px;border-radius:8px;border:1px solid var(--a);background:var(--a);color:var(--bg);cursor:pointer;text-decoration:none}'
  + 'button.o,a.b.o{background:transparent;color:var(--a)}button[aria-pressed=true]{background:var(--a);color:var(--bg)}'
  + 'button:focus-visible,a:focus-visible,input:focus-visible{outline:3px solid var(--a);outline-offset:2px}'
  + '.row{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin:8px 0}'
  + 'input{font:inherit;flex:1 1 14em;min-width:0;min-height:40px;padding:6px 10px;border:1px solid var(--ln);border-radius:8px;background:var(--bg);color:inherit}'
  + 'img{display:block;width:128px;height:128px;background:#fff;border-radius:8px}'
  + 'ol{list-style:none;margin:0;padding:0}li{display:flex;gap:10px;padding:6px 4px;border-bottom:1px solid var(--ln)}li:last-child{border:0}'
  + 'li.me{font-weight:700}.r{min-width:2.5em;color:var(--mu)}.n{flex:1}code.tok{font:1em ui-monospace,monospace;user-select:all;background:var(--ln);padding:0 4px;border-radius:4px}.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(6.5em,1fr));gap:8px}'
  + '.t{border:1px solid var(--ln);border-radius:8px;padding:8px}.t b{display:block;font-size:1.4em}'
  + '.bar{height:10px;border-radius:5px;background:var(--ln);overflow:hidden}.bar i{display:block;height:100%;background:var(--a)}'
  + '.ok::before{content:"✓ ";color:var(--a)}.todo::before{content:"○ ";color:var(--mu)}.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}';

function esc(v) {
  return String(v == null ? '' : v).replace(/[&<>"']/g, function (c) {
    return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
  });
}

function strings(lang) {
  var l = String(lang || document.documentElement.lang || 'en').slice(0, 2).toLowerCase();
  return STRINGS[l] || STRINGS.en;
}

function share(sdk, t, opts, me, state) {
  // One invitation per widget: a refresh shows the same link, it mints none.
  if (me.mode === 'invite' && !state.invite) {
    state.invite = sdk.invite().then(function (i) { return i.url; });
    state.invite['catch'](function () { state.invite = null; });
  }
  var url = me.mode === 'invite' ? state.invite : Promise.resolve(sdk.api + me.link);
  return url.then(function (link) {
    var text = opts.text || me.share_text || '';
    var u = encodeURIComponent(link), x = encodeURIComponent(text);
    var nets = [
      ['X', 'https://x.com/intent/post?text=' + x + '&url=' + u],
      ['LinkedIn', 'https://www.linkedin.com/sharing/share-offsite/?url=' + u],
      ['WhatsApp', 'https://wa.me/?text=' + x + '%20' + u],
      ['Telegram', 'https://t.me/share/url?url=' + u + '&text=' + x],
      ['Facebook', 'https://www.facebook.com/sharer/sharer.php?u=' + u],
      [t.email, 'mailto:?subject=' + x + '&body=' + x + '%0A%0A' + u],
    ];
    return {
      html: '<section class="w" aria-labelledby="h"><h2 id="h">' + esc(t.yourLink) + '</h2>'
        + (text ? '<p class="mu">' + esc(text) + '</p>' : '')
        + '<div class="row"><input id="link" readonly value="' + esc(link) + '" aria-label="' + esc(t.yourLink) + '">'
        + '<button id="copy" type="button">' + esc(t.copy) + '</button>'
        + (navigator.share ? '<button id="native" class="o" type="button">' + esc(t.share) + '</button>' : '') + '</div>'
        + '<p id="said" class="sr" role="status" aria-live="polite"></p>'
        + '<div class="row" role="group" aria-label="' + esc(t.shareOn) + '">'
        + nets.map(function (n) {
          return '<a class="b o" target="_blank" rel="noopener noreferrer" href="' + esc(n[1]) + '" aria-label="' + esc(t.shareOn + ' ' + n[0]) + '">' + esc(n[0]) + '</a>';
        }).join('') + '</div>'
        + '<img src="' + esc(sdk.api + '/v1/qr.svg?data=' + u) + '" alt="' + esc(t.qr) + '" width="128" height="128"></section>',
      wire: function (root) {
        root.getElementById('copy').onclick = function () {
          var said = root.getElementById('said');
          var done = function () { said.textContent = t.copied; said.className = ''; root.getElementById('copy').textContent = t.copied; };
          (navigator.clipboard ? navigator.clipboard.writeText(link) : Promise.reject()).then(done, function () {
            var input = root.getElementById('link');
            input.select();
            if (document.execCommand('copy')) done();
          });
        };
        var native = root.getElementById('native');
        if (native) native.onclick = function () { navigator.share({ title: text, text: text, url: link })['catch'](function () {}); };
      },
    };
  });
}

function leaderboard(sdk, t, opts, me, state) {
  var period = state.period || opts.period || 'all';
  return sdk.board(period, me && me.code).then(function (b) {
    var you = (b.around || []).filter(function (r) { return r.you; })[0];
    var rows = b.top.map(function (r) {
      var mine = me && r.code === me.code;
      return '<li' + (mine ? ' class="me" aria-current="true"' : '') + '><span class="r">#' + r.rank + '</span><span class="n">'
        + esc(r.name) + '</span><span>' + r.score + ' <span class="sr">' + esc(t.points) + '</span></span></li>';
    }).join('');
    var tabs = ['all', 'month', 'week'].map(function (p) {
      return '<button type="button" class="o" data-p="' + p + '" aria-pressed="' + (p === period) + '">' + esc(t[p]) + '</button>';
    }).join('');
    return {
      html: '<section class="w" aria-labelledby="h"><h2 id="h">' + esc(t.board) + '</h2>'
        + '<div class="row" role="group" aria-label="' + esc(t.board) + '">' + tabs + '</div>'
        + (me ? '<p id="you">' + (you ? esc(t.you) + you.rank : esc(t.notRanked)) + '</p>' : '')
        + (rows ? '<ol aria-label="' + esc(t.board) + '">' + rows + '</ol>' : '<p class="mu" id="empty">' + esc(t.empty) + '</p>') + '</section>',
      wire: function (root, rerender) {
        Array.prototype.forEach.call(root.querySelectorAll('[data-p]'), function (btn) {
          btn.onclick = function () { state.period = btn.getAttribute('data-p'); rerender(); };
        });
      },
    };
  });
}

// Minor units as the currency's money (2 decimals unless the currency says
// otherwise); a bare number when no currency is named.
function money(minor, currency) {
  if (!currency) return String(minor);
  try {
    var f = new Intl.NumberFormat(undefined, { style: 'currency', currency: currency });
    return f.format(minor / Math.pow(10, f.resolvedOptions().maximumFractionDigits));
  } catch (e) {
    return (minor / 100).toFixed(2) + ' ' + currency;
  }
}

function progress(sdk, t, opts, me) {
  var html = '<section class="w" aria-labelledby="h"><h2 id="h">' + esc(t.progress) + '</h2>';
  if (me.quest && me.quest.status === 'pending') {
    html += '<p>' + esc(t.steps) + '</p><ol>' + me.quest.steps.map(function (s) {
      return '<li class="' + (s.done ? 'ok' : 'todo') + '">' + esc(s.event.replace(/_/g, ' ')) + '</li>';
    }).join('') + '</ol>';
  }
  var next = me.next_milestone, done = me.referrals.confirmed;
  if (next) {
    html += '<p id="next">' + done + esc(t.toNext) + next.at + esc(t.toNextEnd) + (next.name ? ' (' + esc(next.name) + ')' : '') + '</p>'
      + '<div class="bar" role="progressbar" aria-label="' + esc(t.progress) + '" aria-valuemin="0" aria-valuemax="' + next.at
      + '" aria-valuenow="' + done + '"><i style="width:' + Math.min(100, Math.round((100 * done) / next.at)) + '%"></i></div>';
  } else {
    html += '<p id="next">' + esc(t.allReached) + '</p>';
  }
  html += '<h2 style="margin-top:16px">' + esc(t.rewards) + '</h2>' + (me.rewards.length ? '<ol id="rewards">' + me.rewards.map(function (r) {
    // The value a reward stands for and, once approved, the code to use at
    // checkout (me() shows it to its owner only).
    return '<li class="g"><span class="n">' + esc(r.name || r.reward) + (r.value_minor != null ? ' <b class="v">' + esc(money(r.value_minor, r.currency)) + '</b>' : '')
      + (r.token ? '<br><span class="mu">' + esc(t.useCode) + '</span> <code class="tok">' + esc(r.token) + '</code>' : '')
      + '</span><span class="mu st">' + esc(t.status[r.status] || r.status) + '</span></li>';
  }).join('') + '</ol>' : '<p class="mu">' + esc(t.noRewards) + '</p>');
  return Promise.resolve({ html: html + '</section>' });
}

function stats(sdk, t, opts, me) {
  var tile = function (id, label, value) {
    return '<div class="t"><span class="mu">' + esc(label) + '</span><b id="' + id + '">' + esc(value) + '</b></div>';
  };
  return Promise.resolve({
    html: '<section class="w" aria-labelledby="h"><h2 id="h">' + esc(t.stats) + '</h2><div class="grid">'
      + tile('clicks', t.clicks, me.clicks) + tile('pending', t.pending, me.referrals.pending)
      + tile('confirmed', t.confirmed, me.referrals.confirmed) + tile('points', t.score, me.points)
      + tile('rank', t.rank, me.rank == null ? '–' : '#' + me.rank) + '</div></section>',
  });
}

var VIEWS = { share: share, leaderboard: leaderboard, progress: progress, stats: stats };

// Mounts `name` into `host`; `sdk` is what the loader lends: api (the edge),
// me(), board(period, code), invite(). Returns { refresh }.
export function mount(host, name, opts, sdk) {
  var root = host.shadowRoot || host.attachShadow({ mode: 'open' });
  var t = strings(opts.lang);
  var state = {}, timer = null, delay = 30000;
  if (opts.theme) host.setAttribute('data-theme', opts.theme);
  function paint(html) { root.innerHTML = '<style>' + CSS + '</style>' + html; }
  function render() {
    clearTimeout(timer);
    return sdk.me().then(function (me) { return me; }, function (e) {
      // Not a participant yet: the leaderboard still shows; the rest invites to join.
      if (e && e.status === 404) return null;
      throw e;
    }).then(function (me) {
      if (!me && name !== 'leaderboard') return { html: '<section class="w"><p>' + esc(t.joinFirst) + '</p></section>' };
      return VIEWS[name](sdk, t, opts, me, state);
    }).then(function (view) {
      paint(view.html);
      if (view.wire) view.wire(root, render);
      delay = 30000;
    }, function () {
      paint('<section class="w" role="status"><p class="mu">' + esc(t.calm) + '</p></section>');
      // Back off while the edge is away: 30 s doubling to 5 min.
      delay = Math.min(delay * 2, 300000);
    }).then(function () {
      host.setAttribute('data-state', 'ready');
      // A hidden page is not polled: coming back into view renders again.
      if (name === 'leaderboard' || opts.refresh) {
        timer = setTimeout(function () { if (document.visibilityState !== 'hidden') render(); }, delay);
      }
    });
  }
  document.addEventListener('visibilitychange', function () { if (document.visibilityState === 'visible') render(); });
  render();
  return { refresh: render };
}
