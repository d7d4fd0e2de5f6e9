-- What a down and an up change under the same names: the oids of the user's tables, and their
-- columns' numbers and types' oids, one row per column (see `catalog::reidentified`).
SELECT c.oid::int8 AS table_oid,
       n.nspname::text AS schema,
       c.relname::text AS table_name,
       a.attname::text AS column_name,
       a.attnum::int4 AS attnum,
       a.atttypid::int8 AS type_oid
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'p') AND c.oid >= 16384
