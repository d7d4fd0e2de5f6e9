-- One sample, taken from a second connection while a migration runs: how many backends of
-- this database wait for a lock (the queue at and behind the migration), whether the migrating
-- backend ($1) is one of them, and the relation locks it holds or waits for, as JSON
-- [[oid, mode, granted], ...].
SELECT
  (SELECT count(*) FROM pg_stat_activity a
    WHERE a.datname = current_database() AND a.wait_event_type = 'Lock')::int8 AS waiting,
  EXISTS (SELECT 1 FROM pg_stat_activity a
    WHERE a.pid = $1 AND a.wait_event_type = 'Lock') AS migration_waits,
  (SELECT coalesce(json_agg(json_build_array(l.relation::int8, l.mode, l.granted)), '[]')
    FROM pg_locks l
    WHERE l.pid = $1 AND l.locktype = 'relation'
      AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
  )::text AS locks
