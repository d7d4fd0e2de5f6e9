-- The user's tables and their columns, with what the seeder and the data checks need:
-- one row per column, in column order.
SELECT c.oid::int8 AS table_oid,
       n.nspname::text AS schema,
       c.relname::text AS table_name,
       a.attname::text AS column_name,
       a.attnum::int4 AS attnum,
       format_type(a.atttypid, a.atttypmod) AS type_sql,
       a.atttypid::int8 AS type_oid,
       bt.typname::text AS base_type,
       bt.typcategory::text AS category,
       CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END AS typmod,
       (a.attnotnull OR (t.typtype = 'd' AND t.typnotnull)) AS not_null,
       (d.adbin IS NOT NULL OR (t.typtype = 'd' AND t.typdefault IS NOT NULL)) AS has_default,
       a.attidentity::text AS identity,
       a.attgenerated::text AS generated,
       (SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = bt.oid) AS enum_labels,
       (et.oid IS NOT NULL) AS is_array,
       coalesce(pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%', false) AS sequence_default
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A'
JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE COALESCE(et.oid, t.oid) END
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE c.relkind IN ('r', 'p')
  AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', '_migproof')
  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend dep WHERE dep.classid = 'pg_class'::regclass AND dep.objid = c.oid AND dep.deptype = 'e')
  AND NOT c.relname = ANY (COALESCE(
      string_to_array(current_setting('migproof.history_tables', true), ','), '{}'))
ORDER BY n.nspname, c.relname, a.attnum
