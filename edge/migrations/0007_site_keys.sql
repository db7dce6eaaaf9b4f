-- A site's keys can be rotated: the new pair works at once and the previous
-- pair keeps working until `previous_keys_until` (a grace period, so a site
-- can deploy the new keys without dropping events). A tenant can have several
-- sites, and a site's origins can be edited.
ALTER TABLE sites ADD COLUMN previous_publishable_key TEXT;
ALTER TABLE sites ADD COLUMN previous_secret_key_hash TEXT;
ALTER TABLE sites ADD COLUMN previous_keys_until INTEGER;
CREATE UNIQUE INDEX sites_by_previous_publishable_key ON sites(previous_publishable_key);
CREATE UNIQUE INDEX sites_by_previous_secret_key_hash ON sites(previous_secret_key_hash);
