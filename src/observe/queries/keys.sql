-- Primary keys, unique constraints and unique indexes (as column-name lists) and foreign
-- keys of the user's tables, by table oid; then ('d') the columns each partial or expression
-- unique index reads (from its key and from pg_depend, which records the columns its
-- expressions and predicate use).
SELECT con.conrelid::int8 AS table_oid,
       con.contype::text AS kind,
       (SELECT array_agg(a.attname::text ORDER BY k.i) FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
          JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n) AS columns,
       con.confrelid::int8 AS ref_oid,
       (SELECT array_agg(a.attname::text ORDER BY k.i) FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
          JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n) AS ref_columns
FROM pg_constraint con
WHERE con.contype IN ('p', 'u', 'f') AND con.conrelid >= 16384
UNION ALL
SELECT i.indrelid::int8, 'i',
       (SELECT array_agg(a.attname::text ORDER BY k.i) FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(n, i)
          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n),
       0::int8, NULL::text[]
FROM pg_index i
WHERE i.indisunique AND i.indrelid >= 16384
  AND (SELECT c.relkind FROM pg_class c WHERE c.oid = i.indrelid) IN ('r', 'p') AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
  AND i.indpred IS NULL AND NOT (0 = ANY (i.indkey::int2[]))
UNION ALL
SELECT i.indrelid::int8, 'd',
       (SELECT array_agg(DISTINCT a.attname::text) FROM pg_attribute a
          WHERE a.attrelid = i.indrelid AND a.attnum > 0
            AND (a.attnum = ANY (i.indkey::int2[])
                 OR EXISTS (SELECT 1 FROM pg_depend d
                            WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid
                              AND d.refclassid = 'pg_class'::regclass
                              AND d.refobjid = i.indrelid AND d.refobjsubid = a.attnum))),
       0::int8, NULL::text[]
FROM pg_index i
WHERE i.indisunique AND i.indrelid >= 16384
  AND (SELECT c.relkind FROM pg_class c WHERE c.oid = i.indrelid) IN ('r', 'p')
  AND (i.indpred IS NOT NULL OR 0 = ANY (i.indkey::int2[]))
