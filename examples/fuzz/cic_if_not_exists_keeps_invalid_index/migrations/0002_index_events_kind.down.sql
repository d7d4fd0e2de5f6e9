-- no-transaction
DROP INDEX CONCURRENTLY IF EXISTS events_kind_idx;
