-- Effective CREATE on the managed schemas and on this database for the listed
-- roles (has_*_privilege resolves memberships and PUBLIC).
SELECT a.oid AS role, 'schema' AS kind, n.nspname AS name,
       has_schema_privilege(a.oid, n.oid, 'CREATE') AS can_create
FROM pg_catalog.pg_roles a CROSS JOIN pg_catalog.pg_namespace n
WHERE a.oid = ANY(%(roles)s::oid[]) AND n.oid = ANY(%(schemas)s::oid[])
UNION ALL
SELECT a.oid, 'database', d.datname,
       has_database_privilege(a.oid, d.oid, 'CREATE')
FROM pg_catalog.pg_roles a CROSS JOIN pg_catalog.pg_database d
WHERE a.oid = ANY(%(roles)s::oid[]) AND d.datname = current_database()
ORDER BY 1, 2, 3
