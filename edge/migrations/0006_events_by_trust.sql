-- A browser's event and a trusted server event never share a dedupe key: a
-- page that posts a server event's id first must not make the real
-- conversion a silent duplicate. SQLite cannot change a table's UNIQUE
-- constraint, so the log is rebuilt with (site, trusted, event id).
CREATE TABLE events_new (
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
  UNIQUE (site_id, trusted, event_id)
);
INSERT INTO events_new SELECT id, site_id, event_id, type, name, anonymous_id, user_id, occurred_at, received_at, trusted, payload FROM events;
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
CREATE INDEX events_by_site ON events(site_id, id);
