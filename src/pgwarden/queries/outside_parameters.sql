-- GRANT SET / ALTER SYSTEM ON PARAMETER (15+) held by the listed roles or PUBLIC: pg_parameter_acl
-- has a row only for parameters someone granted on, so this reads a handful of rows.
SELECT 'parameter' AS kind, '' AS subkind, p.oid, 10::oid AS owner, p.parname AS ident,
       e.grantor, e.grantee, e.privilege_type AS privilege, e.is_grantable AS grantable
FROM pg_catalog.pg_parameter_acl p CROSS JOIN LATERAL aclexplode(p.paracl) e
WHERE p.paracl IS NOT NULL AND (e.grantee = ANY(%(roles)s::oid[]) OR e.grantee = 0)
  AND NOT EXISTS (SELECT 1 FROM aclexplode(acldefault('p', 10::oid)) d
                  WHERE d.grantee = e.grantee AND d.privilege_type = e.privilege_type)
ORDER BY p.parname, e.grantee, e.privilege_type
