-- no-transaction
-- IF NOT EXISTS makes a retry "succeed" while an interrupted build left an INVALID index.
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_kind_idx ON events (kind);
