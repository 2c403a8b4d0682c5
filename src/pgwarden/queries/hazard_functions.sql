-- SECURITY DEFINER routines of the managed schemas, with who may run them and whether they fix
-- their own search_path (function.security-definer wants one; function.definer-readonly asks who
-- runs them with their owner's rights).
SELECT n.nspname AS schema, p.proname AS name, pg_catalog.pg_get_function_identity_arguments(p.oid) AS args,
       p.proowner AS owner, p.prokind AS kind, p.provolatile AS volatility,
       EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search\_path=%%') AS fixed_search_path,
       EXISTS (SELECT 1 FROM aclexplode(COALESCE(p.proacl, acldefault('f', p.proowner))) a
               WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE') AS public_execute,
       COALESCE((SELECT array_agg(r.oid ORDER BY r.oid) FROM pg_catalog.pg_roles r
                 WHERE r.oid = ANY(%(roles)s::oid[]) AND has_function_privilege(r.oid, p.oid, 'EXECUTE')),
                '{}') AS executable_by
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE p.prosecdef AND p.pronamespace = ANY(%(schemas)s::oid[])
ORDER BY 1, 2, 3
