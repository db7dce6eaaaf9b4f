-- The engine's state: campaign versions, participants, referrals, invitations,
-- the ledger, leaderboard scores, grants, webhooks and their outbox, the audit
-- log. Ids of participants, referrals and grants are drawn by the engine (53
-- bits, so JavaScript reads them exactly). Every row the engine reads before a
-- decision has a `rev` the write is guarded by (see edge/src/store.rs).

-- A site's own request limit per minute (NULL: the edge's default).
ALTER TABLE sites ADD COLUMN rate_limit_per_minute INTEGER CHECK (rate_limit_per_minute > 0);

ALTER TABLE campaigns ADD COLUMN current_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE campaigns ADD COLUMN status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'ended'));
-- Bumped by every grant and grant transition of the campaign: the guard of
-- decisions that checked a cap (winners, budget, grants per reward).
ALTER TABLE campaigns ADD COLUMN usage_rev INTEGER NOT NULL DEFAULT 0;
ALTER TABLE campaigns ADD COLUMN updated_at INTEGER;
-- The all-time top N the cron last saw (JSON ids): a change is a webhook notice.
ALTER TABLE campaigns ADD COLUMN last_top TEXT;

CREATE TABLE campaign_versions (
  campaign_id  INTEGER NOT NULL REFERENCES campaigns(id),
  version      INTEGER NOT NULL CHECK (version >= 1),
  config       TEXT    NOT NULL,
  created_at   INTEGER NOT NULL,
  PRIMARY KEY (campaign_id, version)
) WITHOUT ROWID;

CREATE TABLE participants (
  id               INTEGER PRIMARY KEY,
  campaign_id      INTEGER NOT NULL REFERENCES campaigns(id),
  anonymous_id     TEXT,
  user_id          TEXT,
  code             TEXT    NOT NULL,
  joined_at        INTEGER NOT NULL,
  traits           TEXT    NOT NULL DEFAULT '{}',
  -- Salted SHA-256 hex; raw emails and IPs are never stored.
  email_hash       TEXT,
  email_domain     TEXT,
  ip_hash          TEXT,
  device_id        TEXT,
  confirmed        INTEGER NOT NULL DEFAULT 0 CHECK (confirmed >= 0),
  score            INTEGER NOT NULL DEFAULT 0,
  referral_points  INTEGER NOT NULL DEFAULT 0,
  is_winner        INTEGER NOT NULL DEFAULT 0 CHECK (is_winner IN (0, 1)),
  erased_at        INTEGER,
  rev              INTEGER NOT NULL DEFAULT 0
);
-- `GET /r/{code}` names no campaign: a code is unique across all of them.
CREATE UNIQUE INDEX participants_by_code ON participants(code);
CREATE UNIQUE INDEX participants_by_user ON participants(campaign_id, user_id) WHERE user_id IS NOT NULL;
-- Participant search in the console.
CREATE INDEX participants_by_join ON participants(campaign_id, joined_at);

-- Every anonymous id a participant was seen with (one browser each).
CREATE TABLE participant_aliases (
  campaign_id     INTEGER NOT NULL REFERENCES campaigns(id),
  anonymous_id    TEXT    NOT NULL,
  participant_id  INTEGER NOT NULL REFERENCES participants(id),
  PRIMARY KEY (campaign_id, anonymous_id)
) WITHOUT ROWID;

CREATE TABLE referrals (
  id              INTEGER PRIMARY KEY,
  campaign_id     INTEGER NOT NULL REFERENCES campaigns(id),
  referrer_id     INTEGER NOT NULL REFERENCES participants(id),
  referee_id      INTEGER NOT NULL REFERENCES participants(id),
  via             TEXT    NOT NULL,
  status          TEXT    NOT NULL CHECK (status IN ('pending', 'confirmed', 'rejected', 'expired')),
  config_version  INTEGER NOT NULL,
  created_at      INTEGER NOT NULL,
  -- created_at + the pinned version's quest window: the cron expires past it.
  deadline        INTEGER NOT NULL,
  done_mask       INTEGER NOT NULL DEFAULT 0,
  confirmed_at    INTEGER,
  flags           TEXT    NOT NULL DEFAULT '[]',
  review          TEXT    NOT NULL CHECK (review IN ('clear', 'pending', 'approved', 'rejected')),
  reason          TEXT,
  rev             INTEGER NOT NULL DEFAULT 0,
  -- A referee has at most one referrer.
  UNIQUE (campaign_id, referee_id),
  CHECK (referrer_id <> referee_id)
);
CREATE INDEX referrals_by_referrer ON referrals(referrer_id, created_at);
CREATE INDEX referrals_by_campaign ON referrals(campaign_id, created_at);
CREATE INDEX referrals_overdue ON referrals(status, deadline);

-- Events whose referral-side points wait for the review of a flagged referral.
CREATE TABLE held_events (
  referral_id  INTEGER NOT NULL REFERENCES referrals(id),
  event_id     TEXT    NOT NULL,
  name         TEXT    NOT NULL,
  trusted      INTEGER NOT NULL CHECK (trusted IN (0, 1)),
  at           INTEGER NOT NULL,
  PRIMARY KEY (referral_id, event_id)
) WITHOUT ROWID;

CREATE TABLE invitations (
  campaign_id  INTEGER NOT NULL REFERENCES campaigns(id),
  token        TEXT    NOT NULL,
  inviter_id   INTEGER NOT NULL REFERENCES participants(id),
  created_at   INTEGER NOT NULL,
  expires_at   INTEGER NOT NULL,
  claimed_by   INTEGER REFERENCES participants(id),
  PRIMARY KEY (campaign_id, token)
) WITHOUT ROWID;

CREATE TABLE clicks (
  id              INTEGER PRIMARY KEY,
  campaign_id     INTEGER NOT NULL REFERENCES campaigns(id),
  participant_id  INTEGER NOT NULL REFERENCES participants(id),
  at              INTEGER NOT NULL,
  ip_hash         TEXT
);
CREATE INDEX clicks_by_participant ON clicks(participant_id);
CREATE INDEX clicks_by_campaign ON clicks(campaign_id, at);

-- Append-only: entries are never updated or deleted (the triggers refuse it).
CREATE TABLE ledger (
  id               INTEGER PRIMARY KEY,
  campaign_id      INTEGER NOT NULL REFERENCES campaigns(id),
  participant_id   INTEGER NOT NULL REFERENCES participants(id),
  points           INTEGER NOT NULL,
  reason           TEXT    NOT NULL,
  source_event     TEXT,
  referral_id      INTEGER,
  idempotency_key  TEXT    NOT NULL,
  at               INTEGER NOT NULL,
  config_version   INTEGER NOT NULL,
  UNIQUE (campaign_id, idempotency_key)
);
CREATE INDEX ledger_by_participant ON ledger(participant_id, id);
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;

-- Leaderboard scores per period ('all', 'm:2026-11', 'w:2026-11-16' = the
-- week's Monday), and how many participants hold each score: a rank is one
-- sum over the buckets above plus the ties that joined earlier, never a scan.
CREATE TABLE scores (
  campaign_id     INTEGER NOT NULL,
  period          TEXT    NOT NULL,
  participant_id  INTEGER NOT NULL,
  score           INTEGER NOT NULL,
  joined_at       INTEGER NOT NULL,
  PRIMARY KEY (campaign_id, period, participant_id)
) WITHOUT ROWID;
CREATE INDEX scores_ranked ON scores(campaign_id, period, score DESC, joined_at, participant_id);

CREATE TABLE score_buckets (
  campaign_id  INTEGER NOT NULL,
  period       TEXT    NOT NULL,
  score        INTEGER NOT NULL,
  n            INTEGER NOT NULL CHECK (n >= 0),
  PRIMARY KEY (campaign_id, period, score)
) WITHOUT ROWID;

-- Ties: how many participants hold each score, per hour they joined in. A
-- rank adds the ties of earlier hours from here and counts only the ties of
-- its own hour in `scores`, so a crowded score costs O(hours), not O(ties).
CREATE TABLE tie_buckets (
  campaign_id  INTEGER NOT NULL,
  period       TEXT    NOT NULL,
  score        INTEGER NOT NULL,
  hour         INTEGER NOT NULL,
  n            INTEGER NOT NULL CHECK (n >= 0),
  PRIMARY KEY (campaign_id, period, score, hour)
) WITHOUT ROWID;

CREATE TABLE grants (
  id               INTEGER PRIMARY KEY,
  campaign_id      INTEGER NOT NULL REFERENCES campaigns(id),
  participant_id   INTEGER NOT NULL REFERENCES participants(id),
  reward_id        TEXT    NOT NULL,
  source           TEXT    NOT NULL,
  status           TEXT    NOT NULL CHECK (status IN ('earned', 'pending_review', 'approved', 'fulfilled', 'redeemed', 'rejected', 'expired', 'revoked')),
  token            TEXT,
  value_minor      INTEGER,
  currency         TEXT,
  earned_at        INTEGER NOT NULL,
  expires_at       INTEGER,
  idempotency_key  TEXT    NOT NULL,
  UNIQUE (campaign_id, idempotency_key),
  UNIQUE (campaign_id, token)
);
CREATE INDEX grants_by_participant ON grants(participant_id);
CREATE INDEX grants_by_campaign ON grants(campaign_id, status, reward_id);
CREATE INDEX grants_due ON grants(expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE grant_transitions (
  id           INTEGER PRIMARY KEY,
  grant_id     INTEGER NOT NULL REFERENCES grants(id),
  from_status  TEXT,
  to_status    TEXT    NOT NULL,
  at           INTEGER NOT NULL,
  note         TEXT
);
CREATE INDEX grant_transitions_by_grant ON grant_transitions(grant_id, id);

CREATE TABLE snapshots (
  id           INTEGER PRIMARY KEY,
  campaign_id  INTEGER NOT NULL REFERENCES campaigns(id),
  period       TEXT    NOT NULL,
  taken_at     INTEGER NOT NULL,
  rows         TEXT    NOT NULL
);
CREATE INDEX snapshots_by_campaign ON snapshots(campaign_id, taken_at);

CREATE TABLE webhooks (
  id          INTEGER PRIMARY KEY,
  tenant_id   INTEGER NOT NULL REFERENCES tenants(id),
  url         TEXT    NOT NULL,
  secret      TEXT    NOT NULL,
  -- Space-separated notice types, or '*'.
  events      TEXT    NOT NULL DEFAULT '*',
  active      INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
  created_at  INTEGER NOT NULL
);
CREATE INDEX webhooks_by_tenant ON webhooks(tenant_id);

-- Written in the same transaction as the effect it reports; the cron delivers.
CREATE TABLE outbox (
  id               INTEGER PRIMARY KEY,
  webhook_id       INTEGER NOT NULL REFERENCES webhooks(id),
  type             TEXT    NOT NULL,
  payload          TEXT    NOT NULL,
  created_at       INTEGER NOT NULL,
  attempts         INTEGER NOT NULL DEFAULT 0,
  next_attempt_at  INTEGER NOT NULL,
  delivered_at     INTEGER,
  last_status      INTEGER,
  last_error       TEXT
);
CREATE INDEX outbox_due ON outbox(next_attempt_at) WHERE delivered_at IS NULL;
CREATE INDEX outbox_by_webhook ON outbox(webhook_id, id);

CREATE TABLE audit_log (
  id         INTEGER PRIMARY KEY,
  tenant_id  INTEGER NOT NULL,
  action     TEXT    NOT NULL,
  target     TEXT    NOT NULL,
  detail     TEXT    NOT NULL DEFAULT '{}',
  at         INTEGER NOT NULL
);
CREATE INDEX audit_by_tenant ON audit_log(tenant_id, id);

-- Fixed-window request counters for the abuse limits.
CREATE TABLE rate_windows (
  bucket  TEXT    NOT NULL,
  window  INTEGER NOT NULL,
  n       INTEGER NOT NULL,
  PRIMARY KEY (bucket, window)
) WITHOUT ROWID;

-- Over a rate limit, the request's transaction inserts a row here and the
-- CHECK refuses it: nothing of the request is stored, its count included.
CREATE TABLE rate_limit_hits (
  what  TEXT NOT NULL,
  CONSTRAINT rate_limited CHECK (what IS NULL)
);

-- A guard that fails inserts a row here; the CHECK refuses it and the whole
-- batch rolls back. It never holds a row.
CREATE TABLE guard_failures (
  what  TEXT NOT NULL,
  CONSTRAINT stale_read CHECK (what IS NULL)
);
