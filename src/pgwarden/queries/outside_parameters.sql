-- GRANT SET / ALTER SYSTEM ON PARAMETER (15+) held by the listed roles or PUBLIC, as a UNION ALL
-- member of outside_acls.sql: pg_parameter_acl has a row only for parameters someone granted on.
UNION ALL
SELECT 'parameter', '', p.oid, 10::oid, p.parname,
       e.grantor, e.grantee, e.privilege_type, e.is_grantable, true
FROM pg_catalog.pg_parameter_acl p CROSS JOIN LATERAL aclexplode(p.paracl) e
WHERE p.paracl IS NOT NULL AND (e.grantee = ANY(%(roles)s::oid[]) OR e.grantee = 0)
  AND NOT EXISTS (SELECT 1 FROM aclexplode(acldefault('p', 10::oid)) d
                  WHERE d.grantee = e.grantee AND d.privilege_type = e.privilege_type)
