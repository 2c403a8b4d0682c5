-- The refresh routines of the managed schemas (pgwarden.refresh: `pgwarden_refresh_<role>`, made on
-- PostgreSQL 14-16 for the materialized views a role may refresh): what check compares with the
-- routine it would make, and who may run each (EXECUTE, PUBLIC as 'PUBLIC'; the owner's own left out).
SELECT n.nspname::text AS schema, p.proname::text AS name,
       pg_catalog.pg_get_function_identity_arguments(p.oid) AS args, p.oid, p.proowner AS owner,
       p.prosrc AS source, p.prosecdef AS security_definer, l.lanname::text AS language,
       COALESCE(p.proconfig, '{}')::text[] AS config,
       COALESCE((SELECT array_agg(CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE r.rolname::text END ORDER BY 1)
                 FROM aclexplode(COALESCE(p.proacl, acldefault('f', p.proowner))) a
                 LEFT JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
                 WHERE a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner), '{}') AS executors
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
JOIN pg_catalog.pg_language l ON l.oid = p.prolang
WHERE p.pronamespace = ANY(%(schemas)s::oid[]) AND p.proname LIKE 'pgwarden\_refresh\_%%'
ORDER BY 1, 2, 3
