-- Webhooks are delivered by the campaign's own object, from its alarm within
-- seconds of the notice; the cron takes what no alarm sent. A delivery is
-- claimed (a run's random token, until a time past the run's last timeout)
-- before it is sent, so two runners never send it twice.
ALTER TABLE outbox ADD COLUMN campaign_id INTEGER;
ALTER TABLE outbox ADD COLUMN claim TEXT;
ALTER TABLE outbox ADD COLUMN claimed_until INTEGER NOT NULL DEFAULT 0;
CREATE INDEX outbox_due_by_campaign ON outbox(campaign_id, next_attempt_at) WHERE delivered_at IS NULL;
CREATE INDEX outbox_claim ON outbox(claim) WHERE claim IS NOT NULL;
