-- The demo tenant the run command and the tests start from. Its keys are known
-- on purpose (README): pk_demo_refloop_public / sk_demo_refloop_secret. The
-- secret key is stored as its SHA-256, as every secret key is.
INSERT OR IGNORE INTO tenants (id, name, created_at) VALUES (1, 'Demo Co', 1767225600000);
INSERT OR IGNORE INTO sites (id, tenant_id, name, publishable_key, secret_key_hash, created_at)
VALUES (1, 1, 'demo site', 'pk_demo_refloop_public',
        '714ac1fbe732b8b6caa47d376cbc2e9b9c2f5562865e252f96ed34c5c34f3977', 1767225600000);
INSERT OR IGNORE INTO site_origins (site_id, origin) VALUES
  (1, 'http://127.0.0.1:8080'), (1, 'http://localhost:8080'),
  (1, 'http://127.0.0.1:8081'), (1, 'http://localhost:8081'),
  (1, 'http://127.0.0.1:8787'), (1, 'http://localhost:8787'),
  (1, 'http://127.0.0.1:8788'), (1, 'http://localhost:8788');
INSERT OR IGNORE INTO campaigns (id, tenant_id, slug, name, created_at)
VALUES (1, 1, 'launch', 'Launch waitlist', 1767225600000);
