-- Every effective privilege of every non-superuser role named like %(like)s (or in %(names)s) in the current
-- database,
-- with and without grant option: (role, kind, object, privilege). Used by tests/exactness.py.
WITH roles AS (
    SELECT oid, rolname FROM pg_roles WHERE (rolname LIKE %(like)s OR rolname = ANY(%(names)s)) AND NOT rolsuper
),
opt(suffix) AS (VALUES (''), (' WITH GRANT OPTION')),
user_ns AS (
    SELECT oid, nspname FROM pg_namespace WHERE nspname !~ '^pg_' AND nspname NOT IN ('information_schema', 'pgwarden', 'pgwarden_ledger')
),
rels AS (
    SELECT c.oid, c.relkind, n.nspname || '.' || c.relname AS name
    FROM pg_class c JOIN user_ns n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
)
SELECT r.rolname, 'database', current_database(), p || o.suffix
FROM roles r CROSS JOIN unnest(ARRAY['CONNECT', 'CREATE', 'TEMPORARY']) p CROSS JOIN opt o
WHERE has_database_privilege(r.oid, current_database(), p || o.suffix)
UNION ALL
SELECT r.rolname, 'schema', n.nspname, p || o.suffix
FROM roles r CROSS JOIN user_ns n CROSS JOIN unnest(ARRAY['USAGE', 'CREATE']) p CROSS JOIN opt o
WHERE has_schema_privilege(r.oid, n.oid, p || o.suffix)
UNION ALL
SELECT r.rolname, 'table', c.name, p || o.suffix
FROM roles r CROSS JOIN rels c CROSS JOIN unnest(%(table_privs)s::text[]) p CROSS JOIN opt o
WHERE c.relkind <> 'S' AND has_table_privilege(r.oid, c.oid, p || o.suffix)
UNION ALL
SELECT r.rolname, 'column', c.name || '.' || a.attname, p || o.suffix
FROM roles r CROSS JOIN rels c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
CROSS JOIN unnest(%(column_privs)s::text[]) p CROSS JOIN opt o
WHERE c.relkind <> 'S' AND has_column_privilege(r.oid, c.oid, a.attnum, p || o.suffix)
UNION ALL
SELECT r.rolname, 'sequence', c.name, p || o.suffix
FROM roles r CROSS JOIN rels c CROSS JOIN unnest(%(sequence_privs)s::text[]) p CROSS JOIN opt o
WHERE c.relkind = 'S' AND has_sequence_privilege(r.oid, c.oid, p || o.suffix)
UNION ALL
SELECT r.rolname, 'routine', n.nspname || '.' || f.proname || '(' || pg_get_function_identity_arguments(f.oid) || ')',
       'EXECUTE' || o.suffix
FROM roles r CROSS JOIN pg_proc f JOIN user_ns n ON n.oid = f.pronamespace CROSS JOIN opt o
WHERE has_function_privilege(r.oid, f.oid, 'EXECUTE' || o.suffix)
UNION ALL
SELECT r.rolname, 'type', n.nspname || '.' || t.typname, 'USAGE' || o.suffix
FROM roles r CROSS JOIN pg_type t JOIN user_ns n ON n.oid = t.typnamespace CROSS JOIN opt o
WHERE t.typrelid = 0 AND t.typelem = 0 AND has_type_privilege(r.oid, t.oid, 'USAGE' || o.suffix)
UNION ALL
SELECT r.rolname, 'member', g.rolname, m
FROM roles r CROSS JOIN roles g CROSS JOIN unnest(%(member_modes)s::text[]) m
WHERE r.oid <> g.oid AND pg_has_role(r.oid, g.oid, m)
