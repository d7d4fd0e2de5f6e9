-- What the lock trace compares before and after each statement, read on the migrating
-- connection itself (inside its transaction, where its own catalog changes are visible) as one
-- JSON document: the user's relations with their data files, CHECK and foreign-key constraints
-- with their validation state, NOT NULL columns, this backend's pending sequential-scan counts
-- per table (deltas within one transaction are exact), the relation locks this backend holds,
-- and lock_timeout. Takes no lock on a user relation.
SELECT json_build_object(
  'lock_timeout', current_setting('lock_timeout'),
  'relations', (
    SELECT coalesce(json_agg(json_build_object(
             'oid', c.oid::int8, 'schema', n.nspname::text, 'name', c.relname::text,
             'kind', c.relkind::text, 'columns', c.relnatts::int4,
             'filenode', pg_relation_filenode(c.oid)::int8, 'table', i.indrelid::int8)), '[]')
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_index i ON i.indexrelid = c.oid
    WHERE c.relkind IN ('r', 'p', 'i', 'I', 'S', 'v', 'm', 'f')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema', '_migproof')
      AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'),
  'constraints', (
    SELECT coalesce(json_agg(json_build_object(
             'oid', con.oid::int8, 'table', con.conrelid::int8, 'name', con.conname::text,
             'kind', con.contype::text, 'validated', con.convalidated)), '[]')
    FROM pg_constraint con
    WHERE con.contype IN ('c', 'f') AND con.conrelid >= 16384),
  'not_null', (
    SELECT coalesce(json_agg(json_build_array(a.attrelid::int8, a.attnum::int4, a.attname::text)), '[]')
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    WHERE a.attnotnull AND a.attnum > 0 AND NOT a.attisdropped
      AND c.oid >= 16384 AND c.relkind IN ('r', 'p')),
  'scans', (
    SELECT coalesce(json_agg(json_build_array(s.relid::int8, s.seq_scan::int8)), '[]')
    FROM pg_stat_xact_user_tables s),
  'locks', (
    SELECT coalesce(json_agg(json_build_array(l.relation::int8, l.mode)), '[]')
    FROM pg_locks l
    WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted
      AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database()))
)::text
