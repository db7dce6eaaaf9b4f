-- A notice reaches the outbox from two writers: the worker right after the
-- campaign's call, and the campaign's object (its own outbox, drained into
-- this one by its alarm) in case the first write was lost. The notice's key
-- (`n-<campaign>-<seq>`, also the payload's `id`) makes both land once.
ALTER TABLE outbox ADD COLUMN notice_key TEXT;
CREATE UNIQUE INDEX outbox_once ON outbox(webhook_id, notice_key);
