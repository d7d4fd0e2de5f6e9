-- Empties a finished case's database for the next case: the extensions (but plpgsql), every
-- schema but public, migproof's and the system's, what lives in public, and migproof's stashes
-- and bookkeeping (its schema and functions the session that runs this has just installed).
-- What this leaves (an event trigger, a publication, a grant on public...) the fingerprint
-- finds, and the database is dropped instead.
DO $reset$
DECLARE r record;
BEGIN
    SET LOCAL lock_timeout = '2s';
    FOR r IN SELECT extname FROM pg_extension WHERE extname <> 'plpgsql' LOOP
        EXECUTE format('DROP EXTENSION IF EXISTS %I CASCADE', r.extname);
    END LOOP;
    FOR r IN SELECT nspname FROM pg_namespace
             WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'public', 'pg_toast', '_migproof')
               AND nspname NOT LIKE 'pg\_temp\_%' AND nspname NOT LIKE 'pg\_toast\_temp\_%' LOOP
        EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', r.nspname);
    END LOOP;
    FOR r IN SELECT c.relname FROM pg_class c
             WHERE c.relnamespace = '_migproof'::regnamespace AND c.relkind = 'r' AND c.relname <> 'applied' LOOP
        EXECUTE format('DROP TABLE _migproof.%I', r.relname);
    END LOOP;
    TRUNCATE _migproof.applied;
    -- tables first; an identity's sequence goes with its table (a partitioned table depends
    -- on itself)
    FOR r IN SELECT c.relname, c.relkind FROM pg_class c
             WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
               AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                               AND d.objid = c.oid AND d.deptype = 'i' AND d.refobjid <> c.oid)
             ORDER BY c.relkind IN ('r', 'p', 'f') DESC LOOP
        EXECUTE format('DROP %s IF EXISTS public.%I CASCADE',
            CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                           WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
            r.relname);
    END LOOP;
    -- a range type's constructors go with the type
    FOR r IN SELECT p.proname, p.prokind, pg_get_function_identity_arguments(p.oid) AS args
             FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
               AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                               AND d.objid = p.oid AND d.deptype = 'i' AND d.refobjid <> p.oid) LOOP
        EXECUTE format('DROP %s IF EXISTS public.%I(%s) CASCADE',
            CASE r.prokind WHEN 'a' THEN 'AGGREGATE' ELSE 'ROUTINE' END, r.proname, r.args);
    END LOOP;
    FOR r IN SELECT t.typname, t.typtype FROM pg_type t
             WHERE t.typnamespace = 'public'::regnamespace AND t.typtype IN ('c', 'd', 'e', 'r')
               AND (t.typtype <> 'c' OR (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c') LOOP
        EXECUTE format('DROP %s IF EXISTS public.%I CASCADE',
            CASE r.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, r.typname);
    END LOOP;
END
$reset$;
