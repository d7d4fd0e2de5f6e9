-- The relation locks another backend (the migrating one, $1) holds right now; sampled from a
-- second connection while a statement that cannot run in a transaction block runs.
SELECT l.relation::int8, l.mode
FROM pg_locks l
WHERE l.pid = $1 AND l.locktype = 'relation' AND l.granted
  AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
