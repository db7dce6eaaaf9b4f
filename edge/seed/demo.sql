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
-- Version 1 of the demo campaign: code mode, a two-step quest whose second
-- step is a trusted purchase (sent by the demo's server with the secret key),
-- points for joining and for every confirmed referral, milestone rewards with
-- the full grant lifecycle. Everyone on a laptop shares 127.0.0.1, so the
-- shared-IP fraud signal is off here.
INSERT OR IGNORE INTO campaign_versions (campaign_id, version, config, created_at) VALUES (1, 1, '{
  "name": "Launch waitlist",
  "mode": "code",
  "landing_url": "http://127.0.0.1:8080/",
  "attribution_window_days": 90,
  "quest": {"steps": [{"event": "signup"}, {"event": "purchase", "trusted": true}], "window_days": 30},
  "point_rules": [
    {"id": "joined", "event": "signup", "to": "self", "points": 10},
    {"id": "per-referral", "event": "referral_confirmed", "to": "referrer", "points": 50},
    {"id": "welcome", "event": "referral_confirmed", "to": "referee", "points": 20}
  ],
  "milestones": [
    {"id": "starter", "name": "STARTER", "confirmed_referrals": 1, "reward": "bonus"},
    {"id": "pro", "name": "PRO", "confirmed_referrals": 3, "reward": "credit"},
    {"id": "elite", "name": "ELITE", "confirmed_referrals": 5, "reward": "swag"}
  ],
  "rewards": [
    {"id": "bonus", "name": "100 bonus points", "kind": {"type": "points", "points": 100}},
    {"id": "credit", "name": "$10 credit", "kind": {"type": "credit", "amount_minor": 1000, "currency": "USD"}, "requires_review": true},
    {"id": "swag", "name": "Launch hoodie", "kind": {"type": "coupon", "prefix": "HOODIE"}, "requires_review": true, "expires_after_days": 60}
  ],
  "fraud": {"flag_shared_ip": false, "velocity_per_hour": 100},
  "leaderboard": {"score_by": "points", "periods": ["all", "month", "week"], "top_n": 10},
  "share_text": "I joined the launch waitlist. Skip the queue with my link:"
}', 1767225600000);
UPDATE campaigns SET current_version = 1 WHERE id = 1 AND current_version = 0;
-- An invite-mode campaign for www/invite.html: single-use invitations.
INSERT OR IGNORE INTO campaigns (id, tenant_id, slug, name, created_at) VALUES (2, 1, 'friends', 'Friends of Lumen', 1767225600000);
INSERT OR IGNORE INTO campaign_versions (campaign_id, version, config, created_at) VALUES (2, 1, '{
  "name": "Friends of Lumen",
  "mode": "invite",
  "landing_url": "http://127.0.0.1:8080/",
  "quest": {"steps": []},
  "point_rules": [{"id": "friend", "event": "referral_confirmed", "to": "referrer", "points": 25}],
  "fraud": {"flag_shared_ip": false}
}', 1767225600000);
UPDATE campaigns SET current_version = 1 WHERE id = 2 AND current_version = 0;
