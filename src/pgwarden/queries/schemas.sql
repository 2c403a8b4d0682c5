-- Every schema that is not a system schema, with owner and exploded ACL.
SELECT n.oid, n.nspname AS name, n.nspowner AS owner,
       EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
               WHERE d.classid = 'pg_catalog.pg_namespace'::regclass AND d.objid = n.oid
                 AND d.deptype = 'e') AS extension,
       COALESCE((SELECT json_agg(json_build_array(a.grantor, a.grantee, a.privilege_type, a.is_grantable)
                                 ORDER BY a.grantee, a.privilege_type)
                 FROM aclexplode(COALESCE(n.nspacl, acldefault('n', n.nspowner))) a), '[]') AS acl
FROM pg_catalog.pg_namespace n
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND n.nspname NOT LIKE 'pg\_temp\_%%' AND n.nspname NOT LIKE 'pg\_toast\_temp\_%%'
ORDER BY n.nspname
