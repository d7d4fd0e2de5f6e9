-- What decides which rows a table accepts and how it stores them, beyond its columns and keys:
-- its constraints, indexes, triggers (and their functions), rules, policies and column
-- defaults, by table oid, as the identities and row versions (xmin) of their catalog rows:
-- it changes whenever one of them is created, dropped or altered. The check seeds a table
-- again only when this changed.
SELECT c.oid::int8 AS table_oid,
       concat_ws('/', c.xmin,
           (SELECT string_agg(co.oid || ':' || co.xmin, ',' ORDER BY co.oid)
              FROM pg_constraint co WHERE co.conrelid = c.oid),
           (SELECT string_agg(i.indexrelid || ':' || i.xmin, ',' ORDER BY i.indexrelid)
              FROM pg_index i WHERE i.indrelid = c.oid),
           (SELECT string_agg(tg.oid || ':' || tg.xmin || ':' || p.xmin, ',' ORDER BY tg.oid)
              FROM pg_trigger tg JOIN pg_proc p ON p.oid = tg.tgfoid WHERE tg.tgrelid = c.oid),
           (SELECT string_agg(r.oid || ':' || r.xmin, ',' ORDER BY r.oid)
              FROM pg_rewrite r WHERE r.ev_class = c.oid),
           (SELECT string_agg(po.oid || ':' || po.xmin, ',' ORDER BY po.oid)
              FROM pg_policy po WHERE po.polrelid = c.oid),
           (SELECT string_agg(d.oid || ':' || d.xmin, ',' ORDER BY d.oid)
              FROM pg_attrdef d WHERE d.adrelid = c.oid)
       ) AS signature
FROM pg_class c
WHERE c.relkind IN ('r', 'p') AND c.oid >= 16384
