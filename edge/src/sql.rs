//! Every SQL statement the worker runs against D1, in one place, so the tests
//! crate runs the very same text against real SQLite with the migrations
//! applied. D1 is the directory (tenants, sites, keys, origins, campaigns and
//! their versions, the links that name a campaign) and the log (events, the
//! webhook outbox, the audit log). A campaign's own state is in its Durable
//! Object (`campaign/`, `refloop_core::engine::sql_store`).

/// `NAME = "SQL";` rows: each a `pub const`, and all of them in `ALL`, so
/// the tests prepare every statement against the migrated schema without a
/// list to keep.
macro_rules! statements {
    ($($(#[$doc:meta])* $name:ident = $sql:expr;)*) => {
        $($(#[$doc])* pub const $name: &str = $sql;)*

        /// Every statement with its name.
        pub const ALL: &[(&str, &str)] = &[$((stringify!($name), $name)),*];
    };
}

statements! {
    /// `?1` publishable key, `?2` now → the site and its allowed origins
    /// (space-joined): its current key, or its previous one within the grace
    /// period of a rotation.
    SITE_BY_PUBLISHABLE_KEY = "\
    SELECT s.id AS site_id, s.tenant_id AS tenant_id, s.rate_limit_per_minute AS per_minute,
           (SELECT group_concat(o.origin, ' ') FROM site_origins o WHERE o.site_id = s.id) AS origins
    FROM sites s WHERE s.publishable_key = ?1 OR (s.previous_publishable_key = ?1 AND s.previous_keys_until > ?2)";

    /// `?1` SHA-256 hex of a secret key, `?2` now → its site (the current key,
    /// or the previous one within the grace period of a rotation).
    SITE_BY_SECRET_KEY_HASH = "\
    SELECT s.id AS site_id, s.tenant_id AS tenant_id, s.rate_limit_per_minute AS per_minute,
           (SELECT group_concat(o.origin, ' ') FROM site_origins o WHERE o.site_id = s.id) AS origins
    FROM sites s WHERE s.secret_key_hash = ?1 OR (s.previous_secret_key_hash = ?1 AND s.previous_keys_until > ?2)";

    /// `?1` origin → whether any site allows it (for preflights, which carry no key).
    ANY_SITE_ALLOWS_ORIGIN = "\
    SELECT 1 AS allowed FROM site_origins WHERE origin = ?1 LIMIT 1";

    /// Stores one event; an id the site already has changes nothing, which is how
    /// an event takes effect at most once however often it is sent.
    /// `?1` site, `?2` event id, `?3` type, `?4` name, `?5` anonymous id, `?6` user id,
    /// `?7` occurred at (ms), `?8` received at (ms), `?9` trusted (0/1), `?10` payload JSON.
    /// Stores one event; an id the site already has changes nothing, which is how
    /// an event takes effect at most once in the log however often it is sent.
    /// `?1` site, `?2` event id, `?3` type, `?4` name, `?5` anonymous id, `?6` user id,
    /// `?7` occurred at (ms), `?8` received at (ms), `?9` trusted (0/1), `?10` payload JSON.
    INSERT_EVENT = "\
    INSERT INTO events (site_id, event_id, type, name, anonymous_id, user_id, occurred_at, received_at, trusted, payload)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
    ON CONFLICT (site_id, trusted, event_id) DO NOTHING";

    /// `?1` site, `?2` limit → the newest events first.
    LIST_EVENTS = "\
    SELECT event_id, type, name, anonymous_id, user_id, occurred_at, received_at, trusted, payload
    FROM events WHERE site_id = ?1 ORDER BY id DESC LIMIT ?2";

    // ---- tenants and sites ---------------------------------------------------
    INSERT_TENANT = "INSERT INTO tenants (name, created_at) VALUES (?1, ?2) RETURNING id";
    /// `?1` tenant, `?2` name, `?3` publishable key, `?4` secret key hash, `?5` now, `?6` limit per minute.
    INSERT_SITE = "\
    INSERT INTO sites (tenant_id, name, publishable_key, secret_key_hash, created_at, rate_limit_per_minute)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
    /// `?1` publishable key of the site just inserted, `?2` origin.
    INSERT_SITE_ORIGIN = "\
    INSERT INTO site_origins (site_id, origin) SELECT id, ?2 FROM sites WHERE publishable_key = ?1";
    /// `?1` tenant → its sites, oldest first.
    SITES_OF_TENANT = "\
    SELECT s.id, s.name, s.publishable_key, s.created_at, s.rate_limit_per_minute, s.previous_keys_until,
           (SELECT group_concat(o.origin, ' ') FROM site_origins o WHERE o.site_id = s.id) AS origins
    FROM sites s WHERE s.tenant_id = ?1 ORDER BY s.id";
    /// `?1` tenant, `?2` site → that site, if it is the tenant's.
    SITE_OF_TENANT = "\
    SELECT s.id, s.name, s.publishable_key, s.created_at, s.rate_limit_per_minute, s.previous_keys_until,
           (SELECT group_concat(o.origin, ' ') FROM site_origins o WHERE o.site_id = s.id) AS origins
    FROM sites s WHERE s.tenant_id = ?1 AND s.id = ?2";
    /// `?1` site, `?2` new publishable key, `?3` new secret key hash, `?4` the
    /// previous pair works until: a rotation. A pair still in an earlier
    /// grace period stops now (two rotations keep one previous pair).
    ROTATE_SITE_KEYS = "\
    UPDATE sites SET previous_publishable_key = publishable_key, previous_secret_key_hash = secret_key_hash,
                     previous_keys_until = ?4, publishable_key = ?2, secret_key_hash = ?3
    WHERE id = ?1";
    /// `?1` site: its origins, before the new list is written.
    CLEAR_SITE_ORIGINS = "DELETE FROM site_origins WHERE site_id = ?1";
    /// `?1` site, `?2` origin.
    ADD_SITE_ORIGIN = "INSERT INTO site_origins (site_id, origin) VALUES (?1, ?2) ON CONFLICT DO NOTHING";
    TENANT = "SELECT id, name, created_at FROM tenants WHERE id = ?1";

    // ---- campaigns -----------------------------------------------------------

    /// `?1` tenant → its campaigns that take events.
    ACTIVE_CAMPAIGNS =
        "SELECT id, tenant_id, slug, name, status, current_version, created_at, updated_at FROM campaigns
    WHERE tenant_id = ?1 AND status = 'active' AND current_version > 0 ORDER BY id";

    /// `?1` tenant, `?2` campaign slug or id.
    CAMPAIGN =
        "SELECT id, tenant_id, slug, name, status, current_version, created_at, updated_at FROM campaigns
    WHERE tenant_id = ?1 AND (slug = ?2 OR CAST(id AS TEXT) = ?2)";

    CAMPAIGNS_OF_TENANT = "SELECT id, tenant_id, slug, name, status, current_version, created_at, updated_at FROM campaigns WHERE tenant_id = ?1 ORDER BY id";

    /// `?1` campaign, `?2` version.
    CAMPAIGN_VERSION =
        "SELECT version, config, created_at FROM campaign_versions WHERE campaign_id = ?1 AND version = ?2";

    CAMPAIGN_VERSIONS =
        "SELECT version, config, created_at FROM campaign_versions WHERE campaign_id = ?1 ORDER BY version";

    /// `?1` tenant, `?2` slug, `?3` name, `?4` now. Its version 1 follows in the same batch.
    INSERT_CAMPAIGN = "\
    INSERT INTO campaigns (tenant_id, slug, name, created_at, current_version, updated_at) VALUES (?1, ?2, ?3, ?4, 1, ?4)";

    /// `?1` tenant, `?2` slug, `?3` config JSON, `?4` now.
    INSERT_FIRST_VERSION = "\
    INSERT INTO campaign_versions (campaign_id, version, config, created_at)
    SELECT id, 1, ?3, ?4 FROM campaigns WHERE tenant_id = ?1 AND slug = ?2";

    /// `?1` campaign, `?2` the version the update started from, `?3` config, `?4`
    /// now. A concurrent update makes the primary key clash and the batch abort.
    INSERT_NEXT_VERSION =
        "INSERT INTO campaign_versions (campaign_id, version, config, created_at) VALUES (?1, ?2 + 1, ?3, ?4)";

    /// `?1` campaign, `?2` new version, `?3` name, `?4` now.
    SET_CAMPAIGN_VERSION =
        "UPDATE campaigns SET current_version = ?2, name = ?3, updated_at = ?4 WHERE id = ?1";

    /// `?1` campaign, `?2` status, `?3` now.
    SET_CAMPAIGN_STATUS = "UPDATE campaigns SET status = ?2, updated_at = ?3 WHERE id = ?1";

    // ---- participants --------------------------------------------------------

    /// `?1` campaign, `?2` user id, `?3` anonymous id → the participant the event
    /// happened to: by user id first, else by an anonymous id they were seen with.
    /// `?1` participant, `?2` campaign.
    /// `?1` campaign, `?2` code.
    /// `?1` code, any campaign (a referral link names only the code).
    CAMPAIGN_BY_ID = "\
    SELECT id, tenant_id, slug, name, status, current_version, created_at, updated_at FROM campaigns WHERE id = ?1";

    /// `?1` campaign, `?2` text: participant search (code, user id or anonymous id prefix).
    /// `?1` id, `?2` campaign, `?3` anonymous id, `?4` user id, `?5` code, `?6` joined,
    /// `?7` traits, `?8` email hash, `?9` email domain, `?10` ip hash, `?11` device id.
    /// `?1` campaign, `?2` anonymous id, `?3` participant. Strict: a concurrent
    /// join of the same browser fails the batch, and the retry finds the winner.
    /// `?1` id, `?2` anonymous id, `?3` user id, `?4` traits, `?5` email hash,
    /// `?6` email domain, `?7` ip hash, `?8` device id.
    /// `?1` participant: one more confirmed referral.
    /// `?1` participant, `?2` points, `?3` of which referrer-rule points.
    /// `?1` participant, `?2` now: GDPR erasure keeps the ledger (sums stay true)
    /// and forgets who the person was.
    /// `?1` site, `?2` user id, `?3` anonymous id: the raw events of the person.
    /// `?1` tenant, `?2` user ids, `?3` anonymous ids (JSON arrays): the raw
    /// events of a person, every site of the tenant, every device.
    ERASE_EVENTS = "\
    UPDATE events SET payload = '{}', anonymous_id = NULL, user_id = NULL
    WHERE site_id IN (SELECT id FROM sites WHERE tenant_id = ?1)
      AND (user_id IN (SELECT value FROM json_each(?2)) OR anonymous_id IN (SELECT value FROM json_each(?3)))";
    /// `?1` tenant, `?2` user ids, `?3` anonymous ids, `?4` limit: a person's raw events.
    EVENTS_OF_PERSON = "\
    SELECT event_id, type, name, anonymous_id, user_id, occurred_at, received_at, trusted, payload FROM events
    WHERE site_id IN (SELECT id FROM sites WHERE tenant_id = ?1)
      AND (user_id IN (SELECT value FROM json_each(?2)) OR anonymous_id IN (SELECT value FROM json_each(?3)))
    ORDER BY id LIMIT ?4";
    /// `?1` tenant, `?2` audit targets (JSON array): the free text operators
    /// wrote about a person (adjustment notes) blanked.
    ERASE_AUDIT_NOTES = "\
    UPDATE audit_log SET detail = json_set(detail, '$.note', '[erased]')
    WHERE tenant_id = ?1 AND target IN (SELECT value FROM json_each(?2)) AND json_extract(detail, '$.note') IS NOT NULL";

    // ---- guards --------------------------------------------------------------

    // ---- referrals -----------------------------------------------------------
    // ---- invitations and clicks ----------------------------------------------
    // ---- ledger and leaderboard ----------------------------------------------
    // ---- grants --------------------------------------------------------------
    // ---- webhooks and audit ----------------------------------------------------
    /// `?1` tenant, `?2` type, `?3` payload JSON, `?4` now, `?5` the notice's
    /// key, `?6` its campaign: one outbox row per subscribed webhook, in the
    /// transaction of the effect it reports (once per webhook and key).
    ENQUEUE_NOTICE = "\
    INSERT INTO outbox (webhook_id, type, payload, created_at, next_attempt_at, notice_key, campaign_id)
    SELECT id, ?2, ?3, ?4, ?4, ?5, ?6 FROM webhooks
    WHERE tenant_id = ?1 AND active = 1 AND (events = '*' OR instr(' ' || events || ' ', ' ' || ?2 || ' ') > 0)
    ON CONFLICT (webhook_id, notice_key) DO NOTHING";
    INSERT_WEBHOOK = "\
    INSERT INTO webhooks (tenant_id, url, secret, events, created_at) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id";
    LIST_WEBHOOKS =
        "SELECT id, url, events, active, created_at FROM webhooks WHERE tenant_id = ?1 AND active = 1 ORDER BY id";
    DELETE_WEBHOOK = "UPDATE webhooks SET active = 0 WHERE id = ?1 AND tenant_id = ?2";
    /// `?1` webhook, `?2` limit: the delivery log.
    DELIVERIES = "\
    SELECT id, type, payload, created_at, attempts, next_attempt_at, delivered_at, last_status, last_error FROM outbox
    WHERE webhook_id = ?1 ORDER BY id DESC LIMIT ?2";
    /// `?1` now, `?2` claim token, `?3` claimed until, `?4` limit, `?5` campaign,
    /// `?6` attempts before a delivery is given up (`webhooks::MAX_ATTEMPTS`):
    /// the campaign's due deliveries to live webhooks, claimed by this run.
    CLAIM_CAMPAIGN_DELIVERIES = "\
    UPDATE outbox SET claim = ?2, claimed_until = ?3 WHERE id IN (
      SELECT o.id FROM outbox o JOIN webhooks w ON w.id = o.webhook_id AND w.active = 1
      WHERE o.campaign_id = ?5 AND o.delivered_at IS NULL AND o.next_attempt_at <= ?1
        AND o.attempts < ?6 AND o.claimed_until <= ?1
      ORDER BY o.next_attempt_at LIMIT ?4)";
    /// `?1` now, `?2` claim token, `?3` claimed until, `?4` limit, `?5` due
    /// before, `?6` attempts before a delivery is given up: the cron's,
    /// deliveries of no campaign or that no alarm sent.
    CLAIM_STRAGGLERS = "\
    UPDATE outbox SET claim = ?2, claimed_until = ?3 WHERE id IN (
      SELECT o.id FROM outbox o JOIN webhooks w ON w.id = o.webhook_id AND w.active = 1
      WHERE o.delivered_at IS NULL AND o.next_attempt_at <= ?1 AND o.attempts < ?6 AND o.claimed_until <= ?1
        AND (o.campaign_id IS NULL OR o.next_attempt_at <= ?5)
      ORDER BY o.next_attempt_at LIMIT ?4)";
    /// `?1` claim token → what this run sends.
    CLAIMED_DELIVERIES = "\
    SELECT o.id, o.type, o.payload, o.attempts, o.notice_key, w.url, w.secret FROM outbox o JOIN webhooks w ON w.id = o.webhook_id
    WHERE o.claim = ?1 ORDER BY o.id";
    /// `?1` campaign, `?2` attempts before a delivery is given up → when its
    /// next delivery to a live webhook is due.
    NEXT_DELIVERY_DUE = "\
    SELECT min(o.next_attempt_at) AS at FROM outbox o JOIN webhooks w ON w.id = o.webhook_id AND w.active = 1
    WHERE o.campaign_id = ?1 AND o.delivered_at IS NULL AND o.attempts < ?2";
    /// `?1` id, `?2` now, `?3` status.
    DELIVERED = "\
    UPDATE outbox SET delivered_at = ?2, attempts = attempts + 1, last_status = ?3, last_error = NULL, claim = NULL, claimed_until = 0
    WHERE id = ?1";
    /// `?1` id, `?2` next attempt, `?3` status, `?4` error.
    DELIVERY_FAILED = "\
    UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2, last_status = ?3, last_error = ?4, claim = NULL, claimed_until = 0
    WHERE id = ?1";

    /// `?1` tenant, `?2` action, `?3` target, `?4` detail JSON, `?5` at.
    AUDIT = "INSERT INTO audit_log (tenant_id, action, target, detail, at) VALUES (?1, ?2, ?3, ?4, ?5)";
    LIST_AUDIT =
        "SELECT action, target, detail, at FROM audit_log WHERE tenant_id = ?1 ORDER BY id DESC LIMIT ?2";

    // ---- statistics ------------------------------------------------------------

    // ---- abuse limits ------------------------------------------------------------
    /// `?1` buckets (JSON array), `?2` window → each bucket's count, this request included.
    COUNT_REQUESTS = "\
    INSERT INTO rate_windows (bucket, window, n) SELECT value, ?2, 1 FROM json_each(?1) WHERE true
    ON CONFLICT (bucket, window) DO UPDATE SET n = n + 1 RETURNING bucket, n";

    /// `?1` before → forget old windows (cron).
    FORGET_WINDOWS = "DELETE FROM rate_windows WHERE window < ?1";

    // ---- reads of the console ----------------------------------------------------

    LIST_TENANTS = "SELECT id, name, created_at FROM tenants ORDER BY id LIMIT 1000";

    // ---- the directory of referral links -----------------------------------------

    /// `?1` token (a referral code or an invitation), `?2` campaign, `?3` kind
    /// (`code` or `invite`): which campaign a link names. Codes are unique per
    /// campaign; a clash across campaigns keeps the first (see ARCHITECTURE.md).
    INSERT_LINK = "\
    INSERT INTO referral_links (token, campaign_id, kind) VALUES (?1, ?2, ?3) ON CONFLICT (token) DO NOTHING";

    /// `?1` tokens (JSON array) → the campaign each names.
    LINKS = "\
    SELECT l.token, l.kind, c.id, c.tenant_id, c.slug, c.name, c.status, c.current_version, c.created_at, c.updated_at
    FROM referral_links l JOIN campaigns c ON c.id = l.campaign_id WHERE l.token IN (SELECT value FROM json_each(?1))";

    /// `?1` site, `?2` received at, `?3` trusted, `?4` events (JSON array of
    /// {id, type, name, anonymous_id, user_id, at, payload}) → the ids stored now.
    /// An id the site has already changes nothing: the log keeps each event once.
    INSERT_EVENTS = "\
    INSERT INTO events (site_id, event_id, type, name, anonymous_id, user_id, occurred_at, received_at, trusted, payload)
    SELECT ?1, json_extract(j.value, '$.id'), json_extract(j.value, '$.type'), json_extract(j.value, '$.name'),
           json_extract(j.value, '$.anonymous_id'), json_extract(j.value, '$.user_id'), json_extract(j.value, '$.at'),
           ?2, ?3, json_extract(j.value, '$.payload')
    FROM json_each(?4) j WHERE true
    ON CONFLICT (site_id, trusted, event_id) DO NOTHING
    RETURNING event_id";

    /// Every campaign of every tenant (the root key's check walks them).
    ALL_CAMPAIGNS =
        "SELECT id, tenant_id, slug, name, status, current_version, created_at, updated_at FROM campaigns ORDER BY id";

    /// Row counts of the directory and the log.
    DIRECTORY_COUNTS = "\
    SELECT (SELECT count(*) FROM tenants) AS tenants, (SELECT count(*) FROM sites) AS sites,
           (SELECT count(*) FROM site_origins) AS site_origins, (SELECT count(*) FROM campaigns) AS campaigns,
           (SELECT count(*) FROM campaign_versions) AS campaign_versions, (SELECT count(*) FROM events) AS events,
           (SELECT count(*) FROM referral_links) AS referral_links, (SELECT count(*) FROM webhooks) AS webhooks,
           (SELECT count(*) FROM outbox) AS outbox, (SELECT count(*) FROM audit_log) AS audit_log";
}
