//! Every SQL statement the edge runs, in one place, so the tests crate can run
//! the very same text against real SQLite with the migrations applied.

/// `?1` publishable key → the site and its allowed origins (comma-joined).
pub const SITE_BY_PUBLISHABLE_KEY: &str = "\
SELECT s.id AS site_id, s.tenant_id AS tenant_id, s.rate_limit_per_minute AS per_minute,
       (SELECT group_concat(o.origin, ' ') FROM site_origins o WHERE o.site_id = s.id) AS origins
FROM sites s WHERE s.publishable_key = ?1";

/// `?1` SHA-256 hex of a secret key → its site.
pub const SITE_BY_SECRET_KEY_HASH: &str = "\
SELECT s.id AS site_id, s.tenant_id AS tenant_id, s.rate_limit_per_minute AS per_minute FROM sites s WHERE s.secret_key_hash = ?1";

/// `?1` origin → whether any site allows it (for preflights, which carry no key).
pub const ANY_SITE_ALLOWS_ORIGIN: &str = "\
SELECT 1 AS allowed FROM site_origins WHERE origin = ?1 LIMIT 1";

/// Stores one event; an id the site already has changes nothing, which is how
/// an event takes effect at most once however often it is sent.
/// `?1` site, `?2` event id, `?3` type, `?4` name, `?5` anonymous id, `?6` user id,
/// `?7` occurred at (ms), `?8` received at (ms), `?9` trusted (0/1), `?10` payload JSON.
pub const INSERT_EVENT: &str = "\
INSERT INTO events (site_id, event_id, type, name, anonymous_id, user_id, occurred_at, received_at, trusted, payload)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
ON CONFLICT (site_id, event_id) DO NOTHING";

/// `?1` site, `?2` limit → the newest events first.
pub const LIST_EVENTS: &str = "\
SELECT event_id, type, name, anonymous_id, user_id, occurred_at, received_at, trusted, payload
FROM events WHERE site_id = ?1 ORDER BY id DESC LIMIT ?2";

/// `?1` site, `?2` event id → whether the site has it.
pub const EVENT_EXISTS: &str = "SELECT 1 AS known FROM events WHERE site_id = ?1 AND event_id = ?2";

/// `?1` site, `?2` event ids (JSON array) → those the site has.
pub const KNOWN_EVENT_IDS: &str = "\
SELECT event_id FROM events WHERE site_id = ?1 AND event_id IN (SELECT value FROM json_each(?2))";

/// `?1` site, `?2` received at, `?3` trusted, `?4` events (JSON array of
/// {id, type, name, anonymous_id, user_id, at, payload}) → the ids stored.
/// An event is stored here only when no active campaign of the site's tenant
/// knows its actor: such an event changes nothing but the events table.
pub const INSERT_INERT_EVENTS: &str = "\
INSERT INTO events (site_id, event_id, type, name, anonymous_id, user_id, occurred_at, received_at, trusted, payload)
SELECT ?1, json_extract(j.value, '$.id'), json_extract(j.value, '$.type'), json_extract(j.value, '$.name'),
       json_extract(j.value, '$.anonymous_id'), json_extract(j.value, '$.user_id'), json_extract(j.value, '$.at'),
       ?2, ?3, json_extract(j.value, '$.payload')
FROM json_each(?4) j
WHERE NOT EXISTS (SELECT 1 FROM participant_aliases a JOIN campaigns c ON c.id = a.campaign_id
                  WHERE a.anonymous_id = json_extract(j.value, '$.anonymous_id')
                    AND c.tenant_id = (SELECT tenant_id FROM sites WHERE id = ?1)
                    AND c.status = 'active' AND c.current_version > 0)
  AND NOT EXISTS (SELECT 1 FROM participants p JOIN campaigns c ON c.id = p.campaign_id
                  WHERE p.user_id = json_extract(j.value, '$.user_id')
                    AND c.tenant_id = (SELECT tenant_id FROM sites WHERE id = ?1)
                    AND c.status = 'active' AND c.current_version > 0)
ON CONFLICT (site_id, event_id) DO NOTHING
RETURNING event_id";

/// As `INSERT_EVENT`, but a known id fails the batch: used when the event's
/// effects are in the same batch, so a concurrent copy cannot apply twice.
pub const INSERT_EVENT_STRICT: &str = "\
INSERT INTO events (site_id, event_id, type, name, anonymous_id, user_id, occurred_at, received_at, trusted, payload)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

// ---- tenants and sites ---------------------------------------------------

pub const INSERT_TENANT: &str = "INSERT INTO tenants (name, created_at) VALUES (?1, ?2) RETURNING id";
/// `?1` tenant, `?2` name, `?3` publishable key, `?4` secret key hash, `?5` now, `?6` limit per minute.
pub const INSERT_SITE: &str = "\
INSERT INTO sites (tenant_id, name, publishable_key, secret_key_hash, created_at, rate_limit_per_minute)
VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
/// `?1` publishable key of the site just inserted, `?2` origin.
pub const INSERT_SITE_ORIGIN: &str = "\
INSERT INTO site_origins (site_id, origin) SELECT id, ?2 FROM sites WHERE publishable_key = ?1";
pub const SITES_OF_TENANT: &str = "\
SELECT s.id, s.name, s.publishable_key, s.created_at,
       (SELECT group_concat(o.origin, ' ') FROM site_origins o WHERE o.site_id = s.id) AS origins
FROM sites s WHERE s.tenant_id = ?1 ORDER BY s.id";
pub const TENANT: &str = "SELECT id, name, created_at FROM tenants WHERE id = ?1";

// ---- campaigns -----------------------------------------------------------

/// `?1` tenant → its campaigns that take events.
pub const ACTIVE_CAMPAIGNS: &str =
    "SELECT id, tenant_id, slug, name, status, current_version, usage_rev, created_at, updated_at FROM campaigns
WHERE tenant_id = ?1 AND status = 'active' AND current_version > 0 ORDER BY id";

/// `?1` tenant, `?2` campaign slug or id.
pub const CAMPAIGN: &str =
    "SELECT id, tenant_id, slug, name, status, current_version, usage_rev, created_at, updated_at FROM campaigns
WHERE tenant_id = ?1 AND (slug = ?2 OR CAST(id AS TEXT) = ?2)";

pub const CAMPAIGNS_OF_TENANT: &str = "SELECT id, tenant_id, slug, name, status, current_version, usage_rev, created_at, updated_at FROM campaigns WHERE tenant_id = ?1 ORDER BY id";

/// `?1` campaign, `?2` version.
pub const CAMPAIGN_VERSION: &str =
    "SELECT version, config, created_at FROM campaign_versions WHERE campaign_id = ?1 AND version = ?2";

pub const CAMPAIGN_VERSIONS: &str =
    "SELECT version, config, created_at FROM campaign_versions WHERE campaign_id = ?1 ORDER BY version";

/// `?1` tenant, `?2` slug, `?3` name, `?4` now. Its version 1 follows in the same batch.
pub const INSERT_CAMPAIGN: &str = "\
INSERT INTO campaigns (tenant_id, slug, name, created_at, current_version, updated_at) VALUES (?1, ?2, ?3, ?4, 1, ?4)";

/// `?1` tenant, `?2` slug, `?3` config JSON, `?4` now.
pub const INSERT_FIRST_VERSION: &str = "\
INSERT INTO campaign_versions (campaign_id, version, config, created_at)
SELECT id, 1, ?3, ?4 FROM campaigns WHERE tenant_id = ?1 AND slug = ?2";

/// `?1` campaign, `?2` the version the update started from, `?3` config, `?4`
/// now. A concurrent update makes the primary key clash and the batch abort.
pub const INSERT_NEXT_VERSION: &str =
    "INSERT INTO campaign_versions (campaign_id, version, config, created_at) VALUES (?1, ?2 + 1, ?3, ?4)";

/// `?1` campaign, `?2` new version, `?3` name, `?4` now.
pub const SET_CAMPAIGN_VERSION: &str =
    "UPDATE campaigns SET current_version = ?2, name = ?3, updated_at = ?4 WHERE id = ?1";

/// `?1` campaign, `?2` status, `?3` now.
pub const SET_CAMPAIGN_STATUS: &str = "UPDATE campaigns SET status = ?2, updated_at = ?3 WHERE id = ?1";

// ---- participants --------------------------------------------------------

/// `?1` campaign, `?2` user id, `?3` anonymous id → the participant the event
/// happened to: by user id first, else by an anonymous id they were seen with.
pub const PERSON_BY_IDENTITY: &str = "\
SELECT * FROM participants WHERE id = coalesce(
  (SELECT id FROM participants WHERE campaign_id = ?1 AND user_id = ?2),
  (SELECT participant_id FROM participant_aliases WHERE campaign_id = ?1 AND anonymous_id = ?3))";

/// `?1` participant, `?2` campaign.
pub const PERSON_BY_ID: &str = "SELECT * FROM participants WHERE id = ?1 AND campaign_id = ?2";

/// `?1` campaign, `?2` code.
pub const PERSON_BY_CODE: &str = "SELECT * FROM participants WHERE campaign_id = ?1 AND code = ?2";

/// `?1` code, any campaign (a referral link names only the code).
pub const PERSON_BY_ANY_CODE: &str = "SELECT * FROM participants WHERE code = ?1";

pub const CAMPAIGN_BY_ID: &str = "\
SELECT id, tenant_id, slug, name, status, current_version, usage_rev, created_at, updated_at FROM campaigns WHERE id = ?1";

/// `?1` campaign, `?2` text: participant search (code, user id or anonymous id prefix).
pub const SEARCH_PERSONS: &str = "\
SELECT * FROM participants WHERE campaign_id = ?1 AND erased_at IS NULL AND (code = ?2 OR user_id = ?2 OR anonymous_id = ?2)
UNION ALL
SELECT * FROM (SELECT * FROM participants WHERE campaign_id = ?1 AND ?2 = '' AND erased_at IS NULL ORDER BY joined_at DESC LIMIT ?3)";

/// `?1` id, `?2` campaign, `?3` anonymous id, `?4` user id, `?5` code, `?6` joined,
/// `?7` traits, `?8` email hash, `?9` email domain, `?10` ip hash, `?11` device id.
pub const INSERT_PERSON: &str = "\
INSERT INTO participants (id, campaign_id, anonymous_id, user_id, code, joined_at, traits, email_hash, email_domain, ip_hash, device_id)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

/// `?1` campaign, `?2` anonymous id, `?3` participant. Strict: a concurrent
/// join of the same browser fails the batch, and the retry finds the winner.
pub const INSERT_ALIAS: &str =
    "INSERT INTO participant_aliases (campaign_id, anonymous_id, participant_id) VALUES (?1, ?2, ?3)";
pub const INSERT_ALIAS_IF_NEW: &str =
    "INSERT OR IGNORE INTO participant_aliases (campaign_id, anonymous_id, participant_id) VALUES (?1, ?2, ?3)";

/// `?1` id, `?2` anonymous id, `?3` user id, `?4` traits, `?5` email hash,
/// `?6` email domain, `?7` ip hash, `?8` device id.
pub const UPDATE_IDENTITY: &str = "\
UPDATE participants SET anonymous_id = ?2, user_id = ?3, traits = ?4, email_hash = ?5, email_domain = ?6,
  ip_hash = ?7, device_id = ?8, rev = rev + 1 WHERE id = ?1";

/// `?1` participant: one more confirmed referral.
pub const ADD_CONFIRMED: &str = "UPDATE participants SET confirmed = confirmed + 1, rev = rev + 1 WHERE id = ?1";

/// `?1` participant, `?2` points, `?3` of which referrer-rule points.
pub const ADD_SCORE: &str = "\
UPDATE participants SET score = score + ?2, referral_points = referral_points + ?3, rev = rev + 1 WHERE id = ?1";

pub const SET_WINNER: &str = "UPDATE participants SET is_winner = 1, rev = rev + 1 WHERE id = ?1";

/// `?1` participant, `?2` now: GDPR erasure keeps the ledger (sums stay true)
/// and forgets who the person was.
pub const ERASE_PERSON: &str = "\
UPDATE participants SET anonymous_id = NULL, user_id = NULL, traits = '{}', email_hash = NULL, email_domain = NULL,
  ip_hash = NULL, device_id = NULL, erased_at = ?2, rev = rev + 1 WHERE id = ?1";
pub const ERASE_ALIASES: &str = "DELETE FROM participant_aliases WHERE participant_id = ?1";
pub const ERASE_CLICK_IPS: &str = "UPDATE clicks SET ip_hash = NULL WHERE participant_id = ?1";
/// `?1` site, `?2` user id, `?3` anonymous id: the raw events of the person.
pub const ERASE_EVENTS: &str = "\
UPDATE events SET payload = '{}', anonymous_id = NULL, user_id = NULL
WHERE site_id = ?1 AND ((?2 IS NOT NULL AND user_id = ?2) OR (?3 IS NOT NULL AND anonymous_id = ?3))";

// ---- guards --------------------------------------------------------------

/// `?1` participant, `?2` the rev read: fails the batch when it moved.
pub const GUARD_PERSON: &str = "\
INSERT INTO guard_failures (what) SELECT 'participant' WHERE NOT EXISTS (SELECT 1 FROM participants WHERE id = ?1 AND rev = ?2)";
pub const GUARD_REFERRAL: &str = "\
INSERT INTO guard_failures (what) SELECT 'referral' WHERE NOT EXISTS (SELECT 1 FROM referrals WHERE id = ?1 AND rev = ?2)";
/// `?1` campaign, `?2` the usage rev read.
pub const GUARD_USAGE: &str = "\
INSERT INTO guard_failures (what) SELECT 'usage' WHERE NOT EXISTS (SELECT 1 FROM campaigns WHERE id = ?1 AND usage_rev = ?2)";
/// `?1` campaign, `?2` token, `?3` claimer: fails when someone else claimed it first.
pub const GUARD_INVITATION: &str = "\
INSERT INTO guard_failures (what) SELECT 'invitation' WHERE EXISTS
  (SELECT 1 FROM invitations WHERE campaign_id = ?1 AND token = ?2 AND claimed_by IS NOT NULL AND claimed_by <> ?3)";

// ---- referrals -----------------------------------------------------------

/// `?1` campaign, `?2` referee.
pub const REFERRAL_OF: &str = "SELECT * FROM referrals WHERE campaign_id = ?1 AND referee_id = ?2";
pub const REFERRAL_BY_ID: &str = "SELECT * FROM referrals WHERE id = ?1 AND campaign_id = ?2";

/// `?1` referrer, `?2` an hour ago, `?3` stale-before → the fraud signals' counts.
pub const REFERRER_ACTIVITY: &str = "\
SELECT (SELECT count(*) FROM referrals WHERE referrer_id = ?1 AND created_at > ?2) AS last_hour,
       (SELECT count(*) FROM referrals WHERE referrer_id = ?1 AND created_at < ?3 AND status = 'pending') AS stale";

/// `?1` id, `?2` campaign, `?3` referrer, `?4` referee, `?5` via, `?6` status, `?7` version,
/// `?8` created, `?9` deadline, `?10` done mask, `?11` confirmed at, `?12` flags, `?13` review, `?14` reason.
pub const INSERT_REFERRAL: &str = "\
INSERT INTO referrals (id, campaign_id, referrer_id, referee_id, via, status, config_version, created_at, deadline,
  done_mask, confirmed_at, flags, review, reason)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";

/// `?1` id, `?2` status, `?3` done mask, `?4` confirmed at, `?5` flags, `?6` review, `?7` reason.
pub const UPDATE_REFERRAL: &str = "\
UPDATE referrals SET status = ?2, done_mask = ?3, confirmed_at = ?4, flags = ?5, review = ?6, reason = ?7,
  rev = rev + 1 WHERE id = ?1";

/// `?1` campaign, `?2` status filter ('' for all), `?3` review filter, `?4` limit.
pub const LIST_REFERRALS: &str = "\
SELECT r.*, a.code AS referrer_code, b.code AS referee_code FROM referrals r
JOIN participants a ON a.id = r.referrer_id JOIN participants b ON b.id = r.referee_id
WHERE r.campaign_id = ?1 AND (?2 = '' OR r.status = ?2) AND (?3 = '' OR r.review = ?3)
ORDER BY r.created_at DESC LIMIT ?4";

/// `?1` now → overdue pending referrals are expired by the cron.
pub const EXPIRE_REFERRALS: &str = "\
UPDATE referrals SET status = 'expired', rev = rev + 1 WHERE status = 'pending' AND deadline < ?1";

/// `?1` referral, `?2` event id, `?3` name, `?4` trusted, `?5` at.
pub const HOLD_EVENT: &str =
    "INSERT INTO held_events (referral_id, event_id, name, trusted, at) VALUES (?1, ?2, ?3, ?4, ?5)";
/// `?1` referral.
pub const HELD_EVENTS: &str = "SELECT event_id, name, trusted, at FROM held_events WHERE referral_id = ?1 ORDER BY at";
pub const RELEASE_HELD: &str = "DELETE FROM held_events WHERE referral_id = ?1";

// ---- invitations and clicks ----------------------------------------------

pub const INVITATION: &str = "SELECT * FROM invitations WHERE campaign_id = ?1 AND token = ?2";
pub const INSERT_INVITATION: &str = "\
INSERT INTO invitations (campaign_id, token, inviter_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)";
pub const CLAIM_INVITATION: &str =
    "UPDATE invitations SET claimed_by = ?3 WHERE campaign_id = ?1 AND token = ?2 AND claimed_by IS NULL";
/// `?1` campaign, `?2` participant, `?3` at, `?4` ip hash.
pub const INSERT_CLICK: &str = "INSERT INTO clicks (campaign_id, participant_id, at, ip_hash) VALUES (?1, ?2, ?3, ?4)";

// ---- ledger and leaderboard ----------------------------------------------

/// `?1` campaign, `?2` participant, `?3` points, `?4` reason JSON, `?5` source
/// event, `?6` referral, `?7` key, `?8` at, `?9` config version.
pub const INSERT_ENTRY: &str = "\
INSERT INTO ledger (campaign_id, participant_id, points, reason, source_event, referral_id, idempotency_key, at, config_version)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

/// `?1` participant, `?2` limit.
pub const LEDGER_OF: &str = "\
SELECT id, points, reason, source_event, referral_id, idempotency_key, at, config_version FROM ledger
WHERE participant_id = ?1 ORDER BY id DESC LIMIT ?2";
pub const LEDGER_SUM: &str =
    "SELECT coalesce(sum(points), 0) AS total, count(*) AS n FROM ledger WHERE participant_id = ?1";

/// The three statements of a score change, `?1` campaign, `?2` period,
/// `?3` participant (`?4` delta for the move): leave the old bucket, move, enter the new one.
pub const LEAVE_BUCKET: &str = "\
UPDATE score_buckets SET n = n - 1 WHERE campaign_id = ?1 AND period = ?2
  AND score = (SELECT score FROM scores WHERE campaign_id = ?1 AND period = ?2 AND participant_id = ?3)";
pub const MOVE_SCORE: &str = "\
INSERT INTO scores (campaign_id, period, participant_id, score, joined_at)
VALUES (?1, ?2, ?3, ?4, (SELECT joined_at FROM participants WHERE id = ?3))
ON CONFLICT (campaign_id, period, participant_id) DO UPDATE SET score = score + excluded.score";
/// As `LEAVE_BUCKET` for the tie bucket of the participant's join hour.
pub const LEAVE_TIE: &str = "\
UPDATE tie_buckets SET n = n - 1 WHERE campaign_id = ?1 AND period = ?2
  AND score = (SELECT score FROM scores WHERE campaign_id = ?1 AND period = ?2 AND participant_id = ?3)
  AND hour = (SELECT joined_at / 3600000 FROM participants WHERE id = ?3)";
pub const ENTER_TIE: &str = "\
INSERT INTO tie_buckets (campaign_id, period, score, hour, n)
VALUES (?1, ?2, (SELECT score FROM scores WHERE campaign_id = ?1 AND period = ?2 AND participant_id = ?3),
        (SELECT joined_at / 3600000 FROM participants WHERE id = ?3), 1)
ON CONFLICT (campaign_id, period, score, hour) DO UPDATE SET n = n + 1";
pub const ENTER_BUCKET: &str = "\
INSERT INTO score_buckets (campaign_id, period, score, n)
VALUES (?1, ?2, (SELECT score FROM scores WHERE campaign_id = ?1 AND period = ?2 AND participant_id = ?3), 1)
ON CONFLICT (campaign_id, period, score) DO UPDATE SET n = n + 1";
/// `?1` campaign, `?2` participant: off every board (erasure).
pub const LEAVE_ALL_BUCKETS: &str = "\
UPDATE score_buckets SET n = n - 1 WHERE campaign_id = ?1 AND EXISTS
  (SELECT 1 FROM scores s WHERE s.campaign_id = ?1 AND s.period = score_buckets.period AND s.participant_id = ?2
   AND s.score = score_buckets.score)";
pub const LEAVE_ALL_TIES: &str = "\
UPDATE tie_buckets SET n = n - 1 WHERE campaign_id = ?1 AND EXISTS
  (SELECT 1 FROM scores s WHERE s.campaign_id = ?1 AND s.period = tie_buckets.period AND s.participant_id = ?2
   AND s.score = tie_buckets.score AND tie_buckets.hour = (SELECT joined_at / 3600000 FROM participants WHERE id = ?2))";
pub const DELETE_SCORES: &str = "DELETE FROM scores WHERE campaign_id = ?1 AND participant_id = ?2";

/// `?1` campaign, `?2` period, `?3` limit → the top, best first (ties: earlier join).
pub const TOP: &str = "\
SELECT s.participant_id, s.score, p.code, p.user_id, p.traits FROM scores s JOIN participants p ON p.id = s.participant_id
WHERE s.campaign_id = ?1 AND s.period = ?2 AND s.score > 0
ORDER BY s.score DESC, s.joined_at, s.participant_id LIMIT ?3";

/// `?1` campaign, `?2` period, `?3` participant → their score and rank: the
/// score buckets above, the tie buckets of earlier join hours, and the ties
/// of their own hour that joined before them. O(buckets), never a scan.
pub const RANK: &str = "\
SELECT s.score,
  1 + (SELECT coalesce(sum(b.n), 0) FROM score_buckets b WHERE b.campaign_id = ?1 AND b.period = ?2 AND b.score > s.score)
    + (SELECT coalesce(sum(t.n), 0) FROM tie_buckets t WHERE t.campaign_id = ?1 AND t.period = ?2 AND t.score = s.score
       AND t.hour < s.joined_at / 3600000)
    + (SELECT count(*) FROM scores t WHERE t.campaign_id = ?1 AND t.period = ?2 AND t.score = s.score
       AND t.joined_at >= (s.joined_at / 3600000) * 3600000
       AND (t.joined_at < s.joined_at OR (t.joined_at = s.joined_at AND t.participant_id < s.participant_id))) AS rank
FROM scores s WHERE s.campaign_id = ?1 AND s.period = ?2 AND s.participant_id = ?3 AND s.score > 0";

/// `?1` campaign, `?2` period, `?3` score, `?4` joined, `?5` participant,
/// `?6` how many: the neighbours ranked just above.
pub const ABOVE: &str = "\
SELECT s.participant_id, s.score, p.code, p.user_id, p.traits FROM scores s JOIN participants p ON p.id = s.participant_id
WHERE s.campaign_id = ?1 AND s.period = ?2
  AND (s.score > ?3 OR (s.score = ?3 AND (s.joined_at < ?4 OR (s.joined_at = ?4 AND s.participant_id < ?5))))
ORDER BY s.score ASC, s.joined_at DESC, s.participant_id DESC LIMIT ?6";
/// As `ABOVE`, just below (scores above zero only).
pub const BELOW: &str = "\
SELECT s.participant_id, s.score, p.code, p.user_id, p.traits FROM scores s JOIN participants p ON p.id = s.participant_id
WHERE s.campaign_id = ?1 AND s.period = ?2 AND s.score > 0
  AND (s.score < ?3 OR (s.score = ?3 AND (s.joined_at > ?4 OR (s.joined_at = ?4 AND s.participant_id > ?5))))
ORDER BY s.score DESC, s.joined_at, s.participant_id LIMIT ?6";

pub const SCORE_ROW: &str =
    "SELECT score, joined_at FROM scores WHERE campaign_id = ?1 AND period = ?2 AND participant_id = ?3";

/// `?1` campaign, `?2` period, `?3` taken at, `?4` rows JSON.
pub const INSERT_SNAPSHOT: &str =
    "INSERT INTO snapshots (campaign_id, period, taken_at, rows) VALUES (?1, ?2, ?3, ?4) RETURNING id";
pub const LIST_SNAPSHOTS: &str = "\
SELECT id, period, taken_at, rows FROM snapshots WHERE campaign_id = ?1 ORDER BY taken_at DESC LIMIT ?2";

// ---- grants --------------------------------------------------------------

/// `?1` id, `?2` campaign, `?3` participant, `?4` reward, `?5` source JSON,
/// `?6` status, `?7` token, `?8` value, `?9` currency, `?10` earned, `?11` expires, `?12` key.
pub const INSERT_GRANT: &str = "\
INSERT INTO grants (id, campaign_id, participant_id, reward_id, source, status, token, value_minor, currency, earned_at,
  expires_at, idempotency_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";
/// `?1` grant, `?2` the status it had when read, `?3` the new one. A
/// concurrent move makes the guard after it fail.
pub const MOVE_GRANT: &str = "UPDATE grants SET status = ?3 WHERE id = ?1 AND status = ?2";
pub const GUARD_GRANT: &str = "\
INSERT INTO guard_failures (what) SELECT 'grant' WHERE NOT EXISTS (SELECT 1 FROM grants WHERE id = ?1 AND status = ?2)";
/// `?1` grant, `?2` from, `?3` to, `?4` at, `?5` note.
pub const INSERT_TRANSITION: &str = "\
INSERT INTO grant_transitions (grant_id, from_status, to_status, at, note) VALUES (?1, ?2, ?3, ?4, ?5)";
pub const BUMP_USAGE: &str = "UPDATE campaigns SET usage_rev = usage_rev + 1 WHERE id = ?1";

/// `?1` campaign, `?2` budget currency → live grants, for the caps.
pub const USAGE: &str = "\
SELECT (SELECT count(DISTINCT participant_id) FROM grants WHERE campaign_id = ?1 AND status IN ('earned','pending_review','approved','fulfilled','redeemed')) AS winners,
       (SELECT coalesce(sum(value_minor), 0) FROM grants WHERE campaign_id = ?1 AND currency = ?2 AND status IN ('earned','pending_review','approved','fulfilled','redeemed')) AS spent,
       (SELECT usage_rev FROM campaigns WHERE id = ?1) AS rev";
pub const USAGE_BY_REWARD: &str = "\
SELECT reward_id, count(*) AS n FROM grants WHERE campaign_id = ?1 AND status IN ('earned','pending_review','approved','fulfilled','redeemed')
GROUP BY reward_id";

/// `?1` participant ids as a JSON array.
pub const GRANT_KEYS_OF: &str = "\
SELECT idempotency_key FROM grants WHERE participant_id IN (SELECT value FROM json_each(?1))";
pub const GRANTS_OF: &str = "SELECT * FROM grants WHERE participant_id = ?1 ORDER BY earned_at";
pub const GRANT: &str = "SELECT * FROM grants WHERE id = ?1 AND campaign_id = ?2";
/// `?1` campaign, `?2` status filter ('' for all), `?3` limit.
pub const LIST_GRANTS: &str = "\
SELECT g.*, p.code FROM grants g JOIN participants p ON p.id = g.participant_id
WHERE g.campaign_id = ?1 AND (?2 = '' OR g.status = ?2) ORDER BY g.earned_at DESC LIMIT ?3";
pub const TRANSITIONS_OF: &str =
    "SELECT from_status, to_status, at, note FROM grant_transitions WHERE grant_id = ?1 ORDER BY id";
/// `?1` referral: the referee's reward waiting for the referral's review.
pub const WAITING_GRANTS: &str = "\
SELECT * FROM grants WHERE status = 'pending_review' AND source = json_object('type', 'referee', 'referral', ?1)";
/// `?1` now → grants whose time ran out.
pub const DUE_GRANTS: &str = "\
SELECT id, status FROM grants WHERE expires_at IS NOT NULL AND expires_at <= ?1
  AND status IN ('earned', 'pending_review', 'approved', 'fulfilled') LIMIT 500";

// ---- webhooks and audit ----------------------------------------------------

/// `?1` tenant, `?2` type, `?3` payload JSON, `?4` now: one outbox row per
/// subscribed webhook, in the transaction of the effect it reports.
pub const ENQUEUE_NOTICE: &str = "\
INSERT INTO outbox (webhook_id, type, payload, created_at, next_attempt_at)
SELECT id, ?2, ?3, ?4, ?4 FROM webhooks
WHERE tenant_id = ?1 AND active = 1 AND (events = '*' OR instr(' ' || events || ' ', ' ' || ?2 || ' ') > 0)";
pub const INSERT_WEBHOOK: &str = "\
INSERT INTO webhooks (tenant_id, url, secret, events, created_at) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id";
pub const LIST_WEBHOOKS: &str =
    "SELECT id, url, events, active, created_at FROM webhooks WHERE tenant_id = ?1 ORDER BY id";
pub const DELETE_WEBHOOK: &str = "UPDATE webhooks SET active = 0 WHERE id = ?1 AND tenant_id = ?2";
/// `?1` webhook, `?2` limit: the delivery log.
pub const DELIVERIES: &str = "\
SELECT id, type, payload, created_at, attempts, next_attempt_at, delivered_at, last_status, last_error FROM outbox
WHERE webhook_id = ?1 ORDER BY id DESC LIMIT ?2";
/// `?1` now, `?2` limit → what the cron delivers.
pub const DUE_DELIVERIES: &str = "\
SELECT o.id, o.type, o.payload, o.attempts, w.url, w.secret FROM outbox o JOIN webhooks w ON w.id = o.webhook_id
WHERE o.delivered_at IS NULL AND o.next_attempt_at <= ?1 AND o.attempts < 12 ORDER BY o.next_attempt_at LIMIT ?2";
/// `?1` id, `?2` now, `?3` status.
pub const DELIVERED: &str = "\
UPDATE outbox SET delivered_at = ?2, attempts = attempts + 1, last_status = ?3, last_error = NULL WHERE id = ?1";
/// `?1` id, `?2` next attempt, `?3` status, `?4` error.
pub const DELIVERY_FAILED: &str = "\
UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2, last_status = ?3, last_error = ?4 WHERE id = ?1";

/// `?1` tenant, `?2` action, `?3` target, `?4` detail JSON, `?5` at.
pub const AUDIT: &str = "INSERT INTO audit_log (tenant_id, action, target, detail, at) VALUES (?1, ?2, ?3, ?4, ?5)";
pub const LIST_AUDIT: &str =
    "SELECT action, target, detail, at FROM audit_log WHERE tenant_id = ?1 ORDER BY id DESC LIMIT ?2";

// ---- statistics ------------------------------------------------------------

/// `?1` campaign → the funnel's counts.
pub const FUNNEL: &str = "\
SELECT (SELECT count(*) FROM clicks WHERE campaign_id = ?1) AS clicks,
       (SELECT count(*) FROM referrals WHERE campaign_id = ?1) AS signups,
       (SELECT count(*) FROM referrals WHERE campaign_id = ?1 AND status = 'confirmed' AND review IN ('clear', 'approved')) AS confirmed,
       (SELECT count(*) FROM participants WHERE campaign_id = ?1 AND erased_at IS NULL) AS participants";
/// `?1` campaign, `?2` from, `?3` to → the times of clicks, referred signups and confirmations.
pub const TREND_CLICKS: &str = "SELECT at FROM clicks WHERE campaign_id = ?1 AND at >= ?2 AND at < ?3";
pub const TREND_REFERRALS: &str = "\
SELECT created_at, confirmed_at, status, review FROM referrals WHERE campaign_id = ?1 AND created_at >= ?2 AND created_at < ?3";

/// `?1` campaign, `?2` after id, `?3` limit: the CSV export, page by page.
pub const EXPORT_PARTICIPANTS: &str = "\
SELECT id, code, user_id, joined_at, confirmed, score, erased_at FROM participants
WHERE campaign_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3";

// ---- abuse limits ------------------------------------------------------------

/// `?1` buckets (JSON array), `?2` window → each bucket's count, this request included.
pub const COUNT_REQUESTS: &str = "\
INSERT INTO rate_windows (bucket, window, n) SELECT value, ?2, 1 FROM json_each(?1) WHERE true
ON CONFLICT (bucket, window) DO UPDATE SET n = n + 1 RETURNING bucket, n";

/// `?1` bucket, `?2` window, `?3` limit: refuses the transaction when the
/// bucket is over its limit (the CHECK of `rate_limit_hits` names it).
pub const GUARD_RATE: &str = "\
INSERT INTO rate_limit_hits (what) SELECT ?1 WHERE EXISTS
  (SELECT 1 FROM rate_windows WHERE bucket = ?1 AND window = ?2 AND n > ?3)";

/// `?1` before → forget old windows (cron).
pub const FORGET_WINDOWS: &str = "DELETE FROM rate_windows WHERE window < ?1";

// ---- reads of the console and the cron --------------------------------------

pub const LIST_TENANTS: &str = "SELECT id, name, created_at FROM tenants ORDER BY id LIMIT 1000";
/// `?1` grant.
pub const CAMPAIGN_OF_GRANT: &str = "SELECT campaign_id FROM grants WHERE id = ?1";
pub const ALL_ACTIVE_CAMPAIGNS: &str = "\
SELECT id, tenant_id, slug, name, status, current_version, usage_rev, created_at, updated_at, last_top FROM campaigns
WHERE status = 'active' AND current_version > 0";
/// `?1` campaign, `?2` top N as JSON ids.
pub const SET_LAST_TOP: &str = "UPDATE campaigns SET last_top = ?2 WHERE id = ?1";
/// `?1` participant.
pub const CLICKS_OF: &str = "SELECT count(*) AS n FROM clicks WHERE participant_id = ?1";
/// `?1` campaign, `?2` idempotency key.
pub const ENTRY_WITH_KEY: &str = "SELECT id FROM ledger WHERE campaign_id = ?1 AND idempotency_key = ?2";
/// `?1` referrer → their referrals counted by status and review.
pub const REFERRAL_COUNTS: &str = "\
SELECT status, review, count(*) AS n FROM referrals WHERE referrer_id = ?1 GROUP BY status, review";
