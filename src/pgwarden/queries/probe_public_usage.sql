-- probe: the managed schemas where PUBLIC holds USAGE (the planner leaves it as it is): a role's
-- privileges on their objects are usable there even when its grants give it no USAGE.
SELECT n.nspname::text AS name
FROM pg_catalog.pg_namespace n
WHERE n.nspname = ANY(%(schemas)s::text[])
  AND EXISTS (SELECT 1 FROM aclexplode(COALESCE(n.nspacl, acldefault('n', n.nspowner))) a
              WHERE a.grantee = 0 AND a.privilege_type = 'USAGE')
