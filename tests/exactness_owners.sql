-- (kind, object, owner) for what tests/exactness_record.sql names; columns go by their table.
WITH user_ns AS (
    SELECT oid, nspname FROM pg_namespace WHERE nspname !~ '^pg_' AND nspname <> 'information_schema'
)
SELECT 'database', datname, pg_get_userbyid(datdba) FROM pg_database WHERE datname = %(db)s
UNION ALL
SELECT 'schema', nspname, pg_get_userbyid(nspowner) FROM pg_namespace n JOIN user_ns USING (oid, nspname)
UNION ALL
SELECT CASE WHEN c.relkind = 'S' THEN 'sequence' ELSE 'table' END, n.nspname || '.' || c.relname,
       pg_get_userbyid(c.relowner)
FROM pg_class c JOIN user_ns n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
UNION ALL
SELECT 'routine', n.nspname || '.' || f.proname || '(' || pg_get_function_identity_arguments(f.oid) || ')',
       pg_get_userbyid(f.proowner)
FROM pg_proc f JOIN user_ns n ON n.oid = f.pronamespace
UNION ALL
SELECT 'type', n.nspname || '.' || t.typname, pg_get_userbyid(t.typowner)
FROM pg_type t JOIN user_ns n ON n.oid = t.typnamespace WHERE t.typrelid = 0 AND t.typelem = 0
