-- refloop schema, first cut: tenants, their sites and keys, campaigns, and the
-- raw event log. Times are milliseconds since the Unix epoch (UTC).

CREATE TABLE tenants (
  id          INTEGER PRIMARY KEY,
  name        TEXT    NOT NULL,
  created_at  INTEGER NOT NULL
);

-- A site is one origin group of a tenant with its key pair. The publishable key
-- is public; the secret key is kept only as its SHA-256 (hex).
CREATE TABLE sites (
  id               INTEGER PRIMARY KEY,
  tenant_id        INTEGER NOT NULL REFERENCES tenants(id),
  name             TEXT    NOT NULL,
  publishable_key  TEXT    NOT NULL UNIQUE,
  secret_key_hash  TEXT    NOT NULL UNIQUE,
  created_at       INTEGER NOT NULL
);

CREATE TABLE site_origins (
  site_id  INTEGER NOT NULL REFERENCES sites(id),
  origin   TEXT    NOT NULL,
  PRIMARY KEY (site_id, origin)
) WITHOUT ROWID;
-- Preflights ask "does any site allow this origin?".
CREATE INDEX site_origins_by_origin ON site_origins(origin);

CREATE TABLE campaigns (
  id          INTEGER PRIMARY KEY,
  tenant_id   INTEGER NOT NULL REFERENCES tenants(id),
  slug        TEXT    NOT NULL,
  name        TEXT    NOT NULL,
  created_at  INTEGER NOT NULL,
  UNIQUE (tenant_id, slug)
);

-- Every event ever accepted, once per (site, event id): the unique constraint is
-- what makes a resent event a no-op.
CREATE TABLE events (
  id            INTEGER PRIMARY KEY,
  site_id       INTEGER NOT NULL REFERENCES sites(id),
  event_id      TEXT    NOT NULL,
  type          TEXT    NOT NULL CHECK (type IN ('track', 'identify', 'page')),
  name          TEXT    NOT NULL,
  anonymous_id  TEXT,
  user_id       TEXT,
  occurred_at   INTEGER NOT NULL,
  received_at   INTEGER NOT NULL,
  trusted       INTEGER NOT NULL DEFAULT 0 CHECK (trusted IN (0, 1)),
  payload       TEXT    NOT NULL,
  UNIQUE (site_id, event_id)
);
-- The admin listing: a site's newest events.
CREATE INDEX events_by_site ON events(site_id, id);
