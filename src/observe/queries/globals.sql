-- What a migration can change outside its own database: roles and their attributes,
-- memberships, per-role and per-database settings, databases, tablespaces and ALTER SYSTEM.
-- One row per item: (kind, name, detail). migproof's own scratch databases and roles are left
-- out: runs come and go while this is read.
SELECT 'role' AS kind, r.rolname::text AS name,
       concat_ws(' ',
         CASE WHEN r.rolsuper THEN 'SUPERUSER' END, CASE WHEN r.rolcreaterole THEN 'CREATEROLE' END,
         CASE WHEN r.rolcreatedb THEN 'CREATEDB' END, CASE WHEN r.rolcanlogin THEN 'LOGIN' END,
         CASE WHEN r.rolreplication THEN 'REPLICATION' END,
         CASE WHEN r.rolbypassrls THEN 'BYPASSRLS' END) AS detail
  FROM pg_roles r
 WHERE r.rolname NOT LIKE 'migproof\_%'
UNION ALL
SELECT 'membership', m.rolname::text, g.rolname::text
  FROM pg_auth_members a
  JOIN pg_roles m ON m.oid = a.member
  JOIN pg_roles g ON g.oid = a.roleid
 WHERE m.rolname NOT LIKE 'migproof\_%' AND g.rolname NOT LIKE 'migproof\_%'
UNION ALL
SELECT 'role setting', coalesce(r.rolname::text, '*') || ' in ' || coalesce(d.datname::text, '*'),
       array_to_string(s.setconfig, ', ')
  FROM pg_db_role_setting s
  LEFT JOIN pg_roles r ON r.oid = s.setrole
  LEFT JOIN pg_database d ON d.oid = s.setdatabase
 WHERE coalesce(d.datname::text, '') NOT LIKE 'migproof\_%'
UNION ALL
SELECT 'database', d.datname::text, ''
  FROM pg_database d
 WHERE d.datname NOT LIKE 'migproof\_%'
UNION ALL
SELECT 'tablespace', t.spcname::text, ''
  FROM pg_tablespace t
UNION ALL
SELECT 'system setting', f.name, coalesce(f.setting, '')
  FROM pg_file_settings f
 WHERE f.sourcefile LIKE '%postgresql.auto.conf'
ORDER BY 1, 2, 3
