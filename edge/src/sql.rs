//! Every SQL statement the edge runs, in one place, so the tests crate can run
//! the very same text against real SQLite with the migrations applied.

/// `?1` publishable key → the site and its allowed origins (comma-joined).
pub const SITE_BY_PUBLISHABLE_KEY: &str = "\
SELECT s.id AS site_id, s.tenant_id AS tenant_id,
       (SELECT group_concat(o.origin, ' ') FROM site_origins o WHERE o.site_id = s.id) AS origins
FROM sites s WHERE s.publishable_key = ?1";

/// `?1` SHA-256 hex of a secret key → its site.
pub const SITE_BY_SECRET_KEY_HASH: &str = "\
SELECT s.id AS site_id, s.tenant_id AS tenant_id FROM sites s WHERE s.secret_key_hash = ?1";

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
