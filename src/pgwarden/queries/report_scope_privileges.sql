-- Database and managed-schema privileges of the listed roles (effective: ownership, memberships and
-- PUBLIC count), and PUBLIC's own (role 0) from the ACLs, which has_*_privilege cannot ask for.
WITH db AS (
    SELECT d.datname, COALESCE(d.datacl, acldefault('d', d.datdba)) AS acl
    FROM pg_catalog.pg_database d WHERE d.datname = current_database()
),
ns AS (
    SELECT n.oid, n.nspname, COALESCE(n.nspacl, acldefault('n', n.nspowner)) AS acl
    FROM pg_catalog.pg_namespace n WHERE n.oid = ANY(%(schemas)s::oid[])
),
dbp(priv) AS (VALUES ('CONNECT'), ('TEMPORARY'), ('CREATE')),
nsp(priv) AS (VALUES ('USAGE'), ('CREATE'))
SELECT r.oid::int8 AS role, 'database' AS kind, db.datname AS name, dbp.priv AS privilege,
       has_database_privilege(r.oid, db.datname, dbp.priv) AS held
FROM pg_catalog.pg_roles r CROSS JOIN db CROSS JOIN dbp
WHERE r.oid = ANY(%(roles)s::oid[])
UNION ALL
SELECT r.oid::int8, 'schema', ns.nspname, nsp.priv, has_schema_privilege(r.oid, ns.oid, nsp.priv)
FROM pg_catalog.pg_roles r CROSS JOIN ns CROSS JOIN nsp
WHERE r.oid = ANY(%(roles)s::oid[])
UNION ALL
SELECT 0, 'database', db.datname, dbp.priv,
       EXISTS (SELECT 1 FROM aclexplode(db.acl) a WHERE a.grantee = 0 AND a.privilege_type = dbp.priv)
FROM db CROSS JOIN dbp
UNION ALL
SELECT 0, 'schema', ns.nspname, nsp.priv,
       EXISTS (SELECT 1 FROM aclexplode(ns.acl) a WHERE a.grantee = 0 AND a.privilege_type = nsp.priv)
FROM ns CROSS JOIN nsp
ORDER BY 1, 2, 3, 4
