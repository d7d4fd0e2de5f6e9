-- no-transaction
-- An interrupted build leaves an INVALID index named events_kind_idx; every retry then fails.
CREATE INDEX CONCURRENTLY events_kind_idx ON events (kind);
