-- Each campaign's state moves into its own Durable Object (a SQLite database
-- per campaign, schema in shared/src/engine/sql_store.rs). D1 keeps the
-- directory and the log: tenants, sites, campaigns and their versions, the
-- links that name a campaign, events, the webhook outbox, the audit log.

-- Which campaign a referral code or an invitation token names: `/r/{code}`
-- and a signup's attribution find their campaign here.
CREATE TABLE referral_links (
  token        TEXT    PRIMARY KEY,
  campaign_id  INTEGER NOT NULL REFERENCES campaigns(id),
  kind         TEXT    NOT NULL CHECK (kind IN ('code', 'invite'))
) WITHOUT ROWID;

DROP TABLE held_events;
DROP TABLE invitations;
DROP TABLE clicks;
DROP TABLE grant_transitions;
DROP TABLE grants;
DROP TABLE ledger;
DROP TABLE scores;
DROP TABLE score_buckets;
DROP TABLE tie_buckets;
DROP TABLE snapshots;
DROP TABLE referrals;
DROP TABLE participant_aliases;
DROP TABLE participants;
DROP TABLE guard_failures;
